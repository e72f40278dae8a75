import Foundation
import Testing

@testable import InplaceCore

/// The planner holds parts compactly (names parsed into numbers, partition and disk names
/// interned, hashes as two integers): nothing of that may change a plan. The golden JSON in
/// PlanCompactionGolden.swift was printed by the planner before compaction (commit 9abe84a),
/// for a fixture made of the cases compaction could get wrong.
@Suite("Compact part records")
struct PlanCompactionTests {
    static let query = "CREATE TABLE db.t (`d` Date, `id` UInt64) ENGINE = MergeTree PARTITION BY toYYYYMM(d) ORDER BY id"
    static let hashA = "0123456789abcdef0123456789abcdef"
    static let hashB = "fedcba9876543210fedcba9876543210"
    static let hashC = "00000000000000000000000000000001"
    static let upper = "0123456789ABCDEF0123456789ABCDEF"
    static let longPartition = "e4b6ac1c5d8f4f2aa1c3b2d4e5f60718"

    static func bpart(_ name: String, _ hash: String?, crc: UInt64? = nil, disk: String = "default", bytes: Int64 = 100)
        -> BackupTableState.Part
    {
        .init(name: name, disk: disk, hash: hash, checksumsCRC: crc, bytes: bytes)
    }

    static func lpart(_ name: String, _ partition: String, _ hash: String, crc: UInt64? = nil, disk: String = "default",
                      bytes: Int64 = 100) -> LiveState.Part {
        .init(name: name, partitionID: partition, disk: disk, hash: hash, checksumsCRC: crc, bytes: bytes)
    }

    /// Odd partition ids (with `_` and `-`, 32 characters), two disks, equal hashes in different
    /// partitions, duplicate identities on both sides, names compaction must keep as text
    /// (leading zeros, a span beyond 32 bits, a data version below the min block), hashes that
    /// are not 32 lower-case hex digits, CRC-64 identities, invalid names and missing data.
    static func fixture() -> (backup: [BackupTableState], live: LiveState) {
        let hashed = [
            bpart("a_b_1_1_0", hashA), bpart("a_b_2_2_0", hashA), bpart("a_b_3_3_1", hashB, disk: "fast", bytes: 7),
            bpart("2024-01_4_4_0", hashA), bpart("2024-01_5_9_2_17", hashC, disk: "fast"),
            bpart("\(longPartition)_1_1_0", upper), bpart("\(longPartition)_2_2_0", "abc"),
            bpart("202401_01_1_0", hashB), bpart("202401_2_99999999999_3", hashC, bytes: 1 << 40),
            bpart("202401_20_20_0_3", hashA), bpart("202402_1_1_0", hashB), bpart("202402_2_2_0", hashC),
        ]
        let hashedLive = [
            lpart("a_b_7_7_0", "a_b", hashA), lpart("a_b_8_8_0", "a_b", hashB, disk: "fast"),
            lpart("2024-01_1_1_0", "2024-01", hashA), lpart("2024-01_2_2_0", "2024-01", hashA),
            lpart("\(longPartition)_5_5_0", longPartition, upper), lpart("\(longPartition)_6_6_0", longPartition, "ABC"),
            lpart("202401_01_1_0", "202401", hashB), lpart("202401_100000000000_100000000000_0", "202401", hashC),
            lpart("202401_21_21_0", "202401", hashA), lpart("202402_3_3_0", "202402", hashC),
            lpart("202402_4_4_0", "202402", hashB), lpart("202403_1_1_0", "202403", hashA, disk: "fast"),
        ]
        let crcParts = [
            bpart("all_1_1_0", hashA, crc: 11), bpart("all_2_2_0", nil, crc: 22), bpart("all_3_3_0", nil, crc: 11),
            bpart("all_4_4_0", nil, crc: nil), bpart("all_5_5_0", hashB, crc: 33, disk: "fast"),
        ]
        let crcLive = [
            lpart("all_6_6_0", "all", hashA, crc: 11), lpart("all_7_7_0", "all", hashB, crc: 33, disk: "fast"),
            lpart("all_8_8_0", "all", "zz", crc: nil), lpart("all_9_9_0", "all", hashC, crc: 22),
        ]
        let current = [bpart("a_b_7_7_0", hashA), bpart("a_b_5_5_0", hashB), bpart("2024-01_1_1_0", hashA),
                       bpart("weird", nil)]
        let backup = [
            BackupTableState(database: "db", table: "hashed", query: query, parts: hashed, currentParts: current),
            BackupTableState(database: "db", table: "crc", query: query, parts: crcParts),
            BackupTableState(database: "db", table: "invalid", query: query, parts: [bpart("all_1_1_0", hashA), bpart("bad/name", hashA)]),
            BackupTableState(database: "db", table: "missing", query: query, parts: [bpart("all_1_1_0", hashA)],
                             missingData: ["all_1_1_0"]),
            BackupTableState(database: "new", table: "created", query: query,
                             parts: [bpart("all_2_2_0", hashB, disk: "fast"), bpart("all_1_1_0", hashA)]),
        ]
        let live = LiveState(
            databases: ["db": "Atomic"],
            tables: [TableKey("db", "hashed"): .init(engine: "MergeTree", createQuery: query, parts: hashedLive),
                     TableKey("db", "crc"): .init(engine: "MergeTree", createQuery: query, parts: crcLive),
                     TableKey("db", "invalid"): .init(engine: "MergeTree", createQuery: query, parts: []),
                     TableKey("db", "missing"): .init(engine: "MergeTree", createQuery: query, parts: [])],
            disks: ["default": 1 << 50, "fast": 1 << 50])
        return (backup, live)
    }

