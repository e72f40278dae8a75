import Foundation
import Testing

@testable import InplaceCore

/// The pure comparison behind `inplace verify` (and the restore's check before a table is done),
/// with plain values.
@Suite("Verify: a live table against the backup, compared with plain values")
struct VerifyTests {
    typealias Part = TableComparison.Part

    /// A part named `<partition>_<block>_<block>_0` with identity `hash` (rows only when given).
    static func part(_ partition: String, _ block: Int64, _ hash: String, rows: UInt64? = nil) -> Part {
        Part(name: "\(partition)_\(block)_\(block)_0", partition: partition, identity: hash, minBlock: block, rows: rows)
    }

    static let backup = [part("202401", 1, "aa", rows: 10), part("202401", 2, "bb", rows: 11),
                         part("202402", 3, "cc", rows: 12)]
    /// The same content after a restore: new block numbers, same order.
    static let restored = [part("202401", 7, "aa", rows: 10), part("202401", 8, "bb", rows: 11),
                           part("202402", 9, "cc", rows: 12)]

    @Test("equal content under other names and block numbers, in the same order, is equal")
    func equal() {
        let result = TableComparison.compare(backup: Self.backup, live: Self.restored)
        #expect(result.isEqual)
        #expect(result.differences == [])
        #expect(result.differenceCount == 0)
        #expect(result.backupParts == 3 && result.liveParts == 3)
    }

    @Test("a backup part the table lacks is one `missing` difference naming it")
    func missingPart() {
        let result = TableComparison.compare(backup: Self.backup, live: [Self.restored[0], Self.restored[2]])
        #expect(result.differences.count == 1)
        let difference = result.differences[0]
        #expect(difference.kind == .missing)
        #expect(difference.partition == "202401")
        #expect(difference.backupPart == "202401_2_2_0" && difference.livePart == nil)
        #expect(difference.identity == "bb")
        #expect(difference.description == "partition 202401: the backup's part 202401_2_2_0 (hash bb) is not in the table")
    }

    @Test("a live part the backup lacks (one more row inserted) is one `extra` difference naming it")
    func extraPart() {
        let inserted = Self.part("202402", 10, "dd", rows: 1)
        let result = TableComparison.compare(backup: Self.backup, live: Self.restored + [inserted])
        #expect(result.differences.map(\.kind) == [.extra])
        #expect(result.differences[0].livePart == "202402_10_10_0" && result.differences[0].backupPart == nil)
        #expect(result.differences[0].description == "partition 202402: live part 202402_10_10_0 (hash dd) is not in the backup")
    }

    @Test("three identical parts in the backup and two live: one missing, the backup's last copy (a multiset, not a set)")
    func duplicatedParts() {
        let backup = [Self.part("all", 1, "ee"), Self.part("all", 2, "ee"), Self.part("all", 3, "ee")]
        let live = [Self.part("all", 4, "ee"), Self.part("all", 6, "ee")]
        let result = TableComparison.compare(backup: backup, live: live)
        #expect(!result.isEqual)
        #expect(result.differences.map(\.kind) == [.missing])
        #expect(result.differences.map(\.backupPart) == ["all_3_3_0"])
        // And one copy too many live is one extra.
        let surplus = TableComparison.compare(backup: Array(backup.prefix(2)), live: live + [Self.part("all", 9, "ee")])
        #expect(surplus.differences.map(\.kind) == [.extra])
        #expect(surplus.differences.map(\.livePart) == ["all_9_9_0"])
    }

    @Test("the same multiset in another block order is one `order` difference at the first position that differs")
    func otherOrder() {
        // `aa` detached and attached again: it comes back with a block above `bb`.
        let live = [Self.part("202401", 8, "bb"), Self.part("202401", 9, "aa"), Self.part("202402", 3, "cc")]
        let result = TableComparison.compare(backup: Self.backup, live: live)
        #expect(result.differences.count == 1)
        let difference = result.differences[0]
        #expect(difference.kind == .order)
        #expect(difference.partition == "202401")
        #expect(difference.backupPart == "202401_1_1_0" && difference.livePart == "202401_8_8_0")
        #expect(difference.description.hasPrefix("partition 202401: the parts are not in the backup's block order: part 1 by min block is 202401_8_8_0 (hash bb) where the backup has 202401_1_1_0 (hash aa)"))
        // Without the order check the content is equal.
        #expect(TableComparison.compare(backup: Self.backup, live: live, checkOrder: false).isEqual)
    }

