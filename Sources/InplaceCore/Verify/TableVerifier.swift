/// Whether one live table equals the backup's: the I/O around the pure `TableComparison`.
///
/// 1. Read the table's active parts: one system.parts query, whatever the number of parts.
/// 2. Give both sides' parts the identity the planner uses: `hash_of_all_files`, or, when the
///    backup lacks it for any part, CRC-64/ECMA of checksums.txt on both sides (each live part's
///    file read from disk, as the planner does).
/// 3. Compare: content as a multiset, rows where the backup records them (`part_rows`), and the
///    block order within each partition.
///
/// The restore calls it once per table before reporting the table done; `inplace verify` calls it
/// for every selected table. A schema-only table (`metadata_only`) has no parts to compare: the
/// caller leaves it out.
public struct TableVerifier: Sendable {
    let client: ClickHouseClient
    /// False leaves the block-order check out (content and rows only).
    public var checkOrder: Bool
    /// At most this many differences are listed (all are counted).
    public var limit: Int

    public init(client: ClickHouseClient, checkOrder: Bool = true, limit: Int = 100) {
        self.client = client
        self.checkOrder = checkOrder
        self.limit = limit
    }

    /// The live table against `backup`, with one system.parts query. A table that does not exist
    /// has no parts: every backup part is reported missing (`inplace verify` checks existence first).
    public func compare(database: String, table: String, backup: TableMetadata) async throws -> TableComparison {
        let live = try await ClickHouseCatalog(client: client).parts(of: [(database, table)], activeOnly: true)
        return try Self.compare(backup: backup, live: live, checkOrder: checkOrder, limit: limit)
    }

    /// The first `limit` differences, in a stable order; empty when the table equals the backup.
    public func differences(database: String, table: String, backup: TableMetadata) async throws -> [TableDifference] {
        try await compare(database: database, table: table, backup: backup).differences
    }

    /// The same comparison with live parts already read (active parts of this one table, e.g. from
    /// one system.parts query for many tables). Reads checksums.txt files only for backups without
    /// hashes. Throws when the backup lists a part whose name is not a part name.
    public static func compare(backup: TableMetadata, live: [ClickHouseCatalog.Part], checkOrder: Bool = true,
                               limit: Int = 100) throws -> TableComparison {
        let (backupParts, useCRC) = try parts(of: backup)
        // Only the partitions the restore covers (all, unless it was of some partitions).
        let live = backup.isPartitionScoped ? live.filter { backup.covers(partition: $0.partitionID) } : live
        return TableComparison.compare(backup: backupParts, live: liveParts(live, useCRC: useCRC), checkOrder: checkOrder,
                                       limit: limit, identityKind: useCRC ? "checksums" : "hash_of_all_files")
    }

    /// The backup's parts (every disk, `required` ones included) and whether identities are CRCs.
    static func parts(of table: TableMetadata) throws -> (parts: [TableComparison.Part], useCRC: Bool) {
        let listed = (table.parts ?? [:]).sorted { $0.key < $1.key }.flatMap(\.value)
        let useCRC = listed.contains { table.hash_of_all_files?[$0.name] == nil }
        let parts = try listed.map { part in
            let name = try PartName.validated(part.name, context: "table \(table.database).\(table.table) in the backup")
            let identity = useCRC ? table.checksums?[part.name].map { "crc64:\($0)" } : table.hash_of_all_files?[part.name]
            return TableComparison.Part(name: part.name, partition: name.partitionID,
                                        identity: identity ?? "no checksums recorded for \(part.name)",
                                        minBlock: name.minBlock, rows: table.part_rows?[part.name])
        }
        return (parts, useCRC)
    }

    /// Live parts with the identity `useCRC` asks for. A checksums.txt that cannot be read (the
    /// part was merged away meanwhile, say) gives an identity that matches nothing.
    static func liveParts(_ parts: [ClickHouseCatalog.Part], useCRC: Bool) -> [TableComparison.Part] {
        parts.map { part in
            var identity = part.hash
            if useCRC {
                let file = part.path + (part.path.hasSuffix("/") ? "" : "/") + "checksums.txt"
                identity = (try? FileSystem.readFile(file)).map { "crc64:\(CRC64.checksum($0))" }
                    ?? "checksums.txt of \(part.name) unreadable"
            }
            return TableComparison.Part(name: part.name, partition: part.partitionID, identity: identity,
                                        minBlock: part.minBlock, rows: part.rows)
        }
    }
}
