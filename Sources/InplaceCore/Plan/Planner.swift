/// The in-place plan: a pure function of the backup's metadata and the live state. No I/O, so
/// every rule is tested with plain values and a million parts are planned in memory.
///
/// Per table in the backup:
/// 1. Refuse (leave the table alone, say why) when: it is Replicated*; an engine is not of the
///    MergeTree family where data is to be compared; its columns, engine or keys differ from
///    the backup's (unless `dropIfSchemaChanged`: then drop and recreate it; Planner+Schema);
///    it has unfinished mutations, live or listed in the backup (Planner+Mutations); a part is
///    on a disk this server lacks; a part name is invalid; data the restore needs is missing.
/// 2. Not in the database: create it (and its database), download every part.
/// 3. In both: a part's identity is (partition id, content hash): `hash_of_all_files`, or, when
///    the backup lacks it for any part, CRC-64 of checksums.txt on both sides. Identities are
///    counted, not merged: per identity, min(backup count, live count) parts are kept, the
///    backup's surplus is downloaded, the live surplus dropped. Names never decide anything.
/// 4. Downloads are sorted by partition, then min block. Drops run after the table's downloads
///    are attached and verified, or before its downloads with `--drop-first`.
/// 5. With `current_parts`, report the drift: what the live table gained and lost since the
///    backup was made.
/// Then, per disk: free space, plus what is freed before the downloads (with `--drop-first`:
/// surplus parts, and recreated tables' old copies), must cover downloads plus a margin, or the
/// whole run is refused with the numbers.
public enum Planner {
    public static func plan(backup: [BackupTableState], live: LiveState, options: PlanOptions = PlanOptions())
        -> RestorePlan
    {
        let tables = backup.sorted { ($0.database, $0.table) < ($1.database, $1.table) }
            .map { planTable($0, live: live, options: options) }
        let disks = checkDisks(tables, live: live, options: options)
        let short = disks.filter { !$0.enough }
        var refused: String?
        if !short.isEmpty && !options.ignoreDiskSpace {
            refused = short.map {
                "not enough space on disk '\($0.disk)': the restore needs \($0.needed) bytes plus a margin of \($0.margin); free \($0.free) plus \($0.freedByDrops) freed before the downloads"
            }.joined(separator: "; ") + ". Free space on the disk, restore fewer tables, pass --drop-first (drops run before downloads, so they free space first, before the backup's parts are known to attach), or pass --ignore-disk-space."
        }
        return RestorePlan(tables: tables, disks: disks, refused: refused)
    }

