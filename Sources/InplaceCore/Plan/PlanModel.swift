/// What the planner reads (plain values, no I/O) and what it decides.

/// One table as the backup has it.
public struct BackupTableState: Sendable {
    public var database: String
    public var table: String
    /// The backup's CREATE statement.
    public var query: String
    public var uuid: String?
    /// Schema only (`metadata_only`): nothing to compare or download.
    public var metadataOnly: Bool
    /// Parts with the data in the backup (or its required chain).
    public var parts: [Part]
    /// The live parts when the backup was made (`current_parts`), nil for backups without it.
    public var currentParts: [Part]?
    /// Parts listed in the metadata whose data is not in the backup (checked before planning).
    public var missingData: Set<String>
    /// Why some of that data is missing, when the backup says (its required_backup).
    public var missingDataNote: String?
    /// Mutations unfinished when the backup was made (`mutations`), which clickhouse-backup
    /// re-applies after the data.
    public var mutations: [TablePlan.Mutation] = []
    /// The partitions the restore covers when it covers only some (`--partitions`, or a backup
    /// made with it), for messages; nil for every partition. Parts of the others are not in
    /// `parts`, nor in the live state.
    public var partitionScope: String?

    /// Compact (CompactNames.swift): 64 bytes, no heap, for a million of them.
    public struct Part: Sendable, Hashable {
        var compactName: CompactPartName
        /// `hash_of_all_files`, when the backup has it.
        var content: ContentHash?
        private var hasCRC: Bool
        var diskName: InternedName
        public var bytes: Int64
        private var crc: UInt64

        public var name: String {
            get { compactName.string }
            set { compactName = CompactPartName(newValue) }
        }
        public var disk: String {
            get { diskName.string }
            set { diskName = InternedName(newValue) }
        }
        /// `hash_of_all_files` (lower-case hex), when the backup has it.
        public var hash: String? {
            get { content?.string }
            set { content = newValue.map(ContentHash.init) }
        }
        /// CRC-64/ECMA of checksums.txt (`checksums`), when the backup has it.
        public var checksumsCRC: UInt64? {
            get { hasCRC ? crc : nil }
            set {
                hasCRC = newValue != nil
                crc = newValue ?? 0
            }
        }

        public init(name: String, disk: String, hash: String?, checksumsCRC: UInt64?, bytes: Int64) {
            compactName = CompactPartName(name)
            diskName = InternedName(disk)
            content = hash.map(ContentHash.init)
            hasCRC = checksumsCRC != nil
            crc = checksumsCRC ?? 0
            self.bytes = bytes
        }
    }

    public init(database: String, table: String, query: String, uuid: String? = nil, metadataOnly: Bool = false,
                parts: [Part], currentParts: [Part]? = nil, missingData: Set<String> = []) {
        self.database = database
        self.table = table
        self.query = query
        self.uuid = uuid
        self.metadataOnly = metadataOnly
        self.parts = parts
        self.currentParts = currentParts
        self.missingData = missingData
    }
}

/// The server as it is now: a handful of queries for the whole run.
public struct LiveState: Sendable {
    public var databases: [String: String]  // name -> engine
    public var tables: [TableKey: Table]
    public var disks: [String: UInt64]  // name -> free bytes

    public struct Table: Sendable {
        public var engine: String
        public var createQuery: String
        public var parts: [Part]
        /// Unfinished mutations (`system.mutations`, `is_done = 0`), oldest first.
        public var mutations: [TablePlan.Mutation]
        public init(engine: String, createQuery: String, parts: [Part], mutations: [TablePlan.Mutation] = []) {
            self.engine = engine
            self.createQuery = createQuery
            self.parts = parts
            self.mutations = mutations
        }
    }

    /// Compact (CompactNames.swift): 64 bytes, no heap, for a million of them.
    public struct Part: Sendable, Hashable {
        var compactName: CompactPartName
        /// `system.parts.partition_id`.
        var partition: InternedName
        var content: ContentHash
        private var hasCRC: Bool
        var diskName: InternedName
        public var bytes: Int64
        private var crc: UInt64

