import Foundation

/// `metadata.json`: one per backup. Keys and JSON types are clickhouse-backup's; optional keys
/// are omitted when empty, as it omits them.
public struct BackupMetadata: Codable, Sendable, Equatable {
    public struct Database: Codable, Sendable, Equatable {
        public var name: String
        public var engine: String
        public var query: String
    }

    public struct TableTitle: Codable, Sendable, Hashable {
        public var database: String
        public var table: String
        public init(database: String, table: String) {
            self.database = database
            self.table = table
        }
    }

    public struct Function: Codable, Sendable, Equatable {
        public var name: String
        public var create_query: String
    }

    public var backup_name: String
    /// Disk name -> path (`system.disks.path`, usually with a trailing `/`).
    public var disks: [String: String]?
    /// Disk name -> type (`local`, `s3`, ...).
    public var disk_types: [String: String]?
    /// The writer's version string.
    public var version: String?
    /// RFC 3339, possibly with fractional seconds.
    public var creation_date: String
    /// `regular`, or `embedded` for backups made by ClickHouse's own BACKUP (refused).
    public var tags: String?
    public var clickhouse_version: String?
    public var data_size: UInt64?
    public var metadata_size: UInt64?
    public var compressed_size: UInt64?
    public var databases: [Database]?
    public var tables: [TableTitle]?
    public var functions: [Function]?
    /// A compression name or `directory` for remote backups; empty for local ones.
    public var data_format: String?
    /// The base backup of an incremental backup.
    public var required_backup: String?

    public var isEmbedded: Bool { (tags ?? "").split(separator: ",").contains { $0.trimmingCharacters(in: .whitespaces) == "embedded" } }

    public var creationDate: Date? { BackupMetadata.parseDate(creation_date) }

    static func parseDate(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        if let date = formatter.date(from: text) { return date }
        // Go writes up to nine fractional digits; ISO8601DateFormatter reads at most a few.
        if let dot = text.firstIndex(of: "."), let zone = text[dot...].firstIndex(where: { $0 == "Z" || $0 == "+" || $0 == "-" }) {
            let trimmed = String(text[..<dot]) + String(text[zone...])
            formatter.formatOptions = [.withInternetDateTime]
            return formatter.date(from: trimmed)
        }
        return nil
    }

    /// Now, as RFC 3339 UTC with nanoseconds, without a date formatter (the journal stamps
    /// every transition with it).
    public static func now() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        var seconds = spec.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func digits(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(digits(Int(parts.tm_year) + 1900, 4))-\(digits(Int(parts.tm_mon) + 1, 2))-\(digits(Int(parts.tm_mday), 2))T"
            + "\(digits(Int(parts.tm_hour), 2)):\(digits(Int(parts.tm_min), 2)):\(digits(Int(parts.tm_sec), 2))."
            + "\(digits(Int(spec.tv_nsec), 9))Z"
    }

    /// RFC 3339 with nanoseconds, as Go writes `time.Time`.
    public static func formatDate(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        formatter.timeZone = TimeZone(identifier: "UTC")
        let base = formatter.string(from: date)  // 2026-11-26T19:30:11Z
        let nanos = Int((date.timeIntervalSince1970 - date.timeIntervalSince1970.rounded(.down)) * 1e9)
        return String(base.dropLast()) + String(format: ".%09dZ", nanos)
    }
}

/// One part in a table's metadata.
public struct BackupPart: Codable, Sendable, Hashable {
    public var name: String
    /// The data is not in this backup but in the `required_backup` chain.
    public var required: Bool?
    public var rebalanced_disk: String?
    /// Bytes on disk (clickhouse-backup 2.8 and later).
    public var size: Int64?

    public init(name: String, required: Bool? = nil, size: Int64? = nil) {
        self.name = name
        self.required = required
        self.size = size
    }

    public var isRequired: Bool { required ?? false }
}

/// `metadata/<enc db>/<enc table>.json`: one per table.
public struct TableMetadata: Codable, Sendable, Equatable {
    public struct Mutation: Codable, Sendable, Equatable {
        public var mutation_id: String
        public var command: String
    }

    public var database: String
    public var table: String
    public var uuid: String?
    /// The CREATE statement (with the Atomic UUID).
    public var query: String
    /// Disk -> parts; null for tables that have no parts (views, dictionaries, ...).
    public var parts: [String: [BackupPart]]?
    /// Disk -> archive names (remote backups).
    public var files: [String: [String]]?
    /// Disk -> bytes.
    public var size: [String: Int64]?
    public var total_bytes: UInt64?
    public var metadata_only: Bool?
    /// Part name -> CRC-64/ECMA of its checksums.txt.
    public var checksums: [String: UInt64]?
    /// Part name -> lower-case hex of `system.parts.hash_of_all_files`.
    public var hash_of_all_files: [String: String]?
    public var mutations: [Mutation]?
    /// `inplace`'s addition: the parts active in the live table when the backup was made.
    public var current_parts: [String: [BackupPart]]?
    /// `inplace`'s addition: hashes of `current_parts`.
    public var current_hash_of_all_files: [String: String]?
    /// `inplace`'s addition: part name -> rows, for the parts in `parts` (`inplace verify`
    /// compares them). Absent in clickhouse-backup's backups.
    public var part_rows: [String: UInt64]?
    /// `inplace`'s addition, written by `inplace create --partitions`: the partition ids the
    /// backup holds of the table. A restore changes only these partitions and leaves the others
    /// as they are. Absent (every partition) in clickhouse-backup's backups, which cannot say
    /// whether they were made with `--partitions`.
    public var inplace_partitions: [String]?
    /// The operator's `--partitions` for this table, resolved to ids (not stored in the backup):
    /// set by `ScopedBackupSource`, which also leaves the other partitions' parts out.
    public var selectedPartitions: PartitionFilter?

    enum CodingKeys: String, CodingKey {
        case database, table, uuid, query, parts, files, size, total_bytes, metadata_only, checksums
        case hash_of_all_files, mutations, current_parts, current_hash_of_all_files, part_rows, inplace_partitions
    }

    /// Whether the restore covers partition `id` of this table: the backup holds it (every
    /// partition, unless made with `--partitions`) and the operator selected it (every
    /// partition, without `--partitions`).
    public func covers(partition id: String) -> Bool {
        (inplace_partitions.map { $0.contains(id) } ?? true) && (selectedPartitions?.matches(id) ?? true)
    }

    /// True when the restore of this table covers only some of its partitions.
    public var isPartitionScoped: Bool { inplace_partitions != nil || selectedPartitions != nil }

    /// The covered partitions, for messages: `202401,202402`, or `202401 (backup) and 2024* (--partitions)`.
    public var partitionScope: String? {
        switch (inplace_partitions, selectedPartitions) {
        case (nil, nil): nil
        case (let held?, nil): held.sorted().joined(separator: ",")
        case (nil, let selected?): selected.description
        case (let held?, let selected?):
            "\(held.sorted().joined(separator: ",")) (the backup's) and \(selected.description) (--partitions)"
        }
    }

    public init(database: String, table: String, query: String) {
        self.database = database
        self.table = table
        self.query = query
        self.metadata_only = false
    }

    public var title: BackupMetadata.TableTitle { .init(database: database, table: table) }
}

extension JSONDecoder {
    static let backup = JSONDecoder()
}

extension JSONEncoder {
    /// Stable output: sorted keys, indented (for files people read).
    static var backup: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return encoder
    }
}
