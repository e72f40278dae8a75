import Foundation

/// The options of a restore, as journaled with its run (never a password or a secret).
public struct RestoreOptions: Sendable, Codable, Equatable {
    public var tables: String?
    public var dropIfSchemaChanged: Bool
    public var full: Bool
    /// Restore data into existing tables only: no table is created.
    public var dataOnly: Bool
    /// Create missing tables only: no part is dropped or downloaded.
    public var schemaOnly: Bool
    public var ignoreDiskSpace: Bool
    public var concurrency: Int
    /// A table's drops run before its downloads, to free disk space first, trusting that the
    /// backup's parts that are listed will download and attach. By default drops wait until
    /// every part of the backup for the table is attached and verified.
    public var dropFirst: Bool
    /// Kill a live table's unfinished mutations before restoring it, instead of refusing it.
    public var killMutations: Bool
    /// `--partitions`, as given: the restore covers only these partitions.
    public var partitions: [String]?
    /// `--restore-database-mapping` and `restore_database_mapping`, merged.
    public var databaseMapping: [String: String]?
    /// `--restore-table-mapping` and `restore_table_mapping`, merged.
    public var tableMapping: [String: String]?

    /// The backup as this restore reads it: mapped names, selected partitions.
    public func scoped(_ source: any BackupSource, client: ClickHouseClient) async throws -> any BackupSource {
        try await ScopedBackupSource.open(
            source, mapping: TableMapping(databases: databaseMapping ?? [:], tables: tableMapping ?? [:]),
            partitions: try PartitionSelection(partitions ?? []), client: client)
    }

    public init(tables: String? = nil, dropIfSchemaChanged: Bool = false, full: Bool = false, dataOnly: Bool = false,
                schemaOnly: Bool = false, ignoreDiskSpace: Bool = false, concurrency: Int = 4, dropFirst: Bool = false,
                killMutations: Bool = false) {
        self.killMutations = killMutations
        self.tables = tables
        self.dropIfSchemaChanged = dropIfSchemaChanged
        self.full = full
        self.dataOnly = dataOnly
        self.schemaOnly = schemaOnly
        self.ignoreDiskSpace = ignoreDiskSpace
        self.concurrency = concurrency
        self.dropFirst = dropFirst
    }

    enum CodingKeys: String, CodingKey {
        case tables, dropIfSchemaChanged, full, dataOnly, schemaOnly, ignoreDiskSpace, concurrency, dropFirst,
             killMutations, partitions, databaseMapping, tableMapping
    }

    /// Runs journaled before `dropFirst` or `killMutations` existed decode with their defaults.
    public init(from decoder: any Decoder) throws {
        let values = try decoder.container(keyedBy: CodingKeys.self)
        tables = try values.decodeIfPresent(String.self, forKey: .tables)
        dropIfSchemaChanged = try values.decode(Bool.self, forKey: .dropIfSchemaChanged)
        full = try values.decode(Bool.self, forKey: .full)
        dataOnly = try values.decode(Bool.self, forKey: .dataOnly)
        schemaOnly = try values.decode(Bool.self, forKey: .schemaOnly)
        ignoreDiskSpace = try values.decode(Bool.self, forKey: .ignoreDiskSpace)
        concurrency = try values.decode(Int.self, forKey: .concurrency)
        dropFirst = try values.decodeIfPresent(Bool.self, forKey: .dropFirst) ?? false
        killMutations = try values.decodeIfPresent(Bool.self, forKey: .killMutations) ?? false
        partitions = try values.decodeIfPresent([String].self, forKey: .partitions)
        databaseMapping = try values.decodeIfPresent([String: String].self, forKey: .databaseMapping)
        tableMapping = try values.decodeIfPresent([String: String].self, forKey: .tableMapping)
    }

    /// `killMutations` is written only when set, so the options of a run without it read as
    /// they did before it existed (an unfinished run is found again by its options' text).
    public func encode(to encoder: any Encoder) throws {
        var values = encoder.container(keyedBy: CodingKeys.self)
        try values.encodeIfPresent(tables, forKey: .tables)
        try values.encode(dropIfSchemaChanged, forKey: .dropIfSchemaChanged)
        try values.encode(full, forKey: .full)
        try values.encode(dataOnly, forKey: .dataOnly)
        try values.encode(schemaOnly, forKey: .schemaOnly)
        try values.encode(ignoreDiskSpace, forKey: .ignoreDiskSpace)
        try values.encode(concurrency, forKey: .concurrency)
        try values.encode(dropFirst, forKey: .dropFirst)
        if killMutations { try values.encode(true, forKey: .killMutations) }
        // Likewise written only when given.
        if let partitions, !partitions.isEmpty { try values.encode(partitions, forKey: .partitions) }
        if let databaseMapping, !databaseMapping.isEmpty { try values.encode(databaseMapping, forKey: .databaseMapping) }
        if let tableMapping, !tableMapping.isEmpty { try values.encode(tableMapping, forKey: .tableMapping) }
    }

    /// Stable JSON (sorted keys): two runs with equal options journal equal text.
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }
}

/// A counting semaphore for async tasks: bounds transfers across all tables of a run.
actor AsyncSemaphore {
    private var available: Int
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(_ count: Int) { available = max(1, count) }

    func acquire() async {
        if available > 0 {
            available -= 1
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty {
            available += 1
        } else {
            waiters.removeFirst().resume()
        }
    }

    /// Runs `body` holding one slot, released however it ends.
    nonisolated func withSlot<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        await acquire()
        do {
            let result = try await body()
            await release()
            return result
        } catch {
            await release()
            throw error
        }
    }
}