    static func planTable(_ backup: BackupTableState, live: LiveState, options: PlanOptions) -> TablePlan {
        let key = TableKey(backup.database, backup.table)
        let liveTable = live.tables[key]
        var plan = TablePlan(
            database: backup.database, table: backup.table, create: liveTable == nil,
            createDatabase: liveTable == nil && live.databases[backup.database] == nil, recreate: false, keep: [],
            drop: [], download: [], refused: nil, identity: "hash_of_all_files", drift: nil)
        plan.partitions = backup.partitionScope
        // --schema leaves existing tables alone and creates missing ones empty; --data leaves
        // missing ones missing: nothing to compare, refuse or download for them.
        if options.schemaOnly || (options.dataOnly && liveTable == nil) { return plan }
        func refuse(_ reason: String) -> TablePlan {
            var refused = plan
            refused.create = false
            refused.createDatabase = false
            refused.recreate = false
            refused.keep = []
            refused.drop = []
            refused.download = []
            refused.killMutations = []
            refused.refused = reason
            return refused
        }

        let backupEngine = CreateQuery.engine(backup.query) ?? "unknown"
        if backupEngine.hasPrefix("Replicated") || liveTable?.engine.hasPrefix("Replicated") == true {
            return refuse("Replicated tables are not supported yet: their ATTACH and DROP PART replicate through Keeper, and in-place restore of them is not built; restore it with clickhouse-backup")
        }
        let backupIsMergeTree = backupEngine.hasSuffix("MergeTree")
        guard backupIsMergeTree && !backup.metadataOnly else {
            // Views, dictionaries, other engines, and schema-only backups: created when missing,
            // otherwise left as they are. There are no parts to compare.
            if !backupIsMergeTree && !backup.parts.isEmpty {
                return refuse("engine \(backupEngine) is not of the MergeTree family; in-place restore compares parts, which only MergeTree tables have")
            }
            return plan
        }
        var named: [Named] = []
        named.reserveCapacity(backup.parts.count)
        var diskKnown: [InternedName: Bool] = [:]
        for part in backup.parts {
            guard let blocks = part.compactName.blocks ?? PartName(part.name).map({ (InternedName($0.partitionID), $0.minBlock, $0.maxBlock) }) else {
                return refuse("the backup lists part '\(part.name)', which is not a valid part name")
            }
            named.append(Named(part: part, partition: blocks.partition, minBlock: blocks.minBlock, maxBlock: blocks.maxBlock))
            let known = diskKnown[part.diskName] ?? (live.disks[part.disk] != nil)
            diskKnown[part.diskName] = known
            guard known else {
                return refuse("part \(part.name) is on disk '\(part.disk)', which this server does not have")
            }
        }

        var downloadAll = liveTable == nil
        if let liveTable {
            guard liveTable.engine.hasSuffix("MergeTree") else {
                return refuse("the live table's engine \(liveTable.engine) is not of the MergeTree family (the backup's is \(backupEngine))")
            }
            if let difference = schemaDifference(backup: backup.query, live: liveTable.createQuery) {
                guard options.dropIfSchemaChanged else {
                    return refuse("\(difference); nothing was changed. Pass --drop-if-schema-changed to drop and recreate it")
                }
                if let scope = backup.partitionScope {
                    return refuse("\(difference); recreating the table would drop every partition, but this restore covers only partitions \(scope); nothing was changed. Restore the whole table, or make the schemas equal first")
                }
                plan.recreate = true
                downloadAll = true
            } else if options.full {
                // --data --full: the table stays; every live part is replaced by the backup's.
                // So it does for a restore of some partitions: recreating would drop the others.
                plan.recreate = !options.dataOnly && backup.partitionScope == nil
                downloadAll = true
            }
        }

        let mutations = mutationCheck(backup, live: liveTable, recreate: plan.recreate, options: options)
        if let refusal = mutations.refusal { return refuse(refusal) }
        plan.killMutations = mutations.kill

        let useCRC = backup.parts.contains { $0.hash == nil }
        plan.identity = useCRC ? "checksums" : "hash_of_all_files"
        let ranks = PartitionRanks(named.map(\.partition) + (liveTable?.parts.map(\.partition) ?? []))
        let backupParts = sortedByBlocks(named, ranks: ranks)
        if downloadAll {
            plan.download = backupParts.map { action($0.part, partition: $0.partition, identity: identity($0.part, crc: useCRC)) }
            if !plan.recreate, let liveTable {
                plan.drop = liveTable.parts.map { drop($0, useCRC: useCRC) }.sorted(byKey: \.name, <)
            }
        } else if let liveTable {
            let matched = match(backupParts, liveTable.parts, ranks: ranks, useCRC: useCRC, into: &plan)
            keepBackupOrder(backupParts, matched, useCRC: useCRC, into: &plan)
        }
        let missing = backup.missingData.isEmpty ? [] : plan.download.map(\.name).filter { backup.missingData.contains($0) }
        if !missing.isEmpty {
            let note = backup.missingDataNote.map { "; " + $0 } ?? ""
            return refuse("the backup's data for \(missing.count) part(s) to restore is missing (\(missing.prefix(5).joined(separator: ", "))\(missing.count > 5 ? ", ..." : ""))\(note); nothing will be dropped from this table")
        }
        if let current = backup.currentParts, let liveTable {
            plan.drift = drift(current: current, live: liveTable.parts)
        }
        if !plan.drop.isEmpty {
            let held = Set(backupParts.map(\.partition))
            plan.partitionsDropped = Set(plan.drop.map(\.partitionName).filter { !held.contains($0) }).map(\.string).sorted()
        }
        return plan
    }

    /// A part's identity: partition id and content hash. A part whose content is unknown gets
    /// an identity of its own (`unmatched`: its index plus one), equal to no other.
    struct Identity: Hashable {
        let partition: InternedName
        let content: ContentHash?
        var unmatched = 0
    }

    /// A backup part with its parsed name.
    struct Named {
        let part: BackupTableState.Part
        let partition: InternedName
        let minBlock: Int64
        let maxBlock: Int64
    }

    /// The order of a table's partition ids as strings, so that parts sort by integers.
    struct PartitionRanks {
        private var ranks: [InternedName: Int] = [:]

        init(_ partitions: [InternedName]) {
            let sorted = Set(partitions).map { ($0, $0.string) }.sorted { $0.1 < $1.1 }
            for (rank, entry) in sorted.enumerated() { ranks[entry.0] = rank }
        }

        subscript(_ partition: InternedName) -> Int { ranks[partition] ?? 0 }
    }

    /// Partition, then min block, then max block, then name: the order parts are attached in
    /// (as `PartName`'s, without formatting names).
    static func sortedByBlocks(_ named: [Named], ranks: PartitionRanks) -> [Named] {
        let keys = named.map { (ranks[$0.partition], $0.minBlock, $0.maxBlock) }
        return named.indices.sorted { a, b in
            keys[a] != keys[b] ? keys[a] < keys[b] : named[a].part.name < named[b].part.name
        }.map { named[$0] }
    }