        public var name: String {
            get { compactName.string }
            set { compactName = CompactPartName(newValue) }
        }
        public var partitionID: String {
            get { partition.string }
            set { partition = InternedName(newValue) }
        }
        public var disk: String {
            get { diskName.string }
            set { diskName = InternedName(newValue) }
        }
        public var hash: String {
            get { content.string }
            set { content = ContentHash(newValue) }
        }
        /// CRC-64/ECMA of the part's checksums.txt, read from disk only for tables whose backup
        /// has no hashes.
        public var checksumsCRC: UInt64? {
            get { hasCRC ? crc : nil }
            set {
                hasCRC = newValue != nil
                crc = newValue ?? 0
            }
        }

        public init(name: String, partitionID: String, disk: String, hash: String, checksumsCRC: UInt64? = nil,
                    bytes: Int64) {
            compactName = CompactPartName(name)
            partition = InternedName(partitionID)
            diskName = InternedName(disk)
            content = ContentHash(hash)
            hasCRC = checksumsCRC != nil
            crc = checksumsCRC ?? 0
            self.bytes = bytes
        }
    }

    public init(databases: [String: String], tables: [TableKey: Table], disks: [String: UInt64]) {
        self.databases = databases
        self.tables = tables
        self.disks = disks
    }
}

public struct TableKey: Hashable, Sendable, Comparable, Codable {
    public var database: String
    public var table: String
    public init(_ database: String, _ table: String) {
        self.database = database
        self.table = table
    }
    public static func < (lhs: TableKey, rhs: TableKey) -> Bool { (lhs.database, lhs.table) < (rhs.database, rhs.table) }
}

public struct PlanOptions: Sendable {
    /// Drop and recreate a table whose schema (columns, engine, keys) differs from the backup's
    /// (instead of refusing it).
    public var dropIfSchemaChanged = false
    /// Restore every part of each table (the classic restore): drop the table, create it, download all.
    /// With `dataOnly`: no table is dropped or created; every live part is replaced by the backup's.
    public var full = false
    /// `--data`: existing tables only; none is created or recreated (missing ones are listed
    /// as to create, with nothing to download: the restore leaves them missing).
    public var dataOnly = false
    /// `--schema`: missing tables are created empty; existing ones are left alone (no refusal,
    /// nothing to compare or download).
    public var schemaOnly = false
    /// Skip the free-space check.
    public var ignoreDiskSpace = false
    /// Drops run before downloads (`--drop-first`): the space they free counts for the downloads.
    /// By default drops run after the table's parts are attached, so it does not.
    public var dropFirst = false
    /// Downloads take disk space (false for a local backup hard-linked on the same file system).
    public var downloadsUseSpace = true
    /// Space kept free beyond what downloads need: this fraction of them, and at least `minimumMargin`.
    public var marginFraction = 0.05
    public var minimumMargin: Int64 = 256 << 20
    /// Kill a live table's unfinished mutations (`--kill-mutations`) instead of refusing the table.
    public var killMutations = false

    public init(dropIfSchemaChanged: Bool = false, full: Bool = false, ignoreDiskSpace: Bool = false,
                downloadsUseSpace: Bool = true, dropFirst: Bool = false, dataOnly: Bool = false,
                killMutations: Bool = false, schemaOnly: Bool = false) {
        self.schemaOnly = schemaOnly
        self.killMutations = killMutations
        self.dropFirst = dropFirst
        self.dataOnly = dataOnly
        self.dropIfSchemaChanged = dropIfSchemaChanged
        self.full = full
        self.ignoreDiskSpace = ignoreDiskSpace
        self.downloadsUseSpace = downloadsUseSpace
    }
}

/// What the restore will do to one table.
public struct TablePlan: Sendable, Codable, Equatable {
    /// Compact (CompactNames.swift): 48 bytes, no heap; most parts of a plan are kept.
    public struct Kept: Sendable, Codable, Equatable {
        var backupName: CompactPartName
        var liveName: CompactPartName
        private var size: Int64

