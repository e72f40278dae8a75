import Foundation
import Logging

/// `inplace create`: a local backup in clickhouse-backup's layout, plus the live parts at backup
/// time (`current_parts`).
///
/// 1. Check the server's version; claim `<default disk>/backup/NAME/` (refused if it exists).
/// 2. Select tables: `--tables` globs on `db.table`, minus system databases and `skip_tables`.
///    Each selected table's lock (TableLocks, the one a restore holds) is tried once before
///    anything is frozen, so that a table being restored refuses the backup early (or is waited
///    for, `waitLock`): a backup taken mid-restore would record a half-restored table.
/// 3. Per table (several at once), holding its lock from its first read to its JSON written:
///    for a MergeTree table, read its parts (with hashes), FREEZE WITH NAME a
///    random name, read the active parts again (`current_parts`), move the frozen part folders
///    into the backup's shadow folder (same disk, a rename), UNFREEZE, then write the table's
///    JSON with sizes, `hash_of_all_files`, `checksums` (CRC-64 of checksums.txt) and the rows
///    of each part (`part_rows`, read by `inplace verify`).
///    Other tables, and every table with `--schema`, get their JSON only.
/// 4. Write `metadata.json` last, durably: a backup without it is incomplete, and is listed so.
/// On failure the half-made backup folder is removed.
///
/// What it writes is the owner's of the disk's folder, as clickhouse-backup leaves it (FileOwner:
/// given when root runs it; refused before anything is written when another user does).
public struct BackupCreator: Sendable {
    public struct Options: Sendable {
        public var name: String
        public var tables: TablePattern
        public var schemaOnly: Bool
        public var skipTables: [String]
        public var concurrency: Int
        /// How long to wait for each table locked by a restore (zero: refuse at once).
        public var waitLock: Duration
        /// `--partitions`: back up only these partitions of the tables the rules name; each such
        /// table's JSON records the partition ids it holds (`inplace_partitions`), so that a
        /// restore changes those partitions only.
        public var partitions: PartitionSelection

        public init(name: String, tables: TablePattern = TablePattern(nil), schemaOnly: Bool = false,
                    skipTables: [String] = InplaceConfig.ClickHouse.defaultSkipTables, concurrency: Int = 2,
                    waitLock: Duration = .zero, partitions: PartitionSelection = try! PartitionSelection([])) {
            self.partitions = partitions
            self.name = name
            self.tables = tables
            self.schemaOnly = schemaOnly
            self.skipTables = skipTables
            self.concurrency = concurrency
            self.waitLock = waitLock
        }
    }

    public struct Summary: Sendable {
        public var name: String
        public var folder: String
        public var tables: Int
        public var parts: Int
        public var bytes: Int64
    }

    let client: ClickHouseClient
    let logger: Logger
    /// The table locks' folder; nil: the server's (`<default disk>/backup/.inplace-locks`).
    let locksFolder: String?

    public init(client: ClickHouseClient, logger: Logger = Logger(label: "inplace.create"), locksFolder: String? = nil) {
        self.client = client
        self.logger = logger
        self.locksFolder = locksFolder
    }

    public func create(_ options: Options) async throws -> Summary {
        try LocalBackupLayout.validateName(options.name)
        let version = try await client.requireSupportedVersion()
        let catalog = ClickHouseCatalog(client: client)
        let disks = try await catalog.disks()
        let layout = LocalBackupLayout(disks: disks)
        let folder = layout.folder(options.name)
        let owners = try Self.owners(disks)
        let owner = owners["default"] ?? FileOwner.nearest(layout.root)
        try FileSystem.makeFolders(layout.root, owner: owner)
        guard mkdir(folder, 0o750) == 0 else {
            if errno == EEXIST {
                throw BackupError(.alreadyExists, "a local backup named '\(options.name)' already exists at \(folder); choose another name")
            }
            throw FileSystem.ioError("cannot create \(folder)")
        }
        do {
            try owner?.give(folder)
            return try await fill(options, version: version, catalog: catalog, disks: disks, layout: layout,
                                  owners: owners)
        } catch {
            logger.error("create failed; removing the incomplete backup \(folder)")
            removeBackupFolders(options.name, layout: layout)
            throw error
        }
    }

