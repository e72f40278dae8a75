import Foundation

/// A backup as a restore with `--partitions` and name mappings sees it: tables under their
/// mapped names (CREATE statements renamed, without the original UUID), and each table's parts
/// only those of the partitions the restore covers (the backup's own `inplace_partitions`, and
/// the operator's selection). Everything downstream (plan, downloads, verification, resume)
/// reads the backup through it, so none of it needs to know about either.
public struct ScopedBackupSource: BackupSource {
    let base: any BackupSource
    let mapping: TableMapping
    let partitions: PartitionSelection
    let resolver: PartitionResolver
    /// Mapped name -> the backup's name, for every table the backup lists.
    let sources: [TableKey: TableKey]
    let backup: BackupMetadata

    public var name: String { base.name }
    public var location: BackupLocation { base.location }
    public var address: String { base.address }

    /// Wraps `base`; returns it unchanged when there is neither a mapping nor a selection.
    /// Refuses mappings that send two of the backup's tables to one name.
    public static func open(_ base: any BackupSource, mapping: TableMapping, partitions: PartitionSelection,
                            client: ClickHouseClient) async throws -> any BackupSource {
        guard !mapping.isEmpty || !partitions.isEmpty else { return base }
        var backup = try await base.metadata()
        var sources: [TableKey: TableKey] = [:]
        var titles: [BackupMetadata.TableTitle] = []
        for title in backup.tables ?? [] {
            let target = mapping.target(database: title.database, table: title.table)
            if let other = sources[target] {
                throw BackupError(.invalidArgument, "the mappings restore both \(other.database).\(other.table) and \(title.database).\(title.table) as \(target.database).\(target.table); map them to different names")
            }
            sources[target] = TableKey(title.database, title.table)
            titles.append(.init(database: target.database, table: target.table))
        }
        backup.tables = titles
        if let databases = backup.databases {
            var mapped = databases
            for database in databases {
                guard let target = mapping.databases[database.name], !databases.contains(where: { $0.name == target })
                else { continue }
                mapped.append(.init(name: target, engine: database.engine, query: database.query))
            }
            backup.databases = mapped
        }
        return ScopedBackupSource(base: base, mapping: mapping, partitions: partitions,
                                  resolver: PartitionResolver(client: client), sources: sources, backup: backup)
    }

    public func metadata() async throws -> BackupMetadata { backup }

    func source(_ database: String, _ table: String) -> TableKey {
        sources[TableKey(database, table)] ?? TableKey(database, table)
    }

    public func backupName(database: String, table: String) -> TableKey { source(database, table) }

    public func tableMetadata(database: String, table: String) async throws -> TableMetadata {
        let original = source(database, table)
        var metadata = try await base.tableMetadata(database: original.database, table: original.table)
        if original != TableKey(database, table) {
            guard let query = TableMapping.rename(metadata.query, to: TableKey(database, table)) else {
                throw BackupError(.invalidArgument, "cannot map \(original.database).\(original.table) to \(database).\(table): its CREATE statement's name was not found in: \(metadata.query.prefix(200))")
            }
            metadata.query = query
            metadata.database = database
            metadata.table = table
            metadata.uuid = nil
        }
        let rules = partitions.rules(database: original.database, table: original.table)
        if !rules.isEmpty {
            let filter: PartitionFilter
            if rules.allSatisfy({ $0.tuples.isEmpty }) {
                filter = PartitionFilter.literal(rules)
            } else {
                filter = try await resolver.filter(rules, createQuery: metadata.query, table: "\(database).\(table)")
            }
            metadata.select(filter)
        }
        return metadata
    }

    public func fetchPart(database: String, table: String, disk: String, part: String, into target: String)
        async throws -> FetchedPart
    {
        let original = source(database, table)
        return try await base.fetchPart(database: original.database, table: original.table, disk: disk, part: part,
                                        into: target)
    }

    public func missingParts(_ table: TableMetadata) async throws -> Set<String> {
        let original = source(table.database, table.table)
        var named = table
        named.database = original.database
        named.table = original.table
        return try await base.missingParts(named)
    }

    public func prepareMissingParts() { base.prepareMissingParts() }
}

extension TableMetadata {
    /// Restricts the table to the partitions `filter` selects: the other partitions' parts are
    /// left out of `parts` and `current_parts`, and the restore leaves them as they are live.
    public mutating func select(_ filter: PartitionFilter) {
        selectedPartitions = filter
        func kept(_ map: [String: [BackupPart]]?) -> [String: [BackupPart]]? {
            map?.mapValues { parts in parts.filter { covers(partition: PartName($0.name)?.partitionID ?? $0.name) } }
        }
        parts = kept(parts)
        current_parts = kept(current_parts)
    }
}