        /// The backup's name for the part, and the live part that holds the same content.
        public var backup: String {
            get { backupName.string }
            set { backupName = CompactPartName(newValue) }
        }
        public var live: String {
            get { liveName.string }
            set { liveName = CompactPartName(newValue) }
        }
        /// The backup part's size (what a full restore would fetch for it); nil in plans
        /// journaled before it was recorded.
        public var bytes: Int64? {
            get { size == .min ? nil : size }
            set { size = newValue ?? .min }
        }

        public init(backup: String, live: String, bytes: Int64?) {
            self.init(backup: CompactPartName(backup), live: CompactPartName(live), bytes: bytes)
        }

        init(backup: CompactPartName, live: CompactPartName, bytes: Int64?) {
            backupName = backup
            liveName = live
            size = bytes ?? .min
        }

        enum CodingKeys: String, CodingKey { case backup, live, bytes }

        public init(from decoder: any Decoder) throws {
            let values = try decoder.container(keyedBy: CodingKeys.self)
            self.init(backup: try values.decode(String.self, forKey: .backup), live: try values.decode(String.self, forKey: .live),
                      bytes: try values.decodeIfPresent(Int64.self, forKey: .bytes))
        }

        public func encode(to encoder: any Encoder) throws {
            var values = encoder.container(keyedBy: CodingKeys.self)
            try values.encode(backup, forKey: .backup)
            try values.encode(live, forKey: .live)
            try values.encodeIfPresent(bytes, forKey: .bytes)
        }
    }

    /// Compact (CompactNames.swift): 56 bytes, no heap.
    public struct PartAction: Sendable, Codable, Equatable {
        var partName: CompactPartName
        var partitionName: InternedName
        var content: ContentHash?
        var diskName: InternedName
        public var bytes: Int64

        public var name: String { partName.string }
        public var partition: String { partitionName.string }
        public var disk: String { diskName.string }
        /// The content identity used: `hash_of_all_files`, or `crc64:<n>` of checksums.txt.
        public var identity: String? { content?.string }

        public init(name: String, partition: String, disk: String, bytes: Int64, identity: String?) {
            self.init(name: CompactPartName(name), partition: InternedName(partition), disk: InternedName(disk), bytes: bytes,
                      identity: identity.map(ContentHash.init))
        }

        init(name: CompactPartName, partition: InternedName, disk: InternedName, bytes: Int64, identity: ContentHash?) {
            partName = name
            partitionName = partition
            diskName = disk
            self.bytes = bytes
            content = identity
        }

        /// The record as text, whose synthesized coding is the one this type had before it was
        /// compact: the same keys, in the same order, no identity when there is none.
        private struct Text: Codable {
            var name: String
            var partition: String
            var disk: String
            var bytes: Int64
            var identity: String?
        }

        public init(from decoder: any Decoder) throws {
            let text = try Text(from: decoder)
            self.init(name: text.name, partition: text.partition, disk: text.disk, bytes: text.bytes, identity: text.identity)
        }

        public func encode(to encoder: any Encoder) throws {
            try Text(name: name, partition: partition, disk: disk, bytes: bytes, identity: identity).encode(to: encoder)
        }
    }

    /// A kept part that, in the backup's order of its partition, comes after a part to attach:
    /// detached and attached again after it, so that block numbers follow the backup's order
    /// (Replacing and Collapsing engines answer FINAL by that order). A local rename: nothing
    /// is downloaded. Compact (CompactNames.swift): 80 bytes, no heap.
    public struct Resequenced: Sendable, Codable, Equatable {
        var backupName: CompactPartName
        var liveName: CompactPartName
        var content: ContentHash?
        var partitionName: InternedName
        var diskName: InternedName
        public var bytes: Int64

        /// The backup's name for the part, and the live part that holds the same content.
        public var backup: String { backupName.string }
        public var live: String { liveName.string }
        public var partition: String { partitionName.string }
        public var disk: String { diskName.string }
        public var identity: String? { content?.string }

