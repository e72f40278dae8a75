/// The live state `inplace` reads from ClickHouse's system tables: disks, databases, tables and
/// parts. Each call is one query for the whole server (or a list of tables), never one per table.
public struct ClickHouseCatalog: Sendable {
    public let client: ClickHouseClient

    public init(client: ClickHouseClient) { self.client = client }

    /// Databases whose tables are never backed up or restored.
    public static let systemDatabases: Set<String> = ["system", "INFORMATION_SCHEMA", "information_schema",
                                                      "_temporary_and_external_tables"]

    public struct Disk: Sendable, Equatable {
        public var name: String
        /// Absolute, ending in `/`.
        public var path: String
        /// `Local`, `ObjectStorage`, ...
        public var type: String
        public var isRemote: Bool
        public var freeSpace: UInt64
    }

    public struct Database: Sendable, Equatable {
        public var name: String
        public var engine: String
        public var engineFull: String
        public var uuid: String
    }

    public struct Table: Sendable, Equatable {
        public var database: String
        public var name: String
        public var engine: String
        public var createQuery: String
        public var uuid: String
        /// Absolute folders holding the table's parts, one per disk.
        public var dataPaths: [String]

        public var isMergeTree: Bool { engine.hasSuffix("MergeTree") }
        public var isReplicated: Bool { engine.hasPrefix("Replicated") }
    }

    public struct Part: Sendable, Equatable {
        public var database: String
        public var table: String
        public var name: String
        public var partitionID: String
        public var disk: String
        /// Absolute folder of the part.
        public var path: String
        /// Lower-case hex of `hash_of_all_files`.
        public var hash: String
        public var rows: UInt64
        public var bytesOnDisk: UInt64
        public var active: Bool
        public var minBlock: Int64
        public var maxBlock: Int64
        public var level: UInt64
    }

    public func disks() async throws(ClickHouseError) -> [Disk] {
        try await client.tsvRows("SELECT name, path, type, is_remote, free_space FROM system.disks ORDER BY name",
                                 as: DiskRow.self).map(\.disk)
    }

    /// `system.macros` as name -> substitution (`{name}` in `s3.path`; see `RemotePaths`).
    public func macros() async throws(ClickHouseError) -> [String: String] {
        let rows = try await client.rows("SELECT macro, substitution FROM system.macros", as: MacroRow.self)
        return Dictionary(rows.map { ($0.macro, $0.substitution) }, uniquingKeysWith: { first, _ in first })
    }

    public func databases() async throws(ClickHouseError) -> [Database] {
        try await client.tsvRows("SELECT name, engine, engine_full, toString(uuid) FROM system.databases ORDER BY name",
                                 as: DatabaseRow.self).map(\.database)
    }

    /// Every table outside the system databases.
    public func tables() async throws(ClickHouseError) -> [Table] {
        try await client.tsvRows(
            """
            SELECT database, name, engine, create_table_query, toString(uuid), data_paths
            FROM system.tables
            WHERE database NOT IN ({system:Array(String)}) AND is_temporary = 0
            ORDER BY database, name
            """, as: TableRow.self,
            // The UUID belongs in the statement (Atomic databases, `{uuid}` in Keeper paths);
            // secrets are shown where the server allows it, else they read `[HIDDEN]`.
            settings: ["show_table_uuid_in_table_create_query_if_not_nil": "1",
                       "format_display_secrets_in_show_and_select": "1"],
            parameters: ["system": Self.arrayLiteral(Self.systemDatabases.sorted())]
        ).map(\.table)
    }

    /// Parts of the given tables (one query per `batches` of them); `activeOnly` false adds parts
    /// that merges have replaced but ClickHouse has not removed yet.
    public func parts(of tables: [(database: String, table: String)], activeOnly: Bool = true)
        async throws(ClickHouseError) -> [Part]
    {
        var parts: [Part] = []
        for keys in Self.batches(tables) {
            parts += try await client.tsvRows(
                """
                SELECT database, table, name, partition_id, disk_name, path, lower(hash_of_all_files),
                       rows, bytes_on_disk, active, min_block_number, max_block_number, level
                FROM system.parts
                WHERE (database, table) IN {keys:Array(Tuple(String, String))}\(activeOnly ? " AND active" : "")
                ORDER BY database, table, partition_id, min_block_number, name
                """, as: PartRow.self, parameters: ["keys": keys]
            ).map(\.part)
        }
        return parts
    }

    /// An unfinished mutation (`system.mutations`, `is_done = 0`).
    public struct Mutation: Sendable, Equatable {
        public var database: String
        public var table: String
        public var id: String
        public var command: String
    }

