import CArchive
import Foundation

/// Extracts the parts held in a tar archive (any compression libarchive detects from the stream:
/// none, gzip, zstd, lz4, bzip2, xz) into a target folder, refusing anything unsafe.
///
/// 1. Each entry's path loses leading `/` and `./` (clickhouse-backup's archives may carry them).
/// 2. A path that is empty, absolute after that, or holds a `..` component is refused; so is any
///    entry that is not a regular file or a folder (links of either kind, devices).
/// 3. The first component names the part. Parts in `wanted` are written to
///    `<target>/<part>/...`; parts in `expected` but not wanted are skipped; any other part is
///    refused (an archive holding data it should not).
/// 4. Files are created with O_EXCL|O_NOFOLLOW: nothing existing is overwritten or followed.
/// 5. Every wanted part must have appeared by the end, or the archive is refused.
public struct ArchiveExtractor: Sendable {
    public let wanted: Set<String>
    public let expected: Set<String>
    /// Name used in errors (the S3 key or file path of the archive).
    public let archiveName: String

    public init(wanted: Set<String>, expected: Set<String>? = nil, archiveName: String) {
        self.wanted = wanted
        self.expected = (expected ?? wanted).union(wanted)
        self.archiveName = archiveName
    }

    public struct Result: Sendable, Equatable {
        /// Part name -> relative file paths written (inside the part's folder).
        public var files: [String: [String]] = [:]
        public var bytesWritten: Int64 = 0
    }

    /// Extracts from an archive file.
    public func extract(file path: String, into target: String) throws(ArchiveError) -> Result {
        let archive = try openReader()
        defer { archive_read_free(archive) }
        guard archive_read_open_filename(archive, path, 1 << 20) == inplace_archive_ok() else {
            throw error(.corrupt, archive, entry: nil, "cannot open: ")
        }
        return try extractEntries(archive, into: target)
    }

    /// Extracts from a stream fed by another thread through `pipe`; runs on the caller's thread
    /// (a blocking-pool thread).
    func extract(pipe: BytePipe, into target: String) throws(ArchiveError) -> Result {
        defer { pipe.closeReader() }
        let archive = try openReader()
        defer { archive_read_free(archive) }
        let context = PipeReadContext(pipe: pipe)
        let opened = withExtendedLifetime(context) {
            archive_read_open(archive, Unmanaged.passUnretained(context).toOpaque(), nil, pipeReadCallback, nil)
        }
        guard opened == inplace_archive_ok() else {
            throw context.failure.map { ArchiveError(kind: .corrupt, archive: archiveName, message: "the download failed: \($0)") }
                ?? error(.corrupt, archive, entry: nil, "cannot start reading: ")
        }
        do {
            return try withExtendedLifetime(context) { () throws(ArchiveError) -> Result in
                try extractEntries(archive, into: target)
            }
        } catch {
            // A failure of the download itself explains a "truncated archive" better.
            if let failure = context.failure, error.kind == .corrupt {
                throw ArchiveError(kind: .corrupt, archive: archiveName, message: "the download failed: \(failure)")
            }
            throw error
        }
    }

    private func openReader() throws(ArchiveError) -> OpaquePointer {
        guard let archive = archive_read_new() else {
            throw ArchiveError(kind: .corrupt, archive: archiveName, message: "libarchive: out of memory")
        }
        archive_read_support_filter_all(archive)
        archive_read_support_format_tar(archive)
        return archive
    }

    private func extractEntries(_ archive: OpaquePointer, into target: String) throws(ArchiveError) -> Result {
        var result = Result()
        var entry: OpaquePointer?
        while true {
            let rc = archive_read_next_header(archive, &entry)
            if rc == inplace_archive_eof() { break }
            guard rc == inplace_archive_ok() || rc == inplace_archive_warn(), let entry else {
                throw error(.corrupt, archive, entry: nil, "")
            }
            guard let namePointer = archive_entry_pathname(entry), namePointer.pointee != 0 else {
                throw ArchiveError(kind: .unsafePath, archive: archiveName, entry: nil,
                                   message: "an entry has no readable name; refusing the archive")
            }
            let rawPath = String(cString: namePointer)
            let components = try Self.safeComponents(rawPath, archive: archiveName)
            if components.isEmpty { continue }  // the archive's root folder itself
            let part = components[0]
            guard expected.contains(part) else {
                throw ArchiveError(kind: .unexpectedPart, archive: archiveName, entry: rawPath,
                                   message: "belongs to part '\(part)', which this archive is not expected to hold")
            }
            let type = archive_entry_filetype(entry)
            let isDirectory = type == inplace_ae_ifdir()
            guard (type == inplace_ae_ifreg() || isDirectory), archive_entry_hardlink(entry) == nil else {
                let what = type == inplace_ae_iflnk() ? "a symbolic link" : archive_entry_hardlink(entry) != nil
                    ? "a hard link" : "not a regular file or folder"
                throw ArchiveError(kind: .unsupportedEntry, archive: archiveName, entry: rawPath,
                                   message: "is \(what); a part holds only regular files and folders")
            }
            guard wanted.contains(part) else {
                archive_read_data_skip(archive)
                continue
            }
            let relative = components.dropFirst().joined(separator: "/")
            let path = target + "/" + components.joined(separator: "/")
            try makeFolders(target: target, components: isDirectory ? components[...] : components.dropLast())
            if result.files[part] == nil { result.files[part] = [] }
            if isDirectory { continue }
            result.bytesWritten += try writeFile(archive, to: path, entry: rawPath)
            result.files[part]?.append(relative)
        }
        let missing = wanted.subtracting(result.files.keys)
        guard missing.isEmpty else {
            throw ArchiveError(kind: .missingPart, archive: archiveName,
                               message: "does not hold part(s) \(missing.sorted().joined(separator: ", "))")
        }
        return result
    }