        init(backup: CompactPartName, live: CompactPartName, partition: InternedName, disk: InternedName, bytes: Int64,
             identity: ContentHash?) {
            backupName = backup
            liveName = live
            partitionName = partition
            diskName = disk
            self.bytes = bytes
            content = identity
        }

        enum CodingKeys: String, CodingKey { case backup, live, partition, disk, bytes, identity }

        public init(from decoder: any Decoder) throws {
            let values = try decoder.container(keyedBy: CodingKeys.self)
            self.init(backup: CompactPartName(try values.decode(String.self, forKey: .backup)),
                      live: CompactPartName(try values.decode(String.self, forKey: .live)),
                      partition: InternedName(try values.decode(String.self, forKey: .partition)),
                      disk: InternedName(try values.decode(String.self, forKey: .disk)),
                      bytes: try values.decode(Int64.self, forKey: .bytes),
                      identity: try values.decodeIfPresent(String.self, forKey: .identity).map(ContentHash.init))
        }

        public func encode(to encoder: any Encoder) throws {
            var values = encoder.container(keyedBy: CodingKeys.self)
            try values.encode(backup, forKey: .backup)
            try values.encode(live, forKey: .live)
            try values.encode(partition, forKey: .partition)
            try values.encode(disk, forKey: .disk)
            try values.encode(bytes, forKey: .bytes)
            try values.encodeIfPresent(identity, forKey: .identity)
        }
    }

    /// Compact: part names parsed (CompactNames.swift), no heap per name.
    public struct Drift: Sendable, Codable, Equatable {
        var addedNames: [CompactPartName]
        var goneNames: [CompactPartName]

        /// Live parts whose content was not live when the backup was made (inserted or merged since).
        public var added: [String] { addedNames.map(\.string) }
        /// Parts live at backup time whose content is no longer live (merged away, dropped).
        public var gone: [String] { goneNames.map(\.string) }

        public init(added: [String], gone: [String]) {
            self.init(added: added.map(CompactPartName.init), gone: gone.map(CompactPartName.init))
        }

        init(added: [CompactPartName], gone: [CompactPartName]) {
            addedNames = added
            goneNames = gone
        }

        /// The drift as text, whose synthesized coding is the one this type had before it was compact.
        private struct Text: Codable {
            var added: [String]
            var gone: [String]
        }

        public init(from decoder: any Decoder) throws {
            let text = try Text(from: decoder)
            self.init(added: text.added, gone: text.gone)
        }

        public func encode(to encoder: any Encoder) throws {
            try Text(added: added, gone: gone).encode(to: encoder)
        }
    }

    public var database: String
    public var table: String
    /// The table does not exist: create it (and its database when `createDatabase`).
    public var create: Bool
    public var createDatabase: Bool
    /// The schema differs and `--drop-if-schema-changed` was given: drop the table and create it again.
    public var recreate: Bool
    /// Kept where they are: in each partition, a prefix of the backup's order.
    public var keep: [Kept]
    /// Live parts the backup lacks: dropped once the table's attaches are verified (before the
    /// downloads with `--drop-first`).
    public var drop: [PartAction]
    /// Sorted by partition, then min block. With `resequence`, the order of attaching.
    public var download: [PartAction]
    /// Kept parts attached again in the backup's order, among the downloads.
    public var resequence: [Resequenced] = []
    /// Unfinished mutations of the live table to kill first (`--kill-mutations`).
    public var killMutations: [Mutation] = []
    /// The sequence of this plan's first step in the journal: 0 for the first plan of a table,
    /// after every earlier step for a plan made again (the steps before it are not this plan's).
    public var firstStep: Int = 0