    /// Items grouped by identity, each group a queue in the items' order: `pop` hands out the
    /// next unused item of an identity. Chains through one index array, so a million distinct
    /// identities cost no array each.
    struct IdentityQueues {
        private var heads: [Identity: Int] = [:]
        private var next: [Int]

        init(_ keys: [Identity]) {
            next = [Int](repeating: -1, count: keys.count)
            heads.reserveCapacity(keys.count)
            for index in keys.indices.reversed() {
                next[index] = heads[keys[index]] ?? -1
                heads[keys[index]] = index
            }
        }

        mutating func pop(_ key: Identity) -> Int? {
            guard let head = heads[key], head >= 0 else { return nil }
            heads[key] = next[head]
            return head
        }

        /// Indices never popped.
        var remaining: [Int] {
            var indices: [Int] = []
            for var index in heads.values {
                while index >= 0 {
                    indices.append(index)
                    index = next[index]
                }
            }
            return indices.sorted()
        }
    }

    /// Live parts in block order and, per backup part (in `backupParts`' order), the index of
    /// the live part that holds its content, or nil.
    struct Matched {
        let live: [LiveState.Part]
        let liveMinBlocks: [Int64?]
        let pairs: [Int?]
    }

    /// Pairs parts with equal identity, counting duplicates; the rest are downloads and drops.
    private static func match(_ backupParts: [Named], _ liveParts: [LiveState.Part], ranks: PartitionRanks, useCRC: Bool,
                              into plan: inout TablePlan) -> Matched {
        // Live parts in block order, so that parts of equal identity pair in the order both
        // sides hold them (which keepBackupOrder relies on).
        let minBlocks = liveParts.map { $0.compactName.blocks?.minBlock ?? PartName($0.name)?.minBlock }
        let keys = liveParts.indices.map { (ranks[liveParts[$0].partition], minBlocks[$0] ?? 0, $0) }
        let order = liveParts.indices.sorted { keys[$0] < keys[$1] }
        let liveParts = order.map { liveParts[$0] }
        var live = IdentityQueues(liveParts.enumerated().map { index, part in
            let content = identity(part, crc: useCRC)
            return Identity(partition: part.partition, content: content, unmatched: content == nil ? index + 1 : 0)
        })
        var pairs: [Int?] = []
        pairs.reserveCapacity(backupParts.count)
        for named in backupParts {
            pairs.append(identity(named.part, crc: useCRC).flatMap { live.pop(Identity(partition: named.partition, content: $0)) })
        }
        // The lists at their exact sizes: a million tables' spare capacity adds up.
        plan.download.reserveCapacity(pairs.count { $0 == nil })
        for (named, pair) in zip(backupParts, pairs) where pair == nil {
            plan.download.append(action(named.part, partition: named.partition, identity: identity(named.part, crc: useCRC)))
        }
        plan.drop = live.remaining.map { drop(liveParts[$0], useCRC: useCRC) }.sorted(byKey: \.name, <)
        return Matched(live: liveParts, liveMinBlocks: order.map { minBlocks[$0] }, pairs: pairs)
    }

    /// Block order: ATTACH gives a part a block number above every part of the table, so a kept
    /// part stays where it is only while, in its partition, every backup part before it is kept
    /// too and the kept parts' live blocks rise in the backup's order. From the first part to
    /// attach on, the kept parts are re-sequenced (detached and attached again in the backup's
    /// order; a local rename). A kept part whose live name is also the name of a part to
    /// download (both would need `detached/<name>`) is downloaded instead, and its live part
    /// dropped.
    static func keepBackupOrder(_ backupParts: [Named], _ matched: Matched, useCRC: Bool, into plan: inout TablePlan) {
        // First which parts stay, then the lists at their exact sizes (most of a plan is kept).
        var stays = [Bool](repeating: false, count: backupParts.count)
        var partition: InternedName?
        var inPlace = true
        var lastLiveBlock = Int64.min
        for (index, named) in backupParts.enumerated() {
            if named.partition != partition {
                partition = named.partition
                inPlace = true
                lastLiveBlock = Int64.min
            }
            guard let liveIndex = matched.pairs[index] else {
                inPlace = false  // a part to download: everything after it in the partition is attached after it
                continue
            }
            let liveBlock = matched.liveMinBlocks[liveIndex] ?? Int64.max
            stays[index] = inPlace && liveBlock > lastLiveBlock
            if stays[index] { lastLiveBlock = liveBlock } else { inPlace = false }
        }
        let kept = stays.count { $0 }
        plan.keep = []
        plan.keep.reserveCapacity(kept)
        plan.resequence.reserveCapacity(matched.pairs.count { $0 != nil } - kept)
        for (index, named) in backupParts.enumerated() {
            guard let liveIndex = matched.pairs[index] else { continue }
            let live = matched.live[liveIndex].compactName
            if stays[index] {
                plan.keep.append(.init(backup: named.part.compactName, live: live, bytes: named.part.bytes))
            } else {
                plan.resequence.append(.init(backup: named.part.compactName, live: live, partition: named.partition,
                                             disk: named.part.diskName, bytes: named.part.bytes,
                                             identity: identity(named.part, crc: useCRC)))
            }
        }
        guard !plan.resequence.isEmpty else { return }
        // Every name that needs detached/ must be distinct: a re-sequenced part whose live name
        // is a download's is downloaded instead (and its live part dropped), which adds its
        // backup name to the downloads; repeated until no name is needed twice.
        var needed = Set(plan.download.map(\.partName))
        var moved = false
        while let index = plan.resequence.firstIndex(where: { needed.contains($0.liveName) }) {
            let part = plan.resequence.remove(at: index)
            needed.insert(part.backupName)
            plan.download.append(.init(name: part.backupName, partition: part.partitionName, disk: part.diskName,
                                       bytes: part.bytes, identity: part.content))
            plan.drop.append(.init(name: part.liveName, partition: part.partitionName, disk: part.diskName,
                                   bytes: part.bytes, identity: part.content))
            moved = true
        }
        if moved {
            plan.download = plan.download.sorted(byKey: { (PartName($0.name)!, $0.name) }, <)
            plan.drop = plan.drop.sorted(byKey: \.name, <)
        }
    }

