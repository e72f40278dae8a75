import Foundation

/// Where a backup is read from: a local folder on the ClickHouse host, or S3.
public enum BackupLocation: String, Sendable, Codable {
    case local
    case remote
}

/// One backup to read from, whatever its location. Every restore reads through this.
public protocol BackupSource: Sendable {
    var name: String { get }
    var location: BackupLocation { get }
    /// Where the backup is read: its folder, or `s3://bucket/<prefix>NAME/` (journaled per run).
    var address: String { get }
    /// `metadata.json`; refuses embedded backups.
    func metadata() async throws -> BackupMetadata
    /// A table's JSON.
    func tableMetadata(database: String, table: String) async throws -> TableMetadata
    /// Puts the files of part `part` (on `disk`) of a table into `<target>/<part>/`. `target`
    /// must exist; nothing is written outside it. Parts marked `required` are read from the
    /// `required_backup` chain.
    func fetchPart(database: String, table: String, disk: String, part: String, into target: String)
        async throws -> FetchedPart
    /// Names of the parts `table` lists whose data is not in the backup (or its required chain).
    /// Checked before anything is dropped from the table.
    func missingParts(_ table: TableMetadata) async throws -> Set<String>
    /// Starts in the background what `missingParts` will need for every table (remote: the one
    /// listing of the shadow folder), so that it overlaps reading the tables' JSON.
    func prepareMissingParts()
    /// The backup's own name of a table this source lists (they differ under a mapping):
    /// `--tables` and `skip_tables` match it, as in clickhouse-backup.
    func backupName(database: String, table: String) -> TableKey
}

extension BackupSource {
    public func backupName(database: String, table: String) -> TableKey { TableKey(database, table) }
    public func prepareMissingParts() {}
}

public struct FetchedPart: Sendable, Equatable {
    public var folder: String
    public var bytes: Int64
    /// The backup the data came from (differs from the source's name for `required` parts).
    public var fromBackup: String
    /// Local sources: whether the files were hard-linked (no bytes copied).
    public var linked: Bool
}

extension BackupSource {
    /// Every table the backup lists.
    public func tables() async throws -> [BackupMetadata.TableTitle] {
        try await metadata().tables ?? []
    }

    static func decodeMetadata(_ bytes: [UInt8], what: String) throws -> BackupMetadata {
        let metadata: BackupMetadata
        do {
            metadata = try JSONDecoder.backup.decode(BackupMetadata.self, from: Data(bytes))
        } catch {
            throw BackupError(.invalidMetadata, "\(what) is not valid backup metadata: \(Self.describe(error)); the backup cannot be read")
        }
        if metadata.isEmbedded {
            throw BackupError(.embedded,
                              "\(what) describes an embedded backup (made by ClickHouse's BACKUP command, tags '\(metadata.tags ?? "")'); inplace restores clickhouse-backup's regular backups only")
        }
        return metadata
    }

    static func decodeTable(_ bytes: [UInt8], what: String) throws -> TableMetadata {
        do {
            return try JSONDecoder.backup.decode(TableMetadata.self, from: Data(bytes))
        } catch {
            throw BackupError(.invalidMetadata, "\(what) is not valid table metadata: \(Self.describe(error))")
        }
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.dataCorrupted(let context):
            return "not JSON (\(context.debugDescription))"
        case DecodingError.keyNotFound(let key, let context):
            return "missing key '\((context.codingPath + [key]).map(\.stringValue).joined(separator: "."))'"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            return "wrong type at '\(context.codingPath.map(\.stringValue).joined(separator: "."))'"
        default:
            return "\(error)"
        }
    }

    /// Refuses a `required_backup` that would revisit a backup of the chain (or a chain too long to
    /// be real), instead of following it for ever.
    static func checkChain(_ chain: [String], next: String) throws {
        if chain.contains(next) || chain.count >= 100 {
            throw BackupError(.missingData, "the required_backup chain loops or is too long: \((chain + [next]).joined(separator: " -> "))")
        }
    }

    /// Fetches into a fresh hidden folder inside `target`, then renames `<that>/<part>` to
    /// `<target>/<part>`: a part appears whole or not at all, and a failure leaves nothing.
    static func staged(part: String, in target: String, _ fetch: (_ folder: String) async throws -> Int64)
        async throws -> Int64
    {
        let staging = target + "/.inplace-fetch-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        guard mkdir(staging, 0o700) == 0 else { throw FileSystem.ioError("cannot create \(staging)") }
        defer { try? FileManager.default.removeItem(atPath: staging) }
        let bytes = try await fetch(staging)
        let destination = target + "/" + part
        guard !FileSystem.exists(destination) else {
            throw BackupError(.io, "\(destination) already exists; refusing to replace it")
        }
        guard rename(staging + "/" + part, destination) == 0 else {
            throw FileSystem.ioError("cannot move the fetched part into \(destination)")
        }
        return bytes
    }

    /// Finds the part's entry in the table's metadata, refusing names that cannot be parts and
    /// disks the table does not have.
    static func partEntry(_ table: TableMetadata, disk: String, part: String, backup: String) throws -> BackupPart {
        _ = try PartName.validated(part, context: "backup \(backup), table \(table.database).\(table.table)")
        guard let entry = table.parts?[disk]?.first(where: { $0.name == part }) else {
            throw BackupError(.missingData,
                              "backup \(backup) lists no part \(part) on disk \(disk) for \(table.database).\(table.table)")
        }
        return entry
    }
}

/// Opens the backup named `name`: `from` decides where; without it a local backup of that name
/// is used if one exists, else the remote one.
public func openBackup(
    _ name: String, from location: BackupLocation?, layout: LocalBackupLayout, remote: RemoteBackupStore?
) async throws -> any BackupSource {
    try LocalBackupLayout.validateName(name)
    switch location {
    case .local:
        return LocalBackupSource(name: name, layout: layout, remote: remote)
    case .remote:
        guard let remote else {
            throw BackupError(.notFound, "--from remote needs general.remote_storage: s3 and an s3 section in the config")
        }
        return RemoteBackupSource(name: name, store: remote)
    case nil:
        if FileSystem.exists(layout.folder(name)) { return LocalBackupSource(name: name, layout: layout, remote: remote) }
        if let remote { return RemoteBackupSource(name: name, store: remote) }
        throw BackupError(.notFound, "no local backup named '\(name)' in \(layout.root), and no remote storage is configured")
    }
}