    /// A mutation of a table: its id (`mutation_5.txt`) and command.
    public struct Mutation: Sendable, Codable, Equatable {
        public var id: String
        public var command: String
        public init(id: String, command: String) {
            self.id = id
            self.command = command
        }
    }
    /// Why the table is left alone, or nil.
    public var refused: String?
    /// `hash_of_all_files` or `checksums` (CRC-64 of checksums.txt, for backups without hashes).
    public var identity: String
    /// Changes in the live table since the backup was made; nil when the backup has no `current_parts`.
    public var drift: Drift?
    /// The partitions the restore covers when it covers only some (`--partitions`, or a backup
    /// made with it); nil for every partition.
    public var partitions: String?
    /// Partitions of the live table that the backup has no part of: every live part of them is
    /// dropped. A backup made with clickhouse-backup's `create --partitions` looks like this
    /// (nothing in it says it holds only some partitions): restore it with the same `--partitions`.
    public var partitionsDropped: [String] = []

    public var dropBytes: Int64 { drop.reduce(0) { $0 + $1.bytes } }
    public var downloadBytes: Int64 { download.reduce(0) { $0 + $1.bytes } }
    public var isNoOp: Bool {
        !create && !recreate && drop.isEmpty && download.isEmpty && resequence.isEmpty && killMutations.isEmpty
            && refused == nil
    }

    enum CodingKeys: String, CodingKey {
        case database, table, create, createDatabase, recreate, keep, drop, download, resequence, killMutations, refused
        case identity, drift, firstStep, partitions, partitionsDropped
    }

    /// Plans journaled before `resequence` existed decode with none.
    public init(from decoder: any Decoder) throws {
        let values = try decoder.container(keyedBy: CodingKeys.self)
        database = try values.decode(String.self, forKey: .database)
        table = try values.decode(String.self, forKey: .table)
        create = try values.decode(Bool.self, forKey: .create)
        createDatabase = try values.decode(Bool.self, forKey: .createDatabase)
        recreate = try values.decode(Bool.self, forKey: .recreate)
        keep = try values.decode([Kept].self, forKey: .keep)
        drop = try values.decode([PartAction].self, forKey: .drop)
        download = try values.decode([PartAction].self, forKey: .download)
        resequence = try values.decodeIfPresent([Resequenced].self, forKey: .resequence) ?? []
        killMutations = try values.decodeIfPresent([Mutation].self, forKey: .killMutations) ?? []
        firstStep = try values.decodeIfPresent(Int.self, forKey: .firstStep) ?? 0
        refused = try values.decodeIfPresent(String.self, forKey: .refused)
        identity = try values.decode(String.self, forKey: .identity)
        drift = try values.decodeIfPresent(Drift.self, forKey: .drift)
        partitions = try values.decodeIfPresent(String.self, forKey: .partitions)
        partitionsDropped = try values.decodeIfPresent([String].self, forKey: .partitionsDropped) ?? []
    }

    public init(database: String, table: String, create: Bool, createDatabase: Bool, recreate: Bool, keep: [Kept],
                drop: [PartAction], download: [PartAction], resequence: [Resequenced] = [], refused: String?,
                identity: String, drift: Drift?) {
        self.database = database
        self.table = table
        self.create = create
        self.createDatabase = createDatabase
        self.recreate = recreate
        self.keep = keep
        self.drop = drop
        self.download = download
        self.resequence = resequence
        self.refused = refused
        self.identity = identity
        self.drift = drift
    }
}

public struct DiskCheck: Sendable, Codable, Equatable {
    public var disk: String
    public var free: Int64
    /// Freed before the downloads start: tables recreated, and parts dropped with `--drop-first`.
    public var freedByDrops: Int64
    public var needed: Int64
    public var margin: Int64
    public var enough: Bool

    enum CodingKeys: String, CodingKey {
        case disk, free, margin, enough, needed
        case freedByDrops = "freed_by_drops"
    }
}

/// The plan for a whole run.
public struct RestorePlan: Sendable, Codable, Equatable {
    public var tables: [TablePlan]
    public var disks: [DiskCheck]
    /// Why the whole run is refused (disk space), or nil.
    public var refused: String?

    public var refusedTables: [TablePlan] { tables.filter { $0.refused != nil } }
    public var isComplete: Bool { refused == nil && refusedTables.isEmpty }
}
