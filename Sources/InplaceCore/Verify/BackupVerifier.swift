import Logging

/// `inplace verify`: whether every selected table of a backup equals the live database. Changes
/// nothing.
///
/// 1. Check the server's version. Read the backup's metadata; select its tables (`--tables`, minus `clickhouse.skip_tables`
///    and the system databases, as the plan does).
/// 2. Read the live tables with one system.tables query.
/// 3. Per table (several at once): read its JSON. A table the database lacks is a difference; a
///    schema-only table, or one whose engine keeps no parts, is not compared; a MergeTree table is
///    compared by `TableVerifier` (one system.parts query each). A live table that keeps no parts
///    where the backup's is a MergeTree is a difference. Tables only in the database are left out.
public struct BackupVerifier: Sendable {
    public struct Request: Sendable {
        public var source: any BackupSource
        public var tables: TablePattern
        public var skipTables: [String]
        public var concurrency: Int
        public var checkOrder: Bool

        public init(source: any BackupSource, tables: TablePattern = TablePattern(nil),
                    skipTables: [String] = InplaceConfig.ClickHouse.defaultSkipTables, concurrency: Int = 4,
                    checkOrder: Bool = true) {
            self.source = source
            self.tables = tables
            self.skipTables = skipTables
            self.concurrency = concurrency
            self.checkOrder = checkOrder
        }
    }

    let client: ClickHouseClient
    let logger: Logger

    public init(client: ClickHouseClient, logger: Logger = Logger(label: "inplace.verify")) {
        self.client = client
        self.logger = logger
    }

    public func verify(_ request: Request) async throws -> VerifyReport {
        _ = try await client.requireSupportedVersion()
        let source = request.source
        let titles = try await source.tables().filter {
            request.tables.matches(database: $0.database, table: $0.table)
                && !TablePattern.skipped(database: $0.database, table: $0.table, skip: request.skipTables)
        }.sorted { ($0.database, $0.table) < ($1.database, $1.table) }
        if titles.isEmpty && !request.tables.selectsEverything {
            throw BackupError(.noTablesMatched,
                              "--tables '\(request.tables.patterns.joined(separator: ","))' matches no table in backup \(source.name); nothing to verify")
        }
        logger.info("verifying \(titles.count) table(s) against backup \(source.name) (\(source.location.rawValue))")
        var live: [TableKey: ClickHouseCatalog.Table] = [:]
        for table in try await ClickHouseCatalog(client: client).tables() { live[TableKey(table.database, table.name)] = table }
        let verifier = TableVerifier(client: client, checkOrder: request.checkOrder)
        let liveTables = live
        let tables = try await concurrentMap(titles, width: request.concurrency) { title in
            let metadata = try await source.tableMetadata(database: title.database, table: title.table)
            return try await Self.verify(metadata, live: liveTables[TableKey(title.database, title.table)], with: verifier)
        }
        return VerifyReport(backup: source.name, source: source.location, tables: tables)
    }

    static func verify(_ backup: TableMetadata, live: ClickHouseCatalog.Table?, with verifier: TableVerifier)
        async throws -> VerifyReport.Table
    {
        var result = VerifyReport.Table(database: backup.database, table: backup.table)
        let backupParts = (backup.parts ?? [:]).values.reduce(0) { $0 + $1.count }
        guard let live else {
            result.status = .different
            result.parts = .init(backup: backupParts, live: 0)
            result.differenceCount = 1
            result.differences = [.missingTable(database: backup.database, table: backup.table, backupParts: backupParts)]
            return result
        }
        let engine = CreateQuery.engine(backup.query) ?? "unknown"
        if backup.metadata_only == true || !engine.hasSuffix("MergeTree") {
            result.status = .notCompared
            result.reason = backup.metadata_only == true && engine.hasSuffix("MergeTree")
                ? "the backup holds this table's schema only (metadata_only): no parts to compare"
                : "engine \(engine) keeps no parts to compare"
            return result
        }
        guard live.isMergeTree else {
            result.status = .different
            result.parts = .init(backup: backupParts, live: 0)
            result.differenceCount = 1
            result.differences = [.engine(live: live.engine, backup: engine)]
            return result
        }
        let comparison = try await verifier.compare(database: backup.database, table: backup.table, backup: backup)
        result.status = comparison.isEqual ? .equal : .different
        result.identity = comparison.identityKind
        result.parts = .init(backup: comparison.backupParts, live: comparison.liveParts)
        result.differenceCount = comparison.differenceCount
        result.differences = comparison.differences
        return result
    }
}
