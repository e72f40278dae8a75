import Foundation
import Testing

@testable import InplaceCore

private func q(_ name: String) -> String { ClickHouseSQL.identifier(name) }

/// Kept parts re-sequenced in a batch (one DETACH and one ATTACH statement for a row of them),
/// killed at every point. A ReplacingMergeTree table without a version column: five inserts of
/// the same 30 keys into one partition, each with its own value, so `SELECT ... FINAL` answers
/// the value of the part with the highest block. The live table lost the oldest part: the
/// restore attaches it from the backup, and the four kept parts after it are re-sequenced in one
/// batch. A restore in the wrong order would answer the oldest part's value for every key.
@Suite("Re-sequencing in batches on the test bed: killed at every step", .enabled(if: TestBed.shouldRun), .serialized)
struct ResequenceBatchTests {
    let bed: TestBed
    let ch: ClickHouseClient
    let config: String

    init() throws { (bed, ch, config) = try TestBed.clients() }

    static let parts = 5

    /// The backup's state: five parts of one partition (inserts are deterministic, so every
    /// rebuild has the same content hashes). `lostOldest` drops the oldest part afterwards.
    /// Unless `mergeable`, no background merge ever selects its parts (the restore starts merges
    /// when it ends, and a ReplacingMergeTree merge removes rows): every row can be compared.
    private func build(_ db: String, lostOldest: Bool, mergeable: Bool) async throws {
        _ = try? await ch.execute("DROP DATABASE IF EXISTS \(q(db)) SYNC")
        try await ch.execute("CREATE DATABASE \(q(db))")
        try await ch.execute("""
            CREATE TABLE \(q(db)).r (d Date, id UInt64, v String) ENGINE = ReplacingMergeTree
            PARTITION BY toYYYYMM(d) ORDER BY id
            \(mergeable ? "" : "SETTINGS max_bytes_to_merge_at_max_space_in_pool = 1")
            """)
        try await ch.execute("SYSTEM STOP MERGES \(q(db)).r")
        for index in 0..<Self.parts {
            try await ch.execute("""
                INSERT INTO \(q(db)).r SELECT toDate('2024-03-01') + number % 28, number, 'insert \(index)' FROM numbers(30)
                """)
        }
        guard lostOldest else { return }
        let oldest = try await ClickHouseCatalog(client: ch).parts(of: [(db, "r")]).map(\.name).sorted {
            PartName($0)!.minBlock < PartName($1)!.minBlock
        }[0]
        try await ch.execute("ALTER TABLE \(q(db)).r DROP PART \(ClickHouseSQL.string(oldest))")
    }

    /// What a reader sees: every row (count and checksum), and what FINAL answers.
    private func rows(_ db: String) async throws -> String {
        try await ch.execute("SELECT count(), sum(cityHash64(d, id, v)) FROM \(q(db)).r")
    }
    private func final(_ db: String) async throws -> String {
        try await ch.execute("SELECT count(), sum(cityHash64(d, id, v)), groupUniqArray(v) FROM \(q(db)).r FINAL")
    }

    private func detachedLeft(_ db: String) async throws -> [String] {
        var found: [String] = []
        for table in try await ClickHouseCatalog(client: ch).tables() where table.database == db {
            for path in table.dataPaths {
                found += (try? FileManager.default.contentsOfDirectory(atPath: path + "detached")) ?? []
            }
        }
        return found
    }

    @Test("killed after every side effect of a batched re-sequencing, then merged: resume ends with the backup's FINAL answer")
    func killedAfterEffectsMerged() async throws {
        try await matrix(prefix: "rsbm", switch: "INPLACE_TEST_CRASH_AFTER_EFFECT", mergeBeforeResume: true)
    }

    @Test("killed after every side effect of a batched re-sequencing, nothing merged: resume ends with the backup's rows")
    func killedAfterEffectsUnmerged() async throws {
        try await matrix(prefix: "rsbu", switch: "INPLACE_TEST_CRASH_AFTER_EFFECT", mergeBeforeResume: false)
    }

