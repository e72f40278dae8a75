import Foundation

/// Who owns what `inplace` writes into ClickHouse's folders, and whether this process may write
/// there at all.
///
/// ClickHouse runs as its own user (`clickhouse` in every packaged install) and must read the
/// parts it attaches, while `inplace` often runs as root. As clickhouse-backup does, a root
/// process gives each file and folder it creates there to the owner of the folder ClickHouse
/// made; unlike clickhouse-backup, a process that is neither root nor that owner is refused
/// before it changes anything, instead of writing files the server may not read.
///
/// 1. The owner is read with one `stat` of a folder ClickHouse made: a table's data folder for
///    what goes into the table (staging, `detached/`, quarantine), a disk's folder for what lies
///    outside tables (backups, table locks).
/// 2. `requireWriter()`: root writes as anyone, the owner writes as itself; anyone else is
///    refused, naming the folder, its owner and who must run `inplace`.
/// 3. `give(...)`: as root, when the owner is not root, each created file or folder gets the
///    owner's uid and gid (`fchown` on a descriptor, `lchown` on a path, never following a link).
///    A hard-linked file shares its inode with the backup's file: giving it changes the backup's
///    file too, which is what clickhouse-backup does (and that file is normally the server's
///    already: FREEZE made it).
public struct FileOwner: Sendable, Equatable {
    public let uid: uid_t
    public let gid: gid_t
    /// The folder the owner was read from (named in refusals).
    public let folder: String

    public init(uid: uid_t, gid: gid_t, folder: String) {
        self.uid = uid
        self.gid = gid
        self.folder = folder
    }

    /// The owner of `folder` (one `stat`).
    public static func of(_ folder: String) throws(BackupError) -> FileOwner {
        guard let owner = try ifExists(folder) else { throw BackupError(.notFound, "\(folder) does not exist") }
        return owner
    }

    /// The owner of `folder`, or nil when it does not exist.
    public static func ifExists(_ folder: String) throws(BackupError) -> FileOwner? {
        var info = stat()
        guard stat(folder, &info) == 0 else {
            if errno == ENOENT { return nil }
            throw FileSystem.ioError("cannot read the owner of \(folder)")
        }
        return FileOwner(uid: info.st_uid, gid: info.st_gid, folder: folder)
    }

    /// The owner of the nearest folder of `path` (itself or an ancestor) that exists: what a
    /// folder about to be created under it should get.
    public static func nearest(_ path: String) -> FileOwner? {
        var candidate = path
        while !candidate.isEmpty {
            if FileSystem.isFolder(candidate) { return try? of(candidate) }
            let parent = (candidate as NSString).deletingLastPathComponent
            if parent == candidate { break }
            candidate = parent
        }
        return nil
    }

    /// The user's name, or `uid N` when the system has none for it.
    public var userName: String { Self.name(of: uid) }

    static func name(of uid: uid_t) -> String {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil, let name = entry.pw_name else {
            return "uid \(uid)"
        }
        return String(cString: name)
    }

    /// `clickhouse (uid 101)`.
    public var who: String { "\(userName) (uid \(uid))" }

    /// Whether files this process creates must be given to the owner: it runs as root and the
    /// owner is someone else.
    public var needsGiving: Bool { geteuid() == 0 && (uid != 0 || gid != 0) }

    /// Refuses a process that can neither write as the owner nor give files to it.
    public func requireWriter() throws(OwnershipError) {
        let me = geteuid()
        guard me != 0 && me != uid else { return }
        throw OwnershipError(folder: folder, owner: who, runningAs: "\(Self.name(of: me)) (uid \(me))",
                             ownerName: userName)
    }

    /// Refuses a process that cannot write as the owner of each local disk's folder (one stat
    /// per disk): the check commands that write make first.
    public static func requireWriter(disks: [ClickHouseCatalog.Disk]) throws {
        for disk in disks where !disk.isRemote { try ifExists(disk.path)?.requireWriter() }
    }

    /// Gives an open file to the owner.
    public func give(descriptor fd: Int32, path: String) throws(BackupError) {
        guard needsGiving else { return }
        guard fchown(fd, uid, gid) == 0 else { throw FileSystem.ioError("cannot give \(path) to \(who)") }
    }

    /// Gives `path` (not what a link points to) to the owner.
    public func give(_ path: String) throws(BackupError) {
        guard needsGiving else { return }
        guard lchown(path, uid, gid) == 0 else { throw FileSystem.ioError("cannot give \(path) to \(who)") }
    }

    /// Gives `folder` and everything under it to the owner: one `lchown` per entry, no `stat`.
    /// A folder that cannot be read fails: its files would stay this process's.
    public func giveTree(_ folder: String) throws(BackupError) {
        guard needsGiving else { return }
        try give(folder)
        try giveEntries(of: folder.hasSuffix("/") && folder.count > 1 ? String(folder.dropLast()) : folder)
    }

    /// readdir, not FileManager's enumerator (a part has tens of files and a restore thousands of
    /// parts; the enumerator's path handling cost more than the lchown calls). Links are given,
    /// not followed; folders (by d_type, or lstat when the file system does not say) descended.
    private func giveEntries(of folder: String) throws(BackupError) {
        guard let stream = opendir(folder) else { throw FileSystem.ioError("cannot read \(folder)") }
        defer { closedir(stream) }
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name != "." && name != ".." else { continue }
            let path = folder + "/" + name
            try give(path)
            let type = entry.pointee.d_type
            var info = stat()
            if type == UInt8(DT_DIR) || (type == UInt8(DT_UNKNOWN) && lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR) {
                try giveEntries(of: path)
            }
        }
    }
}

/// This process may not write into ClickHouse's folders as their owner needs: refused before
/// anything is changed.
public struct OwnershipError: Error, CustomStringConvertible, Sendable, Equatable {
    public let folder: String
    public let owner: String
    public let runningAs: String
    public let ownerName: String

    public var description: String {
        "\(folder) is owned by \(owner), and inplace runs as \(runningAs): files it wrote there would not be the server's to read. Nothing was changed; run inplace as root or as \(ownerName)"
    }
}