    /// Splits an entry path into safe components, or refuses it.
    static func safeComponents(_ rawPath: String, archive: String) throws(ArchiveError) -> [String] {
        var path = Substring(rawPath)
        while path.hasPrefix("/") || path.hasPrefix("./") { path = path.hasPrefix("/") ? path.dropFirst() : path.dropFirst(2) }
        var components: [String] = []
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            if component == "." { continue }
            guard component != "..", !component.contains("\0") else {
                throw ArchiveError(kind: .unsafePath, archive: archive, entry: rawPath,
                                   message: "the path leaves its folder ('..'); refusing the archive")
            }
            components.append(String(component))
        }
        return components
    }

    private func makeFolders(target: String, components: ArraySlice<String>) throws(ArchiveError) {
        var path = target
        for component in components {
            path += "/" + component
            if mkdir(path, 0o750) != 0 && errno != EEXIST {
                throw ArchiveError(kind: .localFile, archive: archiveName, entry: path,
                                   message: "cannot create folder: \(String(cString: strerror(errno)))")
            }
            var info = stat()
            guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
                throw ArchiveError(kind: .unsafePath, archive: archiveName, entry: path,
                                   message: "exists and is not a folder; refusing to write through it")
            }
        }
    }

    /// Writes the current entry's data to `path`, straight from libarchive's own buffers
    /// (`archive_read_data_block`: no copy in between), at the offsets it gives.
    private func writeFile(_ archive: OpaquePointer, to path: String, entry: String) throws(ArchiveError) -> Int64 {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o640)
        guard fd >= 0 else {
            throw ArchiveError(kind: .localFile, archive: archiveName, entry: entry,
                               message: "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var total: Int64 = 0
        while true {
            var block: UnsafeRawPointer?
            var size = 0
            var offset: la_int64_t = 0
            let rc = archive_read_data_block(archive, &block, &size, &offset)
            if rc == inplace_archive_eof() { break }
            guard rc == inplace_archive_ok() || rc == inplace_archive_warn() else {
                throw error(.corrupt, archive, entry: entry, "")
            }
            guard size > 0, let block else { continue }
            var written = 0
            while written < size {
                let count = pwrite(fd, block + written, size - written, off_t(offset) + off_t(written))
                if count < 0 {
                    if errno == EINTR { continue }
                    throw ArchiveError(kind: .localFile, archive: archiveName, entry: entry,
                                       message: "cannot write \(path): \(String(cString: strerror(errno)))")
                }
                written += count
            }
            total += Int64(size)
        }
        return total
    }

    private func error(_ kind: ArchiveError.Kind, _ archive: OpaquePointer, entry: String?, _ prefix: String) -> ArchiveError {
        let message = archive_error_string(archive).map { String(cString: $0) } ?? "unreadable archive"
        return ArchiveError(kind: kind, archive: archiveName, entry: entry,
                            message: prefix + message + " (truncated or corrupt archive?)")
    }
}

/// State for libarchive's read callback when the bytes come from a `BytePipe`.
private final class PipeReadContext {
    let pipe: BytePipe
    var failure: (any Error)?
    init(pipe: BytePipe) { self.pipe = pipe }
}

private func pipeReadCallback(
    _ archive: OpaquePointer?, _ clientData: UnsafeMutableRawPointer?, _ buffer: UnsafeMutablePointer<UnsafeRawPointer?>?
) -> Int {
    let context = Unmanaged<PipeReadContext>.fromOpaque(clientData!).takeUnretainedValue()
    do {
        let chunk = try context.pipe.read()
        buffer?.pointee = chunk.baseAddress
        return chunk.count
    } catch {
        context.failure = error
        inplace_archive_set_error(archive, EIO, "download failed")
        return -1
    }
}