    /// Unfinished mutations of the given tables (one query per `batches` of them: system.mutations
    /// reads every table's mutations whatever the filter), oldest first per table.
    public func unfinishedMutations(of tables: [(database: String, table: String)])
        async throws(ClickHouseError) -> [Mutation]
    {
        var mutations: [Mutation] = []
        for keys in Self.batches(tables) {
            mutations += try await client.tsvRows(
                """
                SELECT database, table, mutation_id, command FROM system.mutations
                WHERE is_done = 0 AND (database, table) IN {keys:Array(Tuple(String, String))}
                ORDER BY database, table, create_time, mutation_id
                """, as: MutationRow.self, parameters: ["keys": keys]
            ).map(\.mutation)
        }
        return mutations
    }

    /// The tables as `tupleLiteral`s of at most about `limit` characters each: a parameter travels
    /// in the URL, which servers cap (ClickHouse's `http_max_uri_size`, 1 MiB by default; 64 KiB
    /// for Python's http.server), and 10,000 tables' names overflow the smaller.
    static func batches(_ tables: [(database: String, table: String)], limit: Int = 8192) -> [String] {
        var literals: [String] = []
        var batch: [(database: String, table: String)] = []
        var length = 0
        for table in tables {
            let size = table.database.utf8.count + table.table.utf8.count + 8
            if !batch.isEmpty, length + size > limit {
                literals.append(tupleLiteral(batch))
                batch.removeAll(keepingCapacity: true)
                length = 0
            }
            batch.append(table)
            length += size
        }
        if !batch.isEmpty { literals.append(tupleLiteral(batch)) }
        return literals
    }

    /// A ClickHouse array literal of (database, table) tuples, for an `Array(Tuple(String, String))` parameter.
    static func tupleLiteral(_ tables: [(database: String, table: String)]) -> String {
        "[" + tables.map { "(\(parameterString($0.database)),\(parameterString($0.table)))" }.joined(separator: ",") + "]"
    }

    /// A ClickHouse array literal of strings, for an `Array(String)` query parameter.
    static func arrayLiteral(_ items: [String]) -> String {
        "[" + items.map { parameterString($0) }.joined(separator: ",") + "]"
    }

    /// A string inside an array or tuple parameter. ClickHouse reads such a value as a quoted
    /// literal after the client has escaped backslashes, tabs and newlines for the parameter, so
    /// a backslash escape here would arrive doubled: a quote is doubled SQL-style instead, and
    /// every other character is left to the client's escaping (a name holding `'` or `\` broke
    /// the parts query).
    static func parameterString(_ value: String) -> String {
        "'" + value.replacingOccurrences(of: "'", with: "''") + "'"
    }

    private struct DiskRow: TSVDecodable, Sendable {
        let disk: Disk
        init(row: TSVRow) throws {
            var path = try row.string(1)
            if !path.hasSuffix("/") { path += "/" }
            disk = Disk(name: try row.string(0), path: path, type: try row.string(2), isRemote: try row.bool(3),
                        freeSpace: try row.uint64(4))
        }
    }

    private struct MacroRow: Decodable, Sendable {
        let macro: String
        let substitution: String
    }

    private struct DatabaseRow: TSVDecodable, Sendable {
        let database: Database
        init(row: TSVRow) throws {
            database = Database(name: try row.string(0), engine: try row.string(1), engineFull: try row.string(2),
                                uuid: try row.string(3))
        }
    }

    private struct TableRow: TSVDecodable, Sendable {
        let table: Table
        init(row: TSVRow) throws {
            table = Table(database: try row.string(0), name: try row.string(1), engine: try row.string(2),
                          createQuery: try row.string(3), uuid: try row.string(4), dataPaths: try row.stringArray(5))
        }
    }

    private struct MutationRow: TSVDecodable, Sendable {
        let mutation: Mutation
        init(row: TSVRow) throws {
            mutation = Mutation(database: try row.string(0), table: try row.string(1), id: try row.string(2),
                                command: try row.string(3))
        }
    }

    private struct PartRow: TSVDecodable, Sendable {
        let part: Part
        init(row: TSVRow) throws {
            part = Part(database: try row.string(0), table: try row.string(1), name: try row.string(2),
                        partitionID: try row.string(3), disk: try row.string(4), path: try row.string(5),
                        hash: try row.string(6), rows: try row.uint64(7), bytesOnDisk: try row.uint64(8),
                        active: try row.bool(9), minBlock: try row.int64(10), maxBlock: try row.int64(11),
                        level: try row.uint64(12))
        }
    }
}