    /// Disk name -> the owner of its folder (one stat per disk); refuses a process that cannot
    /// write as that owner before anything is written.
    static func owners(_ disks: [ClickHouseCatalog.Disk]) throws -> [String: FileOwner] {
        var owners: [String: FileOwner] = [:]
        for disk in disks where !disk.isRemote {
            guard let owner = try FileOwner.ifExists(disk.path) else { continue }
            try owner.requireWriter()
            owners[disk.name] = owner
        }
        return owners
    }

    private func fill(
        _ options: Options, version: ClickHouseVersion, catalog: ClickHouseCatalog, disks: [ClickHouseCatalog.Disk],
        layout: LocalBackupLayout, owners: [String: FileOwner]
    ) async throws -> Summary {
        let allTables = try await catalog.tables()
        let selected = allTables.filter {
            options.tables.matches(database: $0.database, table: $0.name)
                && !TablePattern.skipped(database: $0.database, table: $0.name, skip: options.skipTables)
        }
        if selected.isEmpty && !options.tables.selectsEverything {
            throw BackupError(.noTablesMatched,
                              "--tables '\(options.tables.patterns.joined(separator: ","))' matches no table; nothing was backed up")
        }
        let selectedDatabases = Set(selected.map(\.database))
        let databases = try await catalog.databases().filter { selectedDatabases.contains($0.name) }
        logger.info("backing up \(selected.count) table(s) into \(layout.folder(options.name))")

        let locks = locksFolder.map { TableLocks(folder: $0) } ?? TableLocks(layout: layout)
        let holder = TableLockHolder(journal: nil, run: nil, command: "create \(options.name)")
        for table in selected {
            try await locks.acquire(database: table.database, table: table.name, holder: holder, wait: options.waitLock)
                .release()
        }
        let results = try await concurrentMap(selected, width: options.concurrency) { table in
            let lock = try await locks.acquire(database: table.database, table: table.name, holder: holder,
                                               wait: options.waitLock)
            defer { lock.release() }
            return try await self.backUp(table, options: options, catalog: catalog, disks: disks, layout: layout,
                                         owners: owners)
        }

        var metadataSize: UInt64 = 0
        var dataSize: Int64 = 0
        var partCount = 0
        for (table, jsonSize) in results {
            metadataSize += UInt64(jsonSize)
            dataSize += table.size?.values.reduce(0, +) ?? 0
            partCount += table.parts?.values.reduce(0) { $0 + $1.count } ?? 0
        }
        let metadata = BackupMetadata(
            backup_name: options.name, disks: layout.diskPaths,
            disk_types: Dictionary(disks.map { ($0.name, $0.isRemote ? $0.type.lowercased() : "local") },
                                   uniquingKeysWith: { first, _ in first }),
            version: "inplace-\(InplaceVersion.current)", creation_date: BackupMetadata.formatDate(Date()),
            tags: "regular", clickhouse_version: version.text, data_size: UInt64(dataSize), metadata_size: metadataSize,
            compressed_size: nil,
            databases: databases.map {
                .init(name: $0.name, engine: $0.engine,
                      query: "CREATE DATABASE \(ClickHouseSQL.identifier($0.name)) ENGINE = \($0.engineFull)")
            },
            tables: results.map(\.0.title).sorted { ($0.database, $0.table) < ($1.database, $1.table) },
            functions: [], data_format: "", required_backup: nil)
        try FileSystem.writeDurably(Array(try JSONEncoder.backup.encode(metadata)), to: layout.metadataFile(options.name),
                                    owner: owners["default"])
        logger.info("backup \(options.name) complete: \(results.count) table(s), \(partCount) part(s), \(dataSize) bytes")
        return Summary(name: options.name, folder: layout.folder(options.name), tables: results.count, parts: partCount,
                       bytes: dataSize)
    }