    @Test("equal content whose rows differ from the backup's part_rows is a `rows` difference; no part_rows, no check")
    func rowsDiffer() {
        var live = Self.restored
        live[2].rows = 13
        let result = TableComparison.compare(backup: Self.backup, live: live)
        #expect(result.differences.map(\.kind) == [.rows])
        #expect(result.differences[0].backupPart == "202402_3_3_0" && result.differences[0].livePart == "202402_9_9_0")
        #expect(result.differences[0].description.hasSuffix("but 13 rows where the backup records 12"))
        let withoutRows = Self.backup.map { part -> Part in
            var part = part
            part.rows = nil
            return part
        }
        #expect(TableComparison.compare(backup: withoutRows, live: live).isEqual)
    }

    @Test("a partition that misses a part is not also reported out of order; other partitions still are")
    func orderOnlyWhereContentIsEqual() {
        let backup = [Self.part("1", 1, "a"), Self.part("1", 2, "b"), Self.part("1", 3, "c"),
                      Self.part("2", 4, "d"), Self.part("2", 5, "e")]
        let live = [Self.part("1", 9, "c"), Self.part("1", 10, "a"), Self.part("2", 11, "e"), Self.part("2", 12, "d")]
        let result = TableComparison.compare(backup: backup, live: live)
        #expect(result.differences.map(\.kind) == [.missing, .order])
        #expect(result.differences.map(\.partition) == ["1", "2"])
    }

    @Test("differences come sorted by partition, kind and block, limited to the first N, all counted")
    func stableOrderAndLimit() {
        let backup = (1...5).map { Self.part("p\($0 % 2)", Int64($0), "h\($0)") }
        let live = (1...4).map { Self.part("p\($0 % 2)", Int64(10 + $0), "x\($0)") }
        let result = TableComparison.compare(backup: backup.shuffled(), live: live.shuffled(), limit: 4)
        #expect(result.differenceCount == 9)
        #expect(result.differences.count == 4)
        #expect(result.differences.map { $0.backupPart ?? $0.livePart ?? "" }
            == ["p0_2_2_0", "p0_4_4_0", "p0_12_12_0", "p0_14_14_0"])
        let again = TableComparison.compare(backup: backup.shuffled(), live: live.shuffled(), limit: 100)
        #expect(again.differences.map(\.kind) == [.missing, .missing, .extra, .extra, .missing, .missing, .missing, .extra, .extra])
    }

    @Test("20,000 parts over 100 partitions, four copies of each content, renamed by a restore: equal; one dropped: exactly that one missing")
    func manyParts() {
        let backup = (0..<20_000).map { Self.part("p\($0 % 100)", Int64($0), "h\($0 % 5_000)") }
        let live = backup.map { Self.part($0.partition, $0.minBlock + 1_000_000, $0.identity) }
        #expect(TableComparison.compare(backup: backup, live: live).isEqual)
        var dropped = live
        dropped.remove(at: 4_321)
        let result = TableComparison.compare(backup: backup, live: dropped)
        #expect(result.differenceCount == 1)
        // Identical copies pair in block order: the partition's last copy of that content is missing.
        let copies = backup.filter { $0.partition == backup[4_321].partition && $0.identity == backup[4_321].identity }
        #expect(result.differences.map(\.backupPart) == [copies.last?.name])
    }

    @Test("a backup without hash_of_all_files for some part is compared by CRC-64 of checksums.txt, with part_rows")
    func identitiesFromBackupMetadata() throws {
        var table = TableMetadata(database: "db", table: "t", query: "CREATE TABLE db.t (x UInt8) ENGINE = MergeTree ORDER BY x")
        table.parts = ["default": [BackupPart(name: "all_1_1_0"), BackupPart(name: "all_2_2_0")]]
        table.hash_of_all_files = ["all_1_1_0": "ab12"]
        table.checksums = ["all_1_1_0": 42, "all_2_2_0": 7]
        table.part_rows = ["all_1_1_0": 3]
        let (parts, useCRC) = try TableVerifier.parts(of: table)
        #expect(useCRC)
        #expect(parts.map(\.identity) == ["crc64:42", "crc64:7"])
        #expect(parts.map(\.rows) == [3, nil])
        table.hash_of_all_files?["all_2_2_0"] = "cd34"
        let (hashed, crc) = try TableVerifier.parts(of: table)
        #expect(!crc)
        #expect(hashed.map(\.identity) == ["ab12", "cd34"])
        table.parts?["default"]?.append(BackupPart(name: "../etc"))
        #expect(throws: BackupError.self) { try TableVerifier.parts(of: table) }
    }

    @Test("a difference encodes every key, null where absent")
    func differenceJSON() throws {
        let difference = TableComparison.compare(backup: [Self.part("1", 1, "a")], live: []).differences[0]
        let object = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(difference)) as? [String: Any])
        #expect(Set(object.keys) == ["kind", "partition", "backup_part", "live_part", "identity", "description"])
        #expect(object["live_part"] is NSNull)
        #expect(object["kind"] as? String == "missing")
        let decoded = try JSONDecoder().decode(TableDifference.self, from: JSONEncoder().encode(difference))
        #expect(decoded == difference)
    }
}