    static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    @Test("the fixture's plan and its --json report are byte for byte what the planner printed before compaction")
    func sameJSONAsBeforeCompaction() throws {
        let (backup, live) = Self.fixture()
        let plan = Planner.plan(backup: backup, live: live)
        let journaled = try Self.json(plan)
        let report = try Self.json(PlanReport.json(plan, backup: "b", source: .local, threeWay: true))
        #expect(journaled == PlanCompactionGolden.plan)
        #expect(report == PlanCompactionGolden.report)
        // What the journal stores decodes to the same plan, which encodes to the same bytes.
        let decoded = try JSONDecoder().decode(RestorePlan.self, from: Data(journaled.utf8))
        #expect(decoded == plan)
        #expect(try Self.json(decoded) == journaled)
    }

    @Test("part actions and drift encode with the same keys as before compaction, a missing identity left out")
    func partActionAndDriftJSON() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]  // as everything that prints plans (unsorted order varies by run here)
        func text<T: Encodable>(_ value: T) throws -> String { String(decoding: try encoder.encode(value), as: UTF8.self) }
        let hashed = TablePlan.PartAction(name: "202401_2_99999999999_3", partition: "202401", disk: "fast",
                                          bytes: 1 << 40, identity: Self.hashA)
        let crc = TablePlan.PartAction(name: "bad/name", partition: "all", disk: "default", bytes: 7, identity: "crc64:11")
        let none = TablePlan.PartAction(name: "all_1_1_0", partition: "all", disk: "default", bytes: 0, identity: nil)
        #expect(try text(hashed) == #"{"bytes":1099511627776,"disk":"fast","identity":"0123456789abcdef0123456789abcdef","name":"202401_2_99999999999_3","partition":"202401"}"#)
        #expect(try text(crc) == #"{"bytes":7,"disk":"default","identity":"crc64:11","name":"bad\/name","partition":"all"}"#)
        #expect(try text(none) == #"{"bytes":0,"disk":"default","name":"all_1_1_0","partition":"all"}"#)
        for action in [hashed, crc, none] {
            #expect(try JSONDecoder().decode(TablePlan.PartAction.self, from: Data(text(action).utf8)) == action)
        }
        let drift = TablePlan.Drift(added: ["all_1_2_1", "202401_01_1_0"], gone: ["weird"])
        #expect(try text(drift) == #"{"added":["all_1_2_1","202401_01_1_0"],"gone":["weird"]}"#)
        #expect(try JSONDecoder().decode(TablePlan.Drift.self, from: Data(text(drift).utf8)) == drift)
    }

    @Test("part names at the edges of the compact form give their text back, equal only to themselves")
    func partNameEdges() {
        let compact = [
            "all_281474976710655_281474976710655_0", "p_281474976710000_281474976710001_65535_281474976710002",
            "all_1_1_65535", "all_5_9_2_17", "all_5_9_2_5", "all_0_4294967294_0", "all_0_0_0_4294967293", "all_0_0_0",
        ]
        let text = [
            "all_281474976710656_281474976710656_0", "all_1_1_65536", "all_5_9_2_4", "all_0_4294967295_0",
            "all_0_0_0_4294967294", "all_01_1_0", "bad/name", "weird",
        ]
        for name in compact + text {
            #expect(CompactPartName(name).string == name)
        }
        for name in compact {
            let parsed = PartName(name)!
            #expect(CompactPartName(name).blocks.map { [$0.minBlock, $0.maxBlock] } == [parsed.minBlock, parsed.maxBlock])
        }
        for name in text { #expect(CompactPartName(name).blocks == nil) }
        #expect(Set((compact + text).map(CompactPartName.init)).count == compact.count + text.count)
    }

    @Test("the records of a million parts keep their sizes")
    func recordSizes() {
        #expect(MemoryLayout<CompactPartName>.size == 20)
        #expect(MemoryLayout<BackupTableState.Part>.stride == 64)
        #expect(MemoryLayout<LiveState.Part>.stride == 64)
        #expect(MemoryLayout<TablePlan.Kept>.stride == 48)
        #expect(MemoryLayout<TablePlan.Resequenced>.stride == 80)
        #expect(MemoryLayout<TablePlan.PartAction>.stride == 56)
    }

    @Test("the same plan with --drop-first, --full and options that read every part record")
    func sameJSONWithOtherOptions() throws {
        let (backup, live) = Self.fixture()
        let plan = Planner.plan(backup: backup, live: live, options: PlanOptions(full: true, dropFirst: true))
        #expect(try Self.json(plan) == PlanCompactionGolden.fullDropFirst)
    }
}