    /// Backs up one table; returns its metadata and the size of its JSON file.
    private func backUp(
        _ table: ClickHouseCatalog.Table, options: Options, catalog: ClickHouseCatalog,
        disks: [ClickHouseCatalog.Disk], layout: LocalBackupLayout, owners: [String: FileOwner]
    ) async throws -> (TableMetadata, Int) {
        if table.createQuery.contains("[HIDDEN]") {
            logger.warning("""
                the CREATE statement of \(table.database).\(table.name) shows secrets as [HIDDEN]: a restore cannot \
                create the table from this backup. Allow display_secrets_in_show_and_select on the server and grant \
                displaySecretsInShowAndSelect to the backup user.
                """)
        }
        var metadata = TableMetadata(database: table.database, table: table.name, query: table.createQuery)
        metadata.uuid = table.uuid == "00000000-0000-0000-0000-000000000000" ? nil : table.uuid
        metadata.metadata_only = options.schemaOnly || !table.isMergeTree
        if table.isMergeTree {
            var filter: PartitionFilter?
            let rules = options.partitions.rules(database: table.database, table: table.name)
            if !rules.isEmpty {
                filter = try await PartitionResolver(client: client).filter(
                    rules, createQuery: table.createQuery, table: "\(table.database).\(table.name)")
            }
            var before = try await catalog.parts(of: [(table.database, table.name)], activeOnly: false)
            if let filter { before = before.filter { filter.matches($0.partitionID) } }
            if options.schemaOnly {
                record(current: before.filter(\.active), in: &metadata)
            } else {
                try await freezeAndMove(table, into: &metadata, before: before, catalog: catalog, disks: disks,
                                        layout: layout, backup: options.name, owners: owners, filter: filter)
            }
            if let filter {
                // The ids named, and those the globs matched among the parts backed up.
                let held = (metadata.parts ?? [:]).values.joined().compactMap { PartName($0.name)?.partitionID }
                metadata.inplace_partitions = Set(filter.ids).union(held).sorted()
            }
        }
        let data = Array(try JSONEncoder.backup.encode(metadata))
        let path = layout.tableMetadataFile(options.name, database: table.database, table: table.name)
        try FileSystem.makeFolders((path as NSString).deletingLastPathComponent, owner: owners["default"])
        try FileSystem.writeDurably(data, to: path, owner: owners["default"])
        logger.debug("\(table.database).\(table.name): \(metadata.parts?.values.reduce(0) { $0 + $1.count } ?? 0) part(s)")
        return (metadata, data.count)
    }

