import Foundation
import Logging

/// Gathers what the planner needs, then runs it: the I/O around the pure `Planner`.
///
/// 1. Check the server's version before anything else.
/// 2. Read the backup's metadata and the selected tables' JSON (several at once).
/// 3. Check that the data of every listed part is in the backup (local: the part folders;
///    remote: one listing of the backup's shadow folder, started before step 2 and made while
///    it runs).
/// 4. Read the live state with five queries for the whole run: disks, databases, tables, parts
///    and unfinished mutations.
/// 5. For tables whose backup has no `hash_of_all_files`, read the CRC-64 of each live part's
///    checksums.txt from disk, so both sides are compared the same way.
/// 6. Plan.
public struct PlanBuilder: Sendable {
    public struct Request: Sendable {
        public var source: any BackupSource
        public var tables: TablePattern
        public var skipTables: [String]
        public var options: PlanOptions
        public var concurrency: Int

        public init(source: any BackupSource, tables: TablePattern = TablePattern(nil),
                    skipTables: [String] = InplaceConfig.ClickHouse.defaultSkipTables, options: PlanOptions = PlanOptions(),
                    concurrency: Int = 8) {
            self.source = source
            self.tables = tables
            self.skipTables = skipTables
            self.options = options
            self.concurrency = concurrency
        }
    }

    public struct Result: Sendable {
        public var plan: RestorePlan
        public var backup: BackupMetadata
        public var tables: [TableMetadata]
        public var live: LiveState
        public var serverVersion: ClickHouseVersion
    }

    let client: ClickHouseClient
    let logger: Logger

    public init(client: ClickHouseClient, logger: Logger = Logger(label: "inplace.plan")) {
        self.client = client
        self.logger = logger
    }

    public func build(_ request: Request) async throws -> Result {
        let version = try await client.requireSupportedVersion()
        let source = request.source
        let backup = try await source.metadata()
        let titles = (backup.tables ?? []).filter {
            let named = source.backupName(database: $0.database, table: $0.table)
            return request.tables.matches(database: named.database, table: named.table)
                && !TablePattern.skipped(database: named.database, table: named.table, skip: request.skipTables)
        }
        if titles.isEmpty && !request.tables.selectsEverything {
            throw BackupError(.noTablesMatched,
                              "--tables '\(request.tables.patterns.joined(separator: ","))' matches no table in backup \(source.name); nothing to do")
        }
        logger.info("planning \(titles.count) table(s) from backup \(source.name) (\(source.location.rawValue))")
        source.prepareMissingParts()
        let tables = try await concurrentMap(titles, width: request.concurrency) { title in
            try await source.tableMetadata(database: title.database, table: title.table)
        }
        let missing = try await concurrentMap(tables, width: request.concurrency) { try await source.missingParts($0) }
        let loaded = Array(zip(tables, missing))
        var options = request.options
        options.downloadsUseSpace = source.location == .remote

        let live = try await liveState(for: loaded.map(\.0))
        let states = loaded.map { Self.backupState($0.0, missing: $0.1, requiredBackup: backup.required_backup) }
        let plan = Planner.plan(backup: states, live: live, options: options)
        return Result(plan: plan, backup: backup, tables: loaded.map(\.0), live: live, serverVersion: version)
    }

    /// Five queries, whatever the number of tables.
    func liveState(for tables: [TableMetadata]) async throws -> LiveState {
        let catalog = ClickHouseCatalog(client: client)
        let disks = try await catalog.disks()
        let databases = try await catalog.databases()
        let wanted = Set(tables.map { TableKey($0.database, $0.table) })
        let liveTables = try await catalog.tables().filter { wanted.contains(TableKey($0.database, $0.name)) }
        let parts = try await catalog.parts(of: liveTables.map { ($0.database, $0.name) })
        var mutations: [TableKey: [TablePlan.Mutation]] = [:]
        for mutation in try await catalog.unfinishedMutations(of: liveTables.map { ($0.database, $0.name) }) {
            mutations[TableKey(mutation.database, mutation.table), default: []].append(
                TablePlan.Mutation(id: mutation.id, command: mutation.command))
        }
        let withoutHashes = Set(tables.filter { table in
            (table.parts ?? [:]).values.joined().contains { table.hash_of_all_files?[$0.name] == nil }
        }.map { TableKey($0.database, $0.table) })

        // A restore of some partitions (`--partitions`, or a backup made with it) sees only those
        // of the live table: the others are neither compared nor dropped.
        let scoped = Dictionary(tables.filter(\.isPartitionScoped).map { (TableKey($0.database, $0.table), $0) },
                                uniquingKeysWith: { a, _ in a })
        var partsByTable: [TableKey: [LiveState.Part]] = [:]
        for part in parts {
            let key = TableKey(part.database, part.table)
            if let table = scoped[key], !table.covers(partition: part.partitionID) { continue }
            var crc: UInt64?
            if withoutHashes.contains(key) {
                // Backups made before hash_of_all_files existed: compare CRC-64 of checksums.txt.
                crc = (try? FileSystem.readFile(part.path + (part.path.hasSuffix("/") ? "" : "/") + "checksums.txt"))
                    .map(CRC64.checksum)
            }
            partsByTable[key, default: []].append(LiveState.Part(
                name: part.name, partitionID: part.partitionID, disk: part.disk, hash: part.hash, checksumsCRC: crc,
                bytes: Int64(part.bytesOnDisk)))
        }
        var byKey: [TableKey: LiveState.Table] = [:]
        for table in liveTables {
            let key = TableKey(table.database, table.name)
            byKey[key] = LiveState.Table(engine: table.engine, createQuery: table.createQuery, parts: partsByTable[key] ?? [],
                                         mutations: mutations[key] ?? [])
        }
        return LiveState(databases: Dictionary(databases.map { ($0.name, $0.engine) }, uniquingKeysWith: { a, _ in a }),
                         tables: byKey,
                         disks: Dictionary(disks.map { ($0.name, $0.freeSpace) }, uniquingKeysWith: { a, _ in a }))
    }

    static func backupState(_ table: TableMetadata, missing: Set<String>, requiredBackup: String? = nil) -> BackupTableState {
        func parts(_ map: [String: [BackupPart]]?, hashes: [String: String]?) -> [BackupTableState.Part] {
            (map ?? [:]).sorted { $0.key < $1.key }.flatMap { disk, parts in
                parts.map {
                    BackupTableState.Part(name: $0.name, disk: disk, hash: hashes?[$0.name],
                                          checksumsCRC: table.checksums?[$0.name], bytes: $0.size ?? 0)
                }
            }
        }
        var state = BackupTableState(
            database: table.database, table: table.table, query: table.query, uuid: table.uuid,
            metadataOnly: table.metadata_only ?? false, parts: parts(table.parts, hashes: table.hash_of_all_files),
            currentParts: table.current_parts.map { parts($0, hashes: table.current_hash_of_all_files) },
            missingData: missing)
        state.partitionScope = table.partitionScope
        state.mutations = (table.mutations ?? []).map { TablePlan.Mutation(id: $0.mutation_id, command: $0.command) }
        let required = (table.parts ?? [:]).values.joined().filter { $0.isRequired && missing.contains($0.name) }
        if !required.isEmpty {
            state.missingDataNote = "\(required.count) of the backup's missing part(s) are marked required: their data is in its base backup '\(requiredBackup ?? "")' (required_backup), which is missing or lacks them; put the base backup back, or restore from a full backup"
        }
        return state
    }
}
