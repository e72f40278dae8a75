import Foundation
import Synchronization

/// One advisory lock per table, on the ClickHouse host, whatever the journal: two restores of
/// the same table (with one journal or two), or a backup of a table being restored, exclude
/// each other.
///
/// 1. The lock of table `db.t` is the file `<default disk>/backup/.inplace-locks/<name>.lock`,
///    where `<name>` is a readable prefix of both names (letters, digits and `_` only) and 32 hex
///    digits of SHA-256 of both names: any name maps to one safe file of its own. The folder is
///    created 0700 and the files 0600, so (never wider, whatever the umask), and given to the
///    owner of the default disk's folder (FileOwner) when root makes them, so that a later run
///    as the ClickHouse user opens them too. Files are never removed (removing a lock file while
///    another process waits on it would split the lock).
/// 2. `acquire` opens the file and tries `flock(LOCK_EX | LOCK_NB)`. The lock belongs to that
///    open file description: a second acquisition in the same process, through its own open,
///    is refused too. A process that dies releases its locks with its descriptors.
/// 3. Taken, the holder (journal, run, pid, host, start time) is written into the file as one
///    line of JSON. Refused, the file is read back to name the holder, and with `wait` the try is
///    repeated every `pollInterval` (sleeping, never blocking a thread) until the deadline.
/// 4. `release()` (or the handle's deinit) empties the file and closes the descriptor. Only held
///    locks keep a descriptor open: a restore of 10,000 tables opens one per table in progress.
public struct TableLocks: Sendable {
    public let folder: String
    public let pollInterval: Duration
    /// Who the folder and files get when this process (root) creates them; nil: whoever creates them.
    public let owner: FileOwner?

    public init(folder: String, pollInterval: Duration = .milliseconds(200), owner: FileOwner? = nil) {
        self.folder = folder.hasSuffix("/") && folder.count > 1 ? String(folder.dropLast()) : folder
        self.pollInterval = pollInterval
        self.owner = owner
    }

    /// The host's locks folder: `<default disk>/backup/.inplace-locks`, the default disk
    /// folder's owner's.
    public init(layout: LocalBackupLayout, pollInterval: Duration = .milliseconds(200)) {
        self.init(folder: layout.locksFolder, pollInterval: pollInterval, owner: try? FileOwner.of(layout.defaultDiskPath))
    }

    /// The lock file's name for a table: `<db>.<table>-<32 hex>.lock`, each name cut to 40
    /// characters of `[A-Za-z0-9_]` (others become `_`, an empty name `_`: never a dot-name).
    public static func fileName(database: String, table: String) -> String {
        func readable(_ name: String) -> String {
            if name.isEmpty { return "_" }
            return String(name.unicodeScalars.prefix(40).map { scalar -> Character in
                let value = scalar.value
                let keep = (0x30...0x39).contains(value) || (0x41...0x5A).contains(value)
                    || (0x61...0x7A).contains(value) || value == 0x5F
                return keep ? Character(scalar) : "_"
            })
        }
        // Length-prefixed, so that ("a.b", "c") and ("a", "b.c") hash apart.
        let key = Array("\(database.utf8.count):\(database)\(table)".utf8)
        return readable(database) + "." + readable(table) + "-" + String(SHA256.hex(key).prefix(32)) + ".lock"
    }

    public func path(database: String, table: String) -> String {
        folder + "/" + Self.fileName(database: database, table: table)
    }