    @Test("killed after every journal commit of a batched re-sequencing: resume ends with the backup's rows")
    func killedAfterTransitions() async throws {
        try await matrix(prefix: "rsbt", switch: "INPLACE_TEST_CRASH_AFTER_TRANSITION", mergeBeforeResume: false)
    }

    private func matrix(prefix: String, switch variable: String, mergeBeforeResume: Bool) async throws {
        let db = TestBed.uniqueName("it_\(prefix)")
        try await build(db, lostOldest: false, mergeable: mergeBeforeResume)
        let atBackupRows = try await rows(db)
        let atBackupFinal = try await final(db)
        #expect(atBackupFinal.contains("insert \(Self.parts - 1)") && !atBackupFinal.contains("insert 0"))
        let name = TestBed.uniqueName(prefix)
        #expect(try await CLI.run(["create", "--config", config, "--tables", "\(db).*", name]).status == 0)
        let layout = LocalBackupLayout(disks: try await ClickHouseCatalog(client: ch).disks())
        defer { try? FileManager.default.removeItem(atPath: layout.folder(name)) }

        var k = 1
        var kills = 0
        var batched = false
        while true {
            try await build(db, lostOldest: true, mergeable: mergeBeforeResume)
            let folder = try TemporaryFolder()
            defer { folder.remove() }
            let journal = folder.path("journal.sqlite")
            let run = try await CLI.run(["restore", "--config", config, "--journal", journal, "--json", name],
                                        environment: [variable: String(k)])
            if run.status == 0 {
                if !mergeBeforeResume { #expect(try await rows(db) == atBackupRows) }
                #expect(try await final(db) == atBackupFinal)
                #expect(try await detachedLeft(db) == [])
                let summary = try JSONDecoder().decode(RestoreSummary.self, from: Data(run.stdout.utf8))
                // 1 plan, 1 download + attach, 4 detaches + 4 attaches, 1 verify.
                #expect(summary.events == 1 + 2 + 2 * (Self.parts - 1) + 1, "\(run.stdout)")
                break
            }
            // Anything but the test's SIGKILL is a failed restore: reported, and the matrix ends.
            guard run.status == 9 || run.status == 137 else {
                Issue.record("k=\(k): the restore failed (exit \(run.status)): \(run.stderr.suffix(2000))")
                break
            }
            kills += 1
            if let line = run.stderr.split(separator: "\n").first(where: { $0.contains("test crash after side effect") }),
               line.contains("DETACH PART"), line.contains(", ")
            {
                batched = true  // one DETACH statement for several parts: the batch path ran
            }
            if mergeBeforeResume {
                _ = try? await ch.execute("SYSTEM START MERGES \(q(db)).r")
                _ = try? await ch.execute("OPTIMIZE TABLE \(q(db)).r FINAL")
            }
            let resumed = try await CLI.run(["resume", "--config", config, "--journal", journal, "--json"])
            #expect(resumed.status == 0, "k=\(k): \(resumed.stdout) \(resumed.stderr)")
            // Merged, a ReplacingMergeTree keeps one row per key: FINAL is what a reader is
            // promised. Unmerged, every row of the backup is there, none twice.
            if !mergeBeforeResume { #expect(try await rows(db) == atBackupRows, "k=\(k)") }
            #expect(try await final(db) == atBackupFinal, "k=\(k)")
            #expect(try await detachedLeft(db) == [], "k=\(k)")
            let reader = try Journal(path: journal, readOnly: true)
            for event in try await reader.events(1) where event.state != .superseded {
                #expect(event.state == .done, "k=\(k) \(event.kind.rawValue) \(event.part ?? ""): \(event.state)")
            }
            k += 1
        }
        print("re-sequencing batch, \(variable)\(mergeBeforeResume ? ", merged" : ""): \(kills) kill points, each resumed to the backup")
        #expect(kills >= 5, "the matrix covered \(kills) kill points")
        if variable == "INPLACE_TEST_CRASH_AFTER_EFFECT" { #expect(batched, "no kill landed after a batched DETACH") }
        _ = try? await ch.execute("DROP DATABASE \(q(db)) SYNC")
    }
}