    private static func identity(_ part: BackupTableState.Part, crc: Bool) -> ContentHash? {
        crc ? part.checksumsCRC.map(ContentHash.crc64) : part.content
    }

    private static func identity(_ part: LiveState.Part, crc: Bool) -> ContentHash? {
        crc ? part.checksumsCRC.map(ContentHash.crc64) : part.content
    }

    private static func action(_ part: BackupTableState.Part, partition: InternedName, identity: ContentHash?)
        -> TablePlan.PartAction
    {
        .init(name: part.compactName, partition: partition, disk: part.diskName, bytes: part.bytes, identity: identity)
    }

    private static func drop(_ part: LiveState.Part, useCRC: Bool) -> TablePlan.PartAction {
        .init(name: part.compactName, partition: part.partition, disk: part.diskName, bytes: part.bytes,
              identity: identity(part, crc: useCRC))
    }

    /// Multiset difference by (partition, hash) between the parts live at backup time and now.
    private static func drift(current: [BackupTableState.Part], live: [LiveState.Part]) -> TablePlan.Drift {
        var then = IdentityQueues(current.map {
            Identity(partition: $0.compactName.blocks?.partition ?? InternedName(PartName($0.name)?.partitionID ?? ""),
                     content: $0.content ?? .text("?" + $0.name))
        })
        var added: [CompactPartName] = []
        for part in live where then.pop(Identity(partition: part.partition, content: part.content)) == nil {
            added.append(part.compactName)
        }
        return .init(added: added.sorted(byKey: \.string, <),
                     gone: then.remaining.map { current[$0].compactName }.sorted(byKey: \.string, <))
    }

    private static func checkDisks(_ tables: [TablePlan], live: LiveState, options: PlanOptions) -> [DiskCheck] {
        var needed: [String: Int64] = [:]
        var freed: [String: Int64] = [:]
        for table in tables where table.refused == nil {
            if options.downloadsUseSpace {
                for part in table.download { needed[part.disk, default: 0] += part.bytes }
            }
            // Drops free space before the downloads only with --drop-first; by default they wait
            // until the table's downloads are attached.
            if options.dropFirst {
                for part in table.drop { freed[part.disk, default: 0] += part.bytes }
            }
            // A recreated table's old copy is kept until the new one is complete, unless --drop-first.
            if table.recreate, options.dropFirst, let liveTable = live.tables[TableKey(table.database, table.table)] {
                for part in liveTable.parts { freed[part.disk, default: 0] += part.bytes }
            }
        }
        return Set(needed.keys).union(freed.keys).sorted().map { disk in
            let need = needed[disk, default: 0]
            let margin = need > 0 ? max(options.minimumMargin, Int64(Double(need) * options.marginFraction)) : 0
            let free = Int64(clamping: live.disks[disk] ?? 0)
            let gain = freed[disk, default: 0]
            return DiskCheck(disk: disk, free: free, freedByDrops: gain, needed: need, margin: margin,
                             enough: free + gain >= need + margin)
        }
    }
}

extension Array {
    /// Sorted by a key made once per element: the names of compact records are formatted, not
    /// stored. The result is at its exact size.
    func sorted<Key>(byKey key: (Element) -> Key, _ areInIncreasingOrder: (Key, Key) -> Bool) -> [Element] {
        let keys = map(key)
        return indices.sorted { areInIncreasingOrder(keys[$0], keys[$1]) }.map { self[$0] }
    }
}
