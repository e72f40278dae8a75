import Foundation
import Testing

@testable import InplaceCore

private func q(_ name: String) -> String { ClickHouseSQL.identifier(name) }

@Suite("restore --new-run supersedes an unfinished run, on the test bed", .enabled(if: TestBed.shouldRun), .serialized)
struct SupersedeIntegrationTests {
    let ch: ClickHouseClient
    let config: String

    init() throws {
        ch = try TestBed.load().clickHouse()
        config = TestBed.envFile.replacingOccurrences(of: "/env", with: "/config.yml")
    }

    @Test("a run killed midway, then restore --new-run: the new run restores, and nothing resumes or replays the old one")
    func newRunSupersedesKilledRun() async throws {
        let db = TestBed.uniqueName("it_supersede")
        try await ch.execute("CREATE DATABASE \(q(db))")
        try await ch.execute("""
            CREATE TABLE \(q(db)).t (d Date, id UInt64) ENGINE = MergeTree PARTITION BY toYYYYMM(d) ORDER BY id
            """)
        try await ch.execute("SYSTEM STOP MERGES \(q(db)).t")
        for index in 0..<4 {
            try await ch.execute("INSERT INTO \(q(db)).t SELECT toDate('2024-0\(1 + index % 2)-01'), number + \(index * 100) FROM numbers(\(10 + index))")
        }
        let wanted = try await TableContents.of(ch, db, "t")
        let name = TestBed.uniqueName("supersede")
        #expect(try await CLI.run(["create", "--config", config, "--tables", "\(db).*", name]).status == 0)
        for part in try await ClickHouseCatalog(client: ch).parts(of: [(db, "t")]).map(\.name).prefix(2) {
            try await ch.execute("ALTER TABLE \(q(db)).t DROP PART \(ClickHouseSQL.string(part))")
        }
        try await ch.execute("INSERT INTO \(q(db)).t SELECT toDate('2024-01-01'), number + 5000 FROM numbers(7)")
        #expect(try await TableContents.of(ch, db, "t") != wanted)

        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let journal = folder.path("journal.sqlite")
        // Run 1 is killed after its plan and the first steps (SIGKILL: it stays `running`).
        let killed = try await CLI.run(["restore", "--config", config, "--journal", journal, name],
                                       environment: ["INPLACE_TEST_CRASH_AFTER_TRANSITION": "4"])
        #expect(killed.status == 9 || killed.status == 137, "\(killed.stderr)")
        #expect(try await Journal(path: journal, readOnly: true).run(1)?.state == .running)

        let restored = try await CLI.run(["restore", "--config", config, "--journal", journal, "--new-run", "--json", name])
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(restored.stderr.contains("unfinished run(s) 1 of \(name) marked superseded by run 2"), "\(restored.stderr)")
        let summary = try JSONDecoder().decode(RestoreSummary.self, from: Data(restored.stdout.utf8))
        #expect(summary.run == 2 && summary.state == .done)
        #expect(try await TableContents.of(ch, db, "t") == wanted)

        // Run 1 as --new-run left it: its steps done or superseded, and so they stay.
        func history() async throws -> [String] {
            let reader = try Journal(path: journal, readOnly: true)
            var lines: [String] = []
            for event in try await reader.events(1) {
                let steps = try await reader.transitions(event.id).map { "\($0.from?.rawValue ?? "-")>\($0.to.rawValue)" }
                lines.append("\(event.id) \(event.kind.rawValue) \(event.state.rawValue): \(steps)")
            }
            return lines
        }
        let before = try await history()
        #expect(!before.isEmpty)
        let states = try await Journal(path: journal, readOnly: true).events(1).map(\.state)
        #expect(states.allSatisfy { $0 == .done || $0 == .superseded }, "\(before)")
        #expect(states.contains(.superseded), "\(before)")

        let resumed = try await CLI.run(["resume", "--config", config, "--journal", journal])
        #expect(resumed.status == 14, "\(resumed.all)")
        #expect(resumed.stderr.contains("has no unfinished run"), "\(resumed.stderr)")
        for command in [["resume", "1"], ["journal", "replay", "1", "--failed"]] {
            let refused = try await CLI.run(command + ["--config", config, "--journal", journal])
            #expect(refused.status == 14, "\(command): \(refused.all)")
            #expect(refused.stderr.contains("run 1 of \(name) was superseded by run 2"), "\(command): \(refused.stderr)")
        }
        // restore NAME without --new-run does not pick run 1 either: a new run with nothing to do.
        let again = try await CLI.run(["restore", "--config", config, "--journal", journal, "--json", name])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(!again.stderr.contains("resuming"), "\(again.stderr)")
        let third = try JSONDecoder().decode(RestoreSummary.self, from: Data(again.stdout.utf8))
        #expect(third.run == 3 && third.events == 0)
        #expect(try await history() == before)
        #expect(try await TableContents.of(ch, db, "t") == wanted)

        let listed = try await CLI.run(["journal", "list", "--journal", journal, "--json"])
        #expect(listed.status == 0, "\(listed.stderr)")
        let runs = try JSONDecoder().decode([JournalRun].self, from: Data(listed.stdout.utf8))
        #expect(runs.map(\.id) == [1, 2, 3])
        #expect(runs.map(\.state) == [.superseded, .done, .done])
        #expect(runs.map(\.supersededBy) == [2, nil, nil])
        #expect(listed.stdout.contains("\"superseded_by\" : 2"), "\(listed.stdout)")
        let text = try await CLI.run(["journal", "list", "--journal", journal])
        #expect(text.stdout.split(separator: "\n").first?.split(separator: "\t").dropFirst(3).first == "superseded",
                "\(text.stdout)")
        let shown = try await CLI.run(["journal", "show", "--journal", journal, "1"])
        #expect(shown.stdout.contains("superseded by run 2"), "\(shown.stdout)")
        let layout = LocalBackupLayout(disks: try await ClickHouseCatalog(client: ch).disks())
        try? FileManager.default.removeItem(atPath: layout.folder(name))
        _ = try? await ch.execute("DROP DATABASE \(q(db)) SYNC")
    }
}