    /// Takes the table's lock, waiting up to `wait` for its holder to release it (zero: one try).
    /// Throws `TableLockError` naming the holder when it stays taken, and `CancellationError`
    /// when the task is cancelled while waiting.
    public func acquire(database: String, table: String, holder: TableLockHolder, wait: Duration = .zero)
        async throws -> TableLockHandle
    {
        try prepareFolder(database: database, table: table)
        let path = self.path(database: database, table: table)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            let owner = errno == EACCES ? FileOwner.nearest(path).map { " (owned by \($0.who))" } ?? "" : ""
            throw ioError("cannot open the lock file \(path)\(owner)", database, table)
        }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw TableLockError(.io, database: database, table: table, holder: nil,
                                 "\(path) is not a regular file; remove it (it is the lock of \(ClickHouseSQL.qualified(database, table)))")
        }
        if let owner, owner.needsGiving, info.st_uid != owner.uid || info.st_gid != owner.gid {
            guard fchown(fd, owner.uid, owner.gid) == 0 else {
                let error = ioError("cannot give the lock file \(path) to \(owner.who)", database, table)
                close(fd)
                throw error
            }
        }
        let deadline = ContinuousClock.now + wait
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                let error = ioError("cannot lock \(path)", database, table)
                close(fd)
                throw error
            }
            let now = ContinuousClock.now
            guard now < deadline else {
                close(fd)
                throw TableLockError.held(database: database, table: table, holder: Self.readHolder(path), path: path,
                                          waited: wait)
            }
            do {
                try await Task.sleep(for: min(pollInterval, deadline - now))
            } catch {
                close(fd)
                throw error
            }
        }
        // The last holder (one that released it, or died holding it): a restore that finds that
        // another run changed the table since it planned it plans the table again.
        let previous = Self.readHolder(path)
        var record = holder
        record.database = database
        record.table = table
        // What the file says is for operators' messages only: the lock is the flock, so a file
        // that cannot be written (disk full) leaves the lock held and its holder unnamed.
        if var line = try? JSONEncoder.lockFile.encode(record) {
            line.append(0x0A)
            _ = ftruncate(fd, 0)
            _ = line.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        }
        return TableLockHandle(database: database, table: table, path: path, descriptor: fd, previous: previous,
                               record: record)
    }

    /// The holder recorded in a table's lock file, or nil (free, being taken, or unreadable).
    /// Reading says nothing about whether the lock is held: only `acquire` can tell.
    public func recordedHolder(database: String, table: String) -> TableLockHolder? {
        Self.readHolder(path(database: database, table: table))
    }

    static func readHolder(_ path: String) -> TableLockHolder? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        let line = buffer[..<count].split(separator: 0x0A, maxSplits: 1).first ?? []
        return try? JSONDecoder().decode(TableLockHolder.self, from: Data(line))
    }

    /// `<default disk>/backup/` as `inplace create` makes it (0750), then the locks folder, 0700.
    private func prepareFolder(database: String, table: String) throws(TableLockError) {
        if FileSystem.isFolder(folder) {
            // Made by an earlier root run before it gave what it made (one lchown, as root only).
            if let owner, owner.needsGiving { _ = lchown(folder, owner.uid, owner.gid) }
            return
        }
        let parent = (folder as NSString).deletingLastPathComponent
        do {
            if !parent.isEmpty { try FileSystem.makeFolders(parent, owner: owner) }
        } catch {
            throw TableLockError(.io, database: database, table: table, holder: nil,
                                 "cannot create the folder of the table locks: \(error.message)")
        }
        if mkdir(folder, 0o700) == 0 {
            guard chmod(folder, 0o700) == 0 else { throw ioError("cannot set the mode of \(folder)", database, table) }
            if let owner, owner.needsGiving, lchown(folder, owner.uid, owner.gid) != 0 {
                throw ioError("cannot give \(folder) to \(owner.who)", database, table)
            }
        } else if errno != EEXIST || !FileSystem.isFolder(folder) {
            throw ioError("cannot create the table locks' folder \(folder)", database, table)
        }
    }

    private func ioError(_ what: String, _ database: String, _ table: String) -> TableLockError {
        TableLockError(.io, database: database, table: table, holder: nil, "\(what): \(String(cString: strerror(errno)))")
    }
}

/// A held table lock. `release()` is idempotent; the lock is also released when the handle is
/// freed, and by the kernel when the process ends.
public final class TableLockHandle: Sendable {
    public let database: String
    public let table: String
    public let path: String
    /// Who held the lock last before this handle (its record stays in the file after release).
    public let previous: TableLockHolder?
    private let record: TableLockHolder
    private let descriptor: Mutex<Int32>

