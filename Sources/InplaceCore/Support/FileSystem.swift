import Foundation

/// File-system helpers with the guarantees restores need: durable writes, folder creation with
/// owner-only permissions, sizes, hard links with a copy fallback.
public enum FileSystem {
    /// Writes `data` durably: a temporary file beside `path`, fsync, rename over `path`, fsync
    /// the folder. A crash leaves either the old file or the new one, never half of one. With
    /// `owner`, the file is given to it before it takes its name.
    public static func writeDurably(_ data: [UInt8], to path: String, mode: mode_t = 0o640,
                                    owner: FileOwner? = nil) throws(BackupError) {
        let folder = (path as NSString).deletingLastPathComponent
        let temporary = folder + "/." + (path as NSString).lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw ioError("cannot create \(temporary)") }
        do {
            try owner?.give(descriptor: fd, path: temporary)
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        var ok = data.withUnsafeBytes { writeAll(fd, $0) }
        ok = ok && fsync(fd) == 0
        close(fd)
        guard ok, rename(temporary, path) == 0 else {
            let error = ioError("cannot write \(path)")
            unlink(temporary)
            throw error
        }
        syncFolder(folder)
    }

    public static func syncFolder(_ folder: String) {
        let fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += written
        }
        return true
    }

    /// Creates `path` and missing parents with `mode` (0750 by default). Each folder is created
    /// with `mode` itself (then set exactly, whatever the umask): FileManager creates it 0777 less
    /// the umask and narrows it afterwards, so an owner-only folder was briefly open to all.
    /// With `owner`, each folder created is given to it.
    /// One stat when the folder is there (a restore asks per part); else its missing ancestors
    /// first, from the deepest one that exists.
    public static func makeFolders(_ path: String, mode: mode_t = 0o750, owner: FileOwner? = nil) throws(BackupError) {
        var folder = path
        while folder.count > 1 && folder.hasSuffix("/") { folder.removeLast() }
        guard !folder.isEmpty, !isFolder(folder) else { return }
        var made = mkdir(folder, mode) == 0
        if !made, errno == ENOENT, let slash = folder.lastIndex(of: "/"), slash > folder.startIndex {
            try makeFolders(String(folder[..<slash]), mode: mode, owner: owner)
            made = mkdir(folder, mode) == 0
        }
        if !made {
            let failure = errno
            if failure == EEXIST && isFolder(folder) { return }  // made by another process meanwhile
            errno = failure
            throw ioError("cannot create folder \(folder)")
        }
        guard chmod(folder, mode) == 0 else { throw ioError("cannot set the mode of \(folder)") }
        try owner?.give(folder)
    }

    public static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    public static func isFolder(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    public static func readFile(_ path: String) throws(BackupError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BackupError(.notFound, "cannot read \(path)")
        }
        return [UInt8](data)
    }

    /// Regular files under `folder`, relative, sorted.
    public static func files(under folder: String) -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: folder) else { return [] }
        var files: [String] = []
        while let relative = enumerator.nextObject() as? String {
            var info = stat()
            if lstat(folder + "/" + relative, &info) == 0, info.st_mode & S_IFMT == S_IFREG { files.append(relative) }
        }
        return files.sorted()
    }

    public static func size(ofFile path: String) -> Int64 {
        var info = stat()
        return lstat(path, &info) == 0 ? Int64(info.st_size) : 0
    }

    /// Total bytes of the regular files under `folder`.
    public static func size(of folder: String) -> Int64 {
        var total: Int64 = 0
        for relative in files(under: folder) {
            var info = stat()
            if lstat(folder + "/" + relative, &info) == 0 { total += Int64(info.st_size) }
        }
        return total
    }

    /// Puts a copy of `source` (a part folder) at `target` (which must not exist): hard links
    /// when both are on one file system, byte copies otherwise. Returns whether it linked.
    @discardableResult
    public static func linkOrCopyFolder(_ source: String, to target: String) throws(BackupError) -> Bool {
        guard mkdir(target, 0o750) == 0 else {
            throw ioError("cannot create \(target) (it must not exist yet)")
        }
        var linked = true
        for relative in files(under: source) {
            let from = source + "/" + relative
            let to = target + "/" + relative
            let parent = (to as NSString).deletingLastPathComponent
            if parent != target { try makeFolders(parent) }
            if linked && link(from, to) == 0 { continue }
            if errno != EXDEV && errno != EPERM && linked {
                throw ioError("cannot link \(from) to \(to)")
            }
            linked = false
            try copyFile(from, to)
        }
        return linked
    }

    static func copyFile(_ from: String, _ to: String) throws(BackupError) {
        let input = open(from, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw ioError("cannot read \(from)") }
        defer { close(input) }
        let output = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o640)
        guard output >= 0 else { throw ioError("cannot create \(to)") }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw ioError("cannot read \(from)") }
            if count == 0 { break }
            guard buffer.withUnsafeBytes({ writeAll(output, UnsafeRawBufferPointer(rebasing: $0[0..<count])) }) else {
                throw ioError("cannot write \(to)")
            }
        }
    }

    static func ioError(_ what: String) -> BackupError {
        BackupError(.io, "\(what): \(String(cString: strerror(errno)))")
    }
}
