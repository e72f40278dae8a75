/// Whether a live table equals a backup's table: a pure function of two lists of parts. No I/O,
/// so every rule is tested with plain values (and a restore can call it per table for free).
///
/// 1. Content: the multiset of (partition id, identity) must be equal on both sides. Identical
///    inserts make identical parts, so identities are counted, never merged into a set. Within
///    an identity, backup and live parts pair in min-block order; the backup's unpaired parts are
///    `missing`, the live table's unpaired parts are `extra`.
/// 2. Rows: where the backup records a part's rows (`part_rows`), the live part paired with it
///    must hold as many (`rows`).
/// 3. Order: within a partition whose content is equal, the identities ordered by the live min
///    block must follow the backup's, ordered by the backup's min block (`order`): Replacing and
///    Collapsing engines answer FINAL by block order. One difference per partition, at the first
///    position that differs. A partition that already misses or has extra parts is not checked
///    for order (its content differences say more).
/// Differences come sorted by partition, then kind (missing, extra, rows, order), then part.
public struct TableComparison: Sendable, Equatable {
    /// One part of either side, as the comparison sees it.
    public struct Part: Sendable, Hashable {
        public var name: String
        public var partition: String
        /// The content identity: `hash_of_all_files` (hex), or `crc64:<n>` of checksums.txt.
        public var identity: String
        /// From the part's name: the order the part's rows were inserted in.
        public var minBlock: Int64
        /// The backup's recorded rows (nil when it records none); always known on the live side.
        public var rows: UInt64?

        public init(name: String, partition: String, identity: String, minBlock: Int64, rows: UInt64? = nil) {
            self.name = name
            self.partition = partition
            self.identity = identity
            self.minBlock = minBlock
            self.rows = rows
        }
    }

    public var backupParts: Int
    public var liveParts: Int
    /// The first `limit` differences, in the stable order described above.
    public var differences: [TableDifference]
    /// Every difference found, including those beyond `limit`.
    public var differenceCount: Int
    /// `hash_of_all_files`, or `checksums` (CRC-64 of checksums.txt, for backups without hashes).
    public var identityKind: String

    public var isEqual: Bool { differenceCount == 0 }

    public init(backupParts: Int, liveParts: Int, differences: [TableDifference], differenceCount: Int,
                identityKind: String = "hash_of_all_files") {
        self.backupParts = backupParts
        self.liveParts = liveParts
        self.differences = differences
        self.differenceCount = differenceCount
        self.identityKind = identityKind
    }

    /// Compares `backup` with `live`; `checkOrder` false leaves out step 3.
    public static func compare(backup: [Part], live: [Part], checkOrder: Bool = true, limit: Int = 100,
                               identityKind: String = "hash_of_all_files") -> TableComparison {
        let byOrder: (Part, Part) -> Bool = { ($0.partition, $0.minBlock, $0.name) < ($1.partition, $1.minBlock, $1.name) }
        let backupSorted = backup.sorted(by: byOrder)
        let liveSorted = live.sorted(by: byOrder)

        var found = matchContent(backupSorted, liveSorted)
        if checkOrder {
            found += orderDifferences(backupSorted, liveSorted, unequal: Set(found.lazy.filter { $0.kind != .rows }.map(\.partition)))
        }
        found.sort {
            ($0.partition, $0.kind.rank, $0.sortKey, $0.backupPart ?? $0.livePart ?? "")
                < ($1.partition, $1.kind.rank, $1.sortKey, $1.backupPart ?? $1.livePart ?? "")
        }
        return TableComparison(backupParts: backup.count, liveParts: live.count,
                               differences: Array(found.prefix(max(0, limit))), differenceCount: found.count,
                               identityKind: identityKind)
    }

    /// Steps 1 and 2: both sides sorted by (partition, identity, min block) and merged, so equal
    /// identities pair in min-block order and a million parts need no table of queues.
    private static func matchContent(_ backup: [Part], _ live: [Part]) -> [TableDifference] {
        let byContent: (Part, Part) -> Bool = {
            ($0.partition, $0.identity, $0.minBlock, $0.name) < ($1.partition, $1.identity, $1.minBlock, $1.name)
        }
        let wanted = backup.sorted(by: byContent)
        let have = live.sorted(by: byContent)
        var found: [TableDifference] = []
        var b = 0
        var l = 0
        while b < wanted.count || l < have.count {
            let order = b == wanted.count ? 1 : l == have.count ? -1 : compare(wanted[b], have[l])
            if order < 0 {
                found.append(.missing(wanted[b]))
                b += 1
            } else if order > 0 {
                found.append(.extra(have[l]))
                l += 1
            } else {
                if let rows = wanted[b].rows, let liveRows = have[l].rows, rows != liveRows {
                    found.append(.rows(backup: wanted[b], live: have[l]))
                }
                b += 1
                l += 1
            }
        }
        return found
    }

    /// -1, 0 or 1 as `a`'s (partition, identity) sorts before, with or after `b`'s.
    private static func compare(_ a: Part, _ b: Part) -> Int {
        if a.partition != b.partition { return a.partition < b.partition ? -1 : 1 }
        if a.identity != b.identity { return a.identity < b.identity ? -1 : 1 }
        return 0
    }

    /// Step 3, over both sides sorted by (partition, min block): the partitions not in `unequal`
    /// hold the same number of parts on both sides, so they are compared position by position.
    private static func orderDifferences(_ backup: [Part], _ live: [Part], unequal: Set<String>) -> [TableDifference] {
        var found: [TableDifference] = []
        var b = 0
        var l = 0
        while b < backup.count {
            let partition = backup[b].partition
            let bEnd = backup[b...].firstIndex { $0.partition != partition } ?? backup.count
            while l < live.count && live[l].partition < partition { l += 1 }
            let lEnd = live[l...].firstIndex { $0.partition != partition } ?? live.count
            if !unequal.contains(partition) && bEnd - b == lEnd - l {
                for offset in 0..<(bEnd - b) where backup[b + offset].identity != live[l + offset].identity {
                    found.append(.order(backup: backup[b + offset], live: live[l + offset], position: offset + 1))
                    break
                }
            }
            b = bEnd
            l = max(l, lEnd)
        }
        return found
    }
}