    init(database: String, table: String, path: String, descriptor: Int32, previous: TableLockHolder?,
         record: TableLockHolder) {
        self.database = database
        self.table = table
        self.path = path
        self.descriptor = Mutex(descriptor)
        self.previous = previous
        self.record = record
    }

    public var isHeld: Bool { descriptor.withLock { $0 >= 0 } }

    /// Unlocks it. The holder's record stays in the file, as the last holder's (`previous` of
    /// the next): a refusal only happens while the lock is held, by a holder that wrote its own
    /// record when it took it, so a stale record is never named as the holder.
    public func release() {
        descriptor.withLock { fd in
            guard fd >= 0 else { return }
            // When it was released, written while still held: the next holder tells whether
            // this one changed the table after it planned it. A holder that died has none.
            var released = record
            released.releasedAt = BackupMetadata.now()
            if var line = try? JSONEncoder.lockFile.encode(released) {
                line.append(0x0A)
                _ = ftruncate(fd, 0)
                _ = line.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
            }
            close(fd)
            fd = -1
        }
    }

    deinit { release() }
}

/// Who holds a table lock, as written in its file (one line of JSON).
public struct TableLockHolder: Codable, Sendable, Equatable {
    /// The journal of the run holding the lock (nil for `inplace create`).
    public var journal: String?
    /// The run's id in that journal (nil for `inplace create`, or before the run is journaled).
    public var run: Int64?
    public var pid: Int32
    public var host: String
    /// RFC 3339, UTC.
    public var startedAt: String
    /// What holds it: `restore`, `resume`, `journal replay`, `create NAME`.
    public var command: String?
    /// Filled by `acquire`: the table the file locks, for an operator reading it.
    public var database: String?
    public var table: String?
    /// Written when the holder released the lock (RFC 3339, UTC); nil while held, or when the
    /// holder died holding it.
    public var releasedAt: String?

    enum CodingKeys: String, CodingKey {
        case journal, run, pid, host, command, database, table
        case startedAt = "started_at"
        case releasedAt = "released_at"
    }

    public init(journal: String?, run: Int64?, command: String?, pid: Int32 = getpid(),
                host: String = TableLockHolder.hostName(), startedAt: String = BackupMetadata.now()) {
        self.journal = journal
        self.run = run
        self.command = command
        self.pid = pid
        self.host = host
        self.startedAt = startedAt
    }

    public static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "unknown" }
        return String(cString: buffer)
    }

    /// `restore run 3 of journal /j.sqlite, pid 123 on host h, started 2026-...`.
    public var summary: String {
        var who = command ?? "inplace"
        if let run { who += " run \(run)" }
        if let journal { who += " of journal \(journal)" }
        return "\(who), pid \(pid) on host \(host), started \(startedAt)"
    }
}

public struct TableLockError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// Another holder has the lock (named in `holder` when its file says who).
        case held
        /// The lock file or its folder could not be created, opened or locked.
        case io
    }

    public let kind: Kind
    public let database: String
    public let table: String
    public let holder: TableLockHolder?
    public let message: String

    public init(_ kind: Kind, database: String, table: String, holder: TableLockHolder?, _ message: String) {
        self.kind = kind
        self.database = database
        self.table = table
        self.holder = holder
        self.message = message
    }

    static func held(database: String, table: String, holder: TableLockHolder?, path: String, waited: Duration)
        -> TableLockError
    {
        let name = ClickHouseSQL.qualified(database, table)
        let who = holder.map { "by \($0.summary)" } ?? "by a process that has not recorded itself in the lock file yet"
        let seconds = waited.components.seconds
        let lead = waited > .zero ? "\(name) is still locked after waiting \(seconds) s" : "\(name) is locked"
        return TableLockError(.held, database: database, table: table, holder: holder, """
            \(lead) \(who) (lock file \(path)); wait for it to end (or stop it), or pass --wait-lock SECONDS to wait for the lock
            """)
    }

    public var description: String { message }
}

extension JSONEncoder {
    static let lockFile: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()
}
