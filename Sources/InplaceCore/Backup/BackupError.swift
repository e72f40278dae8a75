/// The one error type of the backup boundary: reading, creating and uploading backups in
/// clickhouse-backup's format. Each says what is wrong and what to do.
public struct BackupError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case invalidName
        case alreadyExists
        case notFound
        case noTablesMatched
        /// metadata.json or a table's JSON is missing or not valid JSON.
        case invalidMetadata
        /// Made by ClickHouse's own BACKUP (`tags` holds `embedded`).
        case embedded
        /// Parts on an object-storage disk, or a disk this server lacks.
        case unsupportedDisk
        /// Part data the metadata lists is not in the backup.
        case missingData
        /// A part name that cannot be a part's folder name.
        case invalidPartName
        case incomplete
        /// A flag's value that cannot be used (`--partitions`, mappings).
        case invalidArgument
        case io
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
