import Foundation
import Testing

@testable import InplaceCore

private func q(_ name: String) -> String { ClickHouseSQL.identifier(name) }

/// Engines whose `SELECT ... FINAL` depends on the order of the parts (all but the versioned
/// one, which orders rows by its version column and is here as the control).
enum OrderedEngine: String, CaseIterable, CustomStringConvertible, Sendable {
    case replacing, replacingEqualVersions, collapsing, versionedCollapsing

    var description: String { rawValue }

    var engine: String {
        switch self {
        case .replacing: "ReplacingMergeTree"
        case .replacingEqualVersions: "ReplacingMergeTree(ver)"
        case .collapsing: "CollapsingMergeTree(sign)"
        case .versionedCollapsing: "VersionedCollapsingMergeTree(sign, ver)"
        }
    }

    var hasSign: Bool { self == .collapsing || self == .versionedCollapsing }

    /// The rows of insert `index` (0 'old', 1 'mid', 2 'new') for the same 100 keys: a plain
    /// replacement (every version equal), or for the collapsing engines the cancel of the
    /// previous state and the new state.
    func insert(_ table: String, _ index: Int) -> String {
        let values = ["old", "mid", "new"]
        var rows = ["('\(values[index])', 1, \(hasSign ? index + 1 : 1))"]
        if hasSign && index > 0 { rows.insert("('\(values[index - 1])', -1, \(index))", at: 0) }
        return """
            INSERT INTO \(table) (k, v, sign, ver) SELECT number, r.1, r.2, r.3 FROM numbers(100)
            ARRAY JOIN [\(rows.joined(separator: ", "))] AS r
            """
    }
}

@Suite("In-place restore keeps the order of parts that FINAL depends on, on the test bed",
       .enabled(if: TestBed.shouldRun), .serialized)
struct OrderTests {
    let ch: ClickHouseClient
    let config: String

    init() throws {
        ch = try TestBed.load().clickHouse()
        config = TestBed.envFile.replacingOccurrences(of: "/env", with: "/config.yml")
    }

    /// The table as built: three inserts, one part each, merges stopped (and never selected).
    private func build(_ engine: OrderedEngine, db: String) async throws {
        let table = "\(q(db)).t"
        try await ch.execute("DROP TABLE IF EXISTS \(table) SYNC")
        try await ch.execute("""
            CREATE TABLE \(table) (k UInt64, v String, sign Int8, ver UInt64) ENGINE = \(engine.engine) ORDER BY k
            \(noMergeSettings)
            """)
        try await ch.execute("SYSTEM STOP MERGES \(table)")
        for index in 0..<3 { try await ch.execute(engine.insert(table, index)) }
    }

    /// Rows and checksums per partition, FINAL's answer, and count() and sum(sign).
    private func contents(_ db: String) async throws -> (TableContents?, String) {
        let table = try await TableContents.of(ch, db, "t", final: "k, v FROM {table} ORDER BY k")
        let totals = try await ch.execute("SELECT count(), sum(sign) FROM \(q(db)).t")
        return (table, totals.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// The live parts in insert order (min block), with their content hashes.
    private func parts(_ db: String) async throws -> [(name: String, hash: String)] {
        try await ClickHouseCatalog(client: ch).parts(of: [(db, "t")])
            .sorted { PartName($0.name)!.minBlock < PartName($1.name)!.minBlock }.map { ($0.name, $0.hash) }
    }

    @Test("three inserts of the same keys, the oldest, middle or newest part lost: FINAL, count and sum(sign) as at backup time, only the lost part downloaded",
          arguments: OrderedEngine.allCases)
    func lostPartRestoredInOrder(_ engine: OrderedEngine) async throws {
        let db = TestBed.uniqueName("it_order_\(engine.rawValue)")
        try await ch.execute("CREATE DATABASE \(q(db))")
        try await build(engine, db: db)
        let wanted = try await contents(db)
        let final = try #require(wanted.0?.final)
        #expect(final.split(separator: "\n").allSatisfy { $0.hasSuffix("\tnew") } && final.split(separator: "\n").count == 100)
        #expect(wanted.1 == (engine.hasSign ? "500\t100" : "300\t300"))
        let original = try await parts(db)
        #expect(original.count == 3)
        let name = TestBed.uniqueName("order")
        #expect(try await CLI.run(["create", "--config", config, "--tables", "\(db).*", name]).status == 0)
        // A part's bytes as the backup records them (what a restore counts when it downloads it).
        let layout = LocalBackupLayout(disks: try await ClickHouseCatalog(client: ch).disks())
        let metadata = try await LocalBackupSource(name: name, layout: layout).tableMetadata(database: db, table: "t")
        let backupBytes = original.map { part in
            (metadata.parts?["default"] ?? []).first { metadata.hash_of_all_files?[$0.name] == part.hash }?.size ?? -1
        }
        #expect(backupBytes.allSatisfy { $0 > 0 }, "\(backupBytes)")
        let folder = try TemporaryFolder()
        defer { folder.remove() }

        for (lost, label) in [(0, "oldest"), (1, "middle"), (2, "newest")] {
            try await build(engine, db: db)
            let built = try await parts(db)
            #expect(built.map(\.hash) == original.map(\.hash), "\(engine) \(label): the rebuilt parts differ")
            try await ch.execute("ALTER TABLE \(q(db)).t DROP PART \(ClickHouseSQL.string(built[lost].name))")

            let restored = try await CLI.run(["restore", "--config", config, "--journal", folder.path("\(lost).sqlite"),
                                              "--json", name])
            #expect(restored.status == 0, "\(engine) \(label): \(restored.stderr)")
            let got = try await contents(db)
            #expect(got.0 == wanted.0, "\(engine), \(label) part lost: \(got.0.map(\.description) ?? "missing"), wanted \(wanted.0!)")
            #expect(got.1 == wanted.1, "\(engine), \(label) part lost: count() and sum(sign)")
            let summary = try? JSONDecoder().decode(RestoreSummary.self, from: Data(restored.stdout.utf8))
            #expect(summary?.bytesDownloaded == backupBytes[lost],
                    "\(engine), \(label) part lost: downloaded \(summary.map { String($0.bytesDownloaded) } ?? "?") bytes, the lost part has \(backupBytes[lost])")
        }
        try? FileManager.default.removeItem(atPath: layout.folder(name))
        _ = try? await ch.execute("DROP DATABASE \(q(db)) SYNC")
    }
}
