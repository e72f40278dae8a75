import CArchive
import Foundation

/// The compressions of clickhouse-backup's `s3.compression_format` that `inplace` can write.
/// (`br` and `sz` archives are not written; reading detects compression from the stream.)
public enum ArchiveCompression: String, CaseIterable, Sendable {
    case tar, gzip, zstd, lz4, bzip2, xz

    /// Levels the compressor takes (`s3.compression_level` is clamped into them).
    var levels: ClosedRange<Int>? {
        switch self {
        case .tar: nil
        case .gzip, .xz: 0...9
        case .bzip2, .lz4: 1...9
        case .zstd: 1...22
        }
    }

    /// The archive name's extension, as clickhouse-backup names it.
    public var fileExtension: String {
        switch self {
        case .tar: "tar"
        case .gzip: "tar.gz"
        case .zstd: "tar.zstd"
        case .lz4: "tar.lz4"
        case .bzip2: "tar.bz2"
        case .xz: "tar.xz"
        }
    }
}

/// Writes part folders into one tar archive, entries named `<part>/<relative file>` (with a
/// leading `/` when asked, as clickhouse-backup writes them). Regular files only, no folders.
public enum ArchiveWriter {
    /// Writes `parts` (part name -> its folder) to `path`; returns the archive's size in bytes.
    @discardableResult
    public static func write(
        parts: [(name: String, folder: String)], to path: String, compression: ArchiveCompression,
        level: Int? = nil, leadingSlash: Bool = false
    ) throws(ArchiveError) -> Int64 {
        guard let archive = archive_write_new() else {
            throw ArchiveError(kind: .write, archive: path, message: "libarchive: out of memory")
        }
        defer { archive_write_free(archive) }
        func check(_ rc: Int32, _ what: String, entry: String? = nil) throws(ArchiveError) {
            guard rc == inplace_archive_ok() || rc == inplace_archive_warn() else {
                let message = archive_error_string(archive).map { String(cString: $0) } ?? "error \(rc)"
                throw ArchiveError(kind: .write, archive: path, entry: entry, message: "\(what): \(message)")
            }
        }
        try check(archive_write_set_format_pax_restricted(archive), "set format")
        switch compression {
        case .tar: try check(archive_write_add_filter_none(archive), "no compression")
        case .gzip: try check(archive_write_add_filter_gzip(archive), "gzip")
        case .zstd: try check(archive_write_add_filter_zstd(archive), "zstd")
        case .lz4: try check(archive_write_add_filter_lz4(archive), "lz4")
        case .bzip2: try check(archive_write_add_filter_bzip2(archive), "bzip2")
        case .xz: try check(archive_write_add_filter_xz(archive), "xz")
        }
        if let level, let range = compression.levels {
            let clamped = min(max(level, range.lowerBound), range.upperBound)
            try check(archive_write_set_filter_option(archive, nil, "compression-level", String(clamped)),
                      "compression level \(clamped)")
        }
        try check(archive_write_set_bytes_in_last_block(archive, 1), "block padding")
        try check(archive_write_open_filename(archive, path), "create \(path)")
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        for part in parts {
            for relative in try filesUnder(part.folder, archive: path) {
                // clickhouse-backup's entries read `/<part>/<file>`.
                let entryName = (leadingSlash ? "/" : "") + part.name + "/" + relative
                try addFile(archive, source: part.folder + "/" + relative, entryName: entryName, buffer: &buffer,
                            archivePath: path, check: check)
            }
        }
        try check(archive_write_close(archive), "finish")
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw ArchiveError(kind: .write, archive: path, message: "cannot stat the written archive")
        }
        return Int64(info.st_size)
    }

    /// Regular files under `folder` (sorted, so archives are reproducible); a folder that cannot
    /// be read is an error, not an empty part.
    static func filesUnder(_ folder: String, archive: String) throws(ArchiveError) -> [String] {
        guard FileSystem.isFolder(folder) else {
            throw ArchiveError(kind: .write, archive: archive, message: "cannot read folder \(folder)")
        }
        return FileSystem.files(under: folder)
    }

    private static func addFile(
        _ archive: OpaquePointer, source: String, entryName: String, buffer: inout [UInt8], archivePath: String,
        check: (Int32, String, String?) throws(ArchiveError) -> Void
    ) throws(ArchiveError) {
        let fd = open(source, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            throw ArchiveError(kind: .write, archive: archivePath, entry: entryName,
                               message: "cannot read \(source): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var info = stat()
        fstat(fd, &info)
        guard let entry = archive_entry_new() else {
            throw ArchiveError(kind: .write, archive: archivePath, message: "libarchive: out of memory")
        }
        defer { archive_entry_free(entry) }
        archive_entry_set_pathname(entry, entryName)
        archive_entry_set_size(entry, la_int64_t(info.st_size))
        archive_entry_set_filetype(entry, inplace_ae_ifreg())
        archive_entry_set_perm(entry, 0o640)
        archive_entry_set_mtime(entry, info.st_mtim.tv_sec, 0)
        try check(archive_write_header(archive, entry), "write header", entryName)
        var remaining = Int64(info.st_size)
        while remaining > 0 {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, min($0.count, Int(remaining))) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                throw ArchiveError(kind: .write, archive: archivePath, entry: entryName,
                                   message: "\(source) shrank or could not be read while archiving")
            }
            let written = buffer.withUnsafeBytes { archive_write_data(archive, $0.baseAddress, count) }
            guard written == count else {
                let message = archive_error_string(archive).map { String(cString: $0) } ?? "short write"
                throw ArchiveError(kind: .write, archive: archivePath, entry: entryName, message: message)
            }
            remaining -= Int64(count)
        }
    }
}