    private func freezeAndMove(
        _ table: ClickHouseCatalog.Table, into metadata: inout TableMetadata, before: [ClickHouseCatalog.Part],
        catalog: ClickHouseCatalog, disks: [ClickHouseCatalog.Disk], layout: LocalBackupLayout, backup: String,
        owners: [String: FileOwner], filter: PartitionFilter?
    ) async throws {
        let qualified = ClickHouseSQL.qualified(table.database, table.name)
        let freezeName = "inplace_" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        let frozen = try await freeze(qualified, name: freezeName)
        guard frozen else {
            // Dropped since it was listed: recorded with no parts, as it is now.
            metadata.parts = [:]
            metadata.current_parts = [:]
            return
        }
        do {
            var after = try await catalog.parts(of: [(table.database, table.name)], activeOnly: true)
            if let filter { after = after.filter { filter.matches($0.partitionID) } }
            record(current: after, in: &metadata)
            let (hashes, rows) = Self.hashesAndRows(before + after)
            var parts: [String: [BackupPart]] = [:]
            var sizes: [String: Int64] = [:]
            var checksums: [String: UInt64] = [:]
            var partHashes: [String: String] = [:]
            var partRows: [String: UInt64] = [:]
            for dataPath in table.dataPaths {
                guard let disk = disks.filter({ dataPath.hasPrefix($0.path) }).max(by: { $0.path.count < $1.path.count })
                else { continue }
                let shadow = disk.path + "shadow/" + freezeName + "/" + dataPath.dropFirst(disk.path.count)
                let frozen = ((try? FileManager.default.contentsOfDirectory(atPath: shadow)) ?? [])
                    .compactMap(PartName.init).filter { FileSystem.isFolder(shadow + "/" + $0.name) }
                    .filter { filter?.matches($0.partitionID) ?? true }.sorted()
                if frozen.isEmpty { continue }
                if disk.isRemote {
                    throw BackupError(.unsupportedDisk,
                                      "\(table.database).\(table.name) has parts on disk '\(disk.name)' (\(disk.type)): parts on object-storage disks are not supported yet")
                }
                guard let target = layout.shadowFolder(backup, disk: disk.name, database: table.database, table: table.name)
                else { continue }
                // The frozen parts moved in are the server's already: FREEZE made them.
                try FileSystem.makeFolders(target, owner: owners[disk.name])
                for part in frozen {
                    let destination = target + "/" + part.name
                    guard rename(shadow + "/" + part.name, destination) == 0 else {
                        throw FileSystem.ioError("cannot move frozen part \(shadow)/\(part.name) into \(target)")
                    }
                    let size = FileSystem.size(of: destination)
                    parts[disk.name, default: []].append(BackupPart(name: part.name, size: size))
                    sizes[disk.name, default: 0] += size
                    checksums[part.name] = CRC64.checksum(try FileSystem.readFile(destination + "/checksums.txt"))
                    if let hash = hashes[part.name] { partHashes[part.name] = hash }
                    if let count = rows[part.name] { partRows[part.name] = count }
                }
            }
            metadata.parts = parts
            metadata.size = sizes
            metadata.total_bytes = UInt64(sizes.values.reduce(0, +))
            metadata.checksums = checksums
            metadata.hash_of_all_files = partHashes
            metadata.part_rows = partRows
        } catch {
            // In a task of its own: this one may be cancelled (a sibling table failed), and the
            // frozen hard links must not stay behind pinning disk space.
            let client = self.client
            _ = await Task {
                try? await client.execute("ALTER TABLE \(qualified) UNFREEZE WITH NAME \(ClickHouseSQL.string(freezeName))")
            }.value
            throw error
        }
        try await client.execute("ALTER TABLE \(qualified) UNFREEZE WITH NAME \(ClickHouseSQL.string(freezeName))")
    }

    /// Part name -> `hash_of_all_files` (where known) and rows, from system.parts.
    private static func hashesAndRows(_ parts: [ClickHouseCatalog.Part]) -> ([String: String], [String: UInt64]) {
        var hashes: [String: String] = [:]
        var rows: [String: UInt64] = [:]
        for part in parts {
            if !part.hash.isEmpty { hashes[part.name] = part.hash }
            rows[part.name] = part.rows
        }
        return (hashes, rows)
    }

    /// FREEZE WITH NAME; false when the table no longer exists.
    private func freeze(_ qualified: String, name: String) async throws -> Bool {
        do {
            try await client.execute("ALTER TABLE \(qualified) FREEZE WITH NAME \(ClickHouseSQL.string(name))")
            return true
        } catch {
            if error.code == 60 { return false }
            throw error
        }
    }

    private func record(current: [ClickHouseCatalog.Part], in metadata: inout TableMetadata) {
        var parts: [String: [BackupPart]] = [:]
        var hashes: [String: String] = [:]
        for part in current {
            parts[part.disk, default: []].append(BackupPart(name: part.name, size: Int64(part.bytesOnDisk)))
            hashes[part.name] = part.hash
        }
        metadata.current_parts = parts
        metadata.current_hash_of_all_files = hashes
    }

    private func removeBackupFolders(_ name: String, layout: LocalBackupLayout) {
        for path in Set(layout.diskPaths.values) {
            try? FileManager.default.removeItem(atPath: path + "backup/" + name)
        }
    }
}
