import Foundation
import Testing

@testable import InplaceCore

private func q(_ name: String) -> String { ClickHouseSQL.identifier(name) }

/// Three tables whose parts are known, the changes made to them after the backup, and the checks
/// that a restored database equals the backup. Inserts are deterministic, so the same changed
/// state can be rebuilt for every crash point against one backup (content hashes are equal).
struct RestoreScenario {
    let ch: ClickHouseClient
    let db: String
    static let months = ["2024-01", "2024-02", "2024-03", "2024-04"]
    static let tables = ["a", "b", "c"]
    /// Rows per table in the backup: 8 parts (2 per month) of 10 + index rows.
    static let rowsPerTable = (0..<8).reduce(0) { $0 + 10 + $1 }

    func createTable(_ table: String) async throws {
        try await ch.execute("""
            CREATE TABLE \(q(db)).\(q(table)) (d Date, id UInt64, s String) ENGINE = MergeTree
            PARTITION BY toYYYYMM(d) ORDER BY id
            """)
        try await ch.execute("SYSTEM STOP MERGES \(q(db)).\(q(table))")
    }

    func insert(_ table: String, index: Int, month: String, base: Int) async throws {
        try await ch.execute("""
            INSERT INTO \(q(db)).\(q(table)) SELECT toDate('\(month)-01') + number % 28, number + \(base), toString(number * \(index + 3))
            FROM numbers(\(10 + index))
            """)
    }

    /// The state the backup is made of.
    func original() async throws {
        _ = try? await ch.execute("DROP DATABASE IF EXISTS \(q(db)) SYNC")
        try await ch.execute("CREATE DATABASE \(q(db))")
        for table in Self.tables {
            try await createTable(table)
            for index in 0..<8 { try await insert(table, index: index, month: Self.months[index / 2], base: index * 1000) }
        }
    }

    /// The same, then changed: `a` lost 5 parts (two whole partitions, and the older part of a
    /// third, so that the newer one is re-sequenced) and gained 2, `b` was dropped, `c` emptied
    /// and refilled with other rows, and with `alterC` given a column the backup lacks (so that
    /// `--drop-if-schema-changed` recreates it).
    func changed(alterC: Bool = false) async throws {
        try await original()
        let parts = try await ClickHouseCatalog(client: ch).parts(of: [(db, "a")]).map(\.name)
        for part in parts.prefix(5) { try await ch.execute("ALTER TABLE \(q(db)).a DROP PART \(ClickHouseSQL.string(part))") }
        try await insert("a", index: 20, month: "2024-05", base: 50_000)
        try await insert("a", index: 21, month: "2024-01", base: 60_000)
        try await ch.execute("DROP TABLE \(q(db)).b SYNC")
        try await ch.execute("TRUNCATE TABLE \(q(db)).c SYNC")
        for index in 30..<33 { try await insert("c", index: index, month: "2024-02", base: index * 1000) }
        if alterC { try await ch.execute("ALTER TABLE \(q(db)).c ADD COLUMN extra UInt8 DEFAULT 1") }
    }

    /// What a reader sees: per table, rows and a checksum of every row per partition.
    func contents() async throws -> [String] {
        var lines: [String] = []
        for table in Self.tables {
            let rows = (try? await ch.execute("""
                SELECT _partition_id, count(), sum(cityHash64(d, id, s)) FROM \(q(db)).\(q(table)) GROUP BY 1 ORDER BY 1
                """)) ?? "missing\n"
            lines += rows.split(separator: "\n").map { "\(table) \($0)" }
        }
        return lines
    }

    /// What a restarted server does while no run watches: merges run, and OPTIMIZE FINAL
    /// merges every partition into one part.
    func mergeEverything() async throws {
        for table in Self.tables {
            _ = try? await ch.execute("SYSTEM START MERGES \(q(db)).\(q(table))")
            _ = try? await ch.execute("OPTIMIZE TABLE \(q(db)).\(q(table)) FINAL")
        }
    }

    /// Old copies of recreated tables that were not dropped.
    func asideTables() async throws -> [String] {
        try await ch.execute("SELECT name FROM system.tables WHERE database = {db:String} AND startsWith(name, '.inplace-old-')",
                             parameters: ["db": db]).split(separator: "\n").map(String.init)
    }

    /// Differences between the live tables and the backup (empty when equal): parts compared as
    /// multisets of (partition, hash), and rows counted, with no duplicated id.
    func differences(from backup: any BackupSource, parts compareParts: Bool = true) async throws -> [String] {
        var problems: [String] = []
        let live = try await ClickHouseCatalog(client: ch).parts(of: Self.tables.map { (db, $0) })
        for table in Self.tables {
            let metadata = try await backup.tableMetadata(database: db, table: table)
            let wanted = (metadata.parts?["default"] ?? []).map { "\(PartName($0.name)!.partitionID)/\(metadata.hash_of_all_files?[$0.name] ?? "?")" }.sorted()
            let have = live.filter { $0.table == table }.map { "\($0.partitionID)/\($0.hash)" }.sorted()
            if compareParts && wanted != have { problems.append("\(table): parts \(have) instead of \(wanted)") }
            guard let counts = try? await ch.execute("SELECT count(), uniqExact(id) FROM \(q(db)).\(q(table))")
                .trimmingCharacters(in: .whitespacesAndNewlines)
            else {
                problems.append("\(table): missing")
                continue
            }
            if counts != "\(Self.rowsPerTable)\t\(Self.rowsPerTable)" {
                problems.append("\(table): count and distinct ids \(counts), expected \(Self.rowsPerTable) each")
            }
        }
        return problems
    }
}

@Suite("Restore on the test bed: end to end, and killed at every step", .enabled(if: TestBed.shouldRun), .serialized)
struct RestoreIntegrationTests {
    let bed: TestBed
    let ch: ClickHouseClient
    let config: String

    init() throws {
        bed = try TestBed.load()
        ch = try bed.clickHouse()
        config = TestBed.envFile.replacingOccurrences(of: "/env", with: "/config.yml")
    }

    private func diskPath() async throws -> String {
        try await ClickHouseCatalog(client: ch).disks().first { $0.name == "default" }!.path
    }

    /// What a restore with `journal` left behind that it should not: its staging folders, parts
    /// in the scenario's detached/ folders.
    private func leftovers(_ scenario: RestoreScenario, journal: String) async throws -> [String] {
        var found: [String] = []
        let staging = try await diskPath() + "backup/.inplace-staging"
        let prefix = RestoreRunner.stagingPrefix(journal: journal, run: 1)
        found += ((try? FileManager.default.contentsOfDirectory(atPath: staging)) ?? [])
            .filter { $0.hasPrefix(String(prefix.prefix { $0 != "-" })) }.map { "staging/\($0)" }
        for table in try await ClickHouseCatalog(client: ch).tables() where table.database == scenario.db {
            for path in table.dataPaths {
                found += ((try? FileManager.default.contentsOfDirectory(atPath: path + "detached")) ?? [])
                    .map { "\(table.name)/detached/\($0)" }
            }
        }
        return found
    }

    @Test("a restore makes every table equal to the backup, and a second restore does nothing")
    func endToEnd() async throws {
        let scenario = RestoreScenario(ch: ch, db: TestBed.uniqueName("it_restore"))
        try await scenario.original()
        let atBackup = try await scenario.contents()
        let name = TestBed.uniqueName("rst")
        let env = ["S3_PATH": "it/\(TestBed.uniqueName("rst"))"]
        #expect(try await CLI.run(["create", "--config", config, "--tables", "\(scenario.db).*", name], environment: env).status == 0)
        try await scenario.changed()
        let layout = LocalBackupLayout(disks: try await ClickHouseCatalog(client: ch).disks())
        let backup = LocalBackupSource(name: name, layout: layout)
        #expect(try await !scenario.differences(from: backup).isEmpty)

        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let journal = folder.path("journal.sqlite")
        let restored = try await CLI.run(["restore", "--config", config, "--journal", journal, "--json", "--log-level", "debug", name],
                                         environment: env)
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(try await scenario.differences(from: backup) == [])
        // Each attached part's hash was read from its own checksums.txt, never asked of system.parts.
        #expect(!restored.stderr.contains("asking system.parts"), "\(restored.stderr)")
        #expect(try await leftovers(scenario, journal: journal) == [])
        let summary = try JSONDecoder().decode(RestoreSummary.self, from: Data(restored.stdout.utf8))
        #expect(summary.state == .done && summary.failed == 0)
        // a: 2 drops, 5 downloads + attaches, 1 kept part re-sequenced (detach + attach); b:
        // create, 8 + 8; c: 3 drops, 8 + 8; a verify-table each; and 3 plan-table.
        #expect(summary.events == 3 + (2 + 10 + 2 + 1) + (1 + 16 + 1) + (3 + 16 + 1))


        let again = try await CLI.run(["restore", "--config", config, "--journal", journal, "--json", name], environment: env)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try JSONDecoder().decode(RestoreSummary.self, from: Data(again.stdout.utf8)).events == 0)

        #expect(try await scenario.contents() == atBackup)
        // Every step's transitions are in order and complete.
        let reader = try Journal(path: journal, readOnly: true)
        // The kept part after a lost one in its partition was re-sequenced, not downloaded.
        let steps = try await reader.events(summary.run).filter { $0.table == "a" }
        let detached = steps.filter { $0.kind == .detachPart }.compactMap(\.part)
        #expect(detached.count == 1)
        #expect(!steps.contains { $0.kind == .downloadPart && detached.contains($0.part ?? "") })
        for event in try await reader.events(summary.run) {
            let steps = try await reader.transitions(event.id).map(\.to)
            // An attach with a content hash records the name ClickHouse gave the part with its
            // `done` (resume finds it by exclusion); one without, still started, before its check.
            let expected: [EventState] = event.kind == .attachPart && event.identity == nil
                ? [.pending, .started, .started, .done] : [.pending, .started, .done]
            #expect(steps == expected, "\(event.kind.rawValue) \(event.part ?? "")")
            if event.kind == .attachPart { #expect(event.newPart != nil) }
        }

        // From S3 too: upload, remove the local copy, change the tables again, restore from remote.
        #expect(try await CLI.run(["upload", "--config", config, name], environment: env).status == 0)
        try FileManager.default.removeItem(atPath: layout.folder(name))
        try await scenario.changed()
        let remote = try await CLI.run(["restore", "--config", config, "--journal", journal, "--from", "remote", name],
                                 environment: env)
        #expect(remote.status == 0, "\(remote.stderr)")
        let store = RemoteBackupStore(s3: try bed.s3(), path: env["S3_PATH"]!)
        #expect(try await scenario.differences(from: RemoteBackupSource(name: name, store: store)) == [])
        #expect(try await leftovers(scenario, journal: journal) == [])
        _ = try? await ch.execute("DROP DATABASE \(q(scenario.db)) SYNC")
    }

    @Test("killed with SIGKILL after every transition, the restore resumes to the backup: nothing lost, duplicated or fetched twice")
    func crashMatrix() async throws {
        let matrix = try await runCrashMatrix(prefix: "crash", switch: "INPLACE_TEST_CRASH_AFTER_TRANSITION", mergeBeforeResume: false)
        print("crash matrix: \(matrix.kills) crash points, each resumed to the backup")
        #expect(matrix.kills >= 90, "the matrix covered \(matrix.kills) crash points")
    }
}

extension RestoreIntegrationTests {
    /// Kills the restore right after each side effect returned and before the journal recorded it
    /// (INPLACE_TEST_CRASH_AFTER_EFFECT: a test-only switch, since a crash at that instant
    /// cannot be made to happen otherwise), then does what a restarted server does (merges
    /// start again, OPTIMIZE FINAL merges every partition), then resumes.
    @Test("killed after every side effect, before the journal knows, then merged: resume ends equal to the backup, no row twice")
    func crashAfterEffects() async throws {
        let matrix = try await runCrashMatrix(prefix: "effect", switch: "INPLACE_TEST_CRASH_AFTER_EFFECT", mergeBeforeResume: true)
        print("crash matrix after side effects: \(matrix.kills) kill points (\(matrix.effects.sorted().joined(separator: ", "))), merged before each resume; \(matrix.replanned) resumes planned a table again; each ended equal to the backup")
        #expect(matrix.kills >= 30, "the matrix covered \(matrix.kills) kill points")
    }

    /// The same kills without merging before the resume: every step found as the kill left it
    /// (a part attached and not recorded found by exclusion; one recorded checked again).
    @Test("killed after every side effect, before the journal knows, nothing merged: each step decided from what it left")
    func crashAfterEffectsUnmerged() async throws {
        let matrix = try await runCrashMatrix(prefix: "effectu", switch: "INPLACE_TEST_CRASH_AFTER_EFFECT", mergeBeforeResume: false)
        print("crash matrix after side effects, unmerged: \(matrix.kills) kill points; \(matrix.replanned) resumes planned a table again")
        #expect(matrix.kills >= 30, "the matrix covered \(matrix.kills) kill points")
        #expect(matrix.replanned == 0, "nothing merged, so no table needs a new plan")
    }

    /// The scenario restored from S3 with the crash switch set to k = 1, 2, ... until a run
    /// ends by itself; after each kill (optionally merging every table), `inplace resume`, and
    /// the tables checked by contents and parts, for leftovers, and for steps done twice. `c`
    /// is recreated (its schema changed): the rename aside, the create and the final drop-table
    /// of its old copy are crash points too; `a` has a re-sequenced part.
    private func runCrashMatrix(prefix: String, switch variable: String, mergeBeforeResume: Bool) async throws
        -> (kills: Int, replanned: Int, effects: Set<String>)
    {
        let scenario = RestoreScenario(ch: ch, db: TestBed.uniqueName("it_\(prefix)"))
        try await scenario.original()
        let atBackup = try await scenario.contents()
        let name = TestBed.uniqueName(prefix)
        let env = ["S3_PATH": "it/\(TestBed.uniqueName(prefix))"]
        #expect(try await CLI.run(["create", "--config", config, "--tables", "\(scenario.db).*", name], environment: env).status == 0)
        #expect(try await CLI.run(["upload", "--config", config, name], environment: env).status == 0)
        let layout = LocalBackupLayout(disks: try await ClickHouseCatalog(client: ch).disks())
        try FileManager.default.removeItem(atPath: layout.folder(name))
        let backup = RemoteBackupSource(name: name, store: RemoteBackupStore(s3: try bed.s3(), path: env["S3_PATH"]!))

        var k = 1
        var kills = 0
        var replanned = 0
        var effects: Set<String> = []
        while true {
            try await scenario.changed(alterC: true)
            let folder = try TemporaryFolder()
            defer { folder.remove() }
            let journal = folder.path("journal.sqlite")
            var crashEnv = env
            crashEnv[variable] = String(k)
            let crashed = try await CLI.run(["restore", "--config", config, "--journal", journal, "--drop-if-schema-changed", name],
                                            environment: crashEnv)
            if crashed.status == 0 {
                #expect(try await scenario.contents() == atBackup)
                #expect(try await scenario.differences(from: backup) == [])
                #expect(try await scenario.asideTables() == [])
                break  // k is past the last crash point: the matrix is complete
            }
            // Anything but the test's SIGKILL is a failed restore: reported, and the matrix ends.
            guard crashed.status == 9 || crashed.status == 137 else {
                Issue.record("k=\(k): the restore failed (exit \(crashed.status)): \(crashed.stderr.suffix(2000))")
                break
            }
            kills += 1
            if let line = crashed.stderr.split(separator: "\n").first(where: { $0.contains("test crash after side effect") }) {
                effects.insert(String(line.split(separator: ":").dropFirst(2).first ?? "").split(separator: " ").prefix(2).joined(separator: " "))
            }
            if mergeBeforeResume { try await scenario.mergeEverything() }
            let resumed = try await CLI.run(["resume", "--config", config, "--journal", journal, "--json"], environment: env)
            #expect(resumed.status == 0, "k=\(k): \(resumed.stdout) \(resumed.stderr)")
            #expect(try await scenario.contents() == atBackup, "k=\(k)")
            // A table that had finished before the kill was merged by the test and is left as
            // it is (equal by rows, its parts merged): parts are compared only without merging.
            #expect(try await scenario.differences(from: backup, parts: !mergeBeforeResume) == [], "k=\(k)")
            #expect(try await leftovers(scenario, journal: journal) == [], "k=\(k)")
            #expect(try await scenario.asideTables() == [], "k=\(k): an old copy left")
            // No completed download was fetched again; every step ended done (or was replaced
            // when its table was planned again).
            let reader = try Journal(path: journal, readOnly: true)
            var superseded = 0
            for event in try await reader.events(1) {
                let steps = try await reader.transitions(event.id).map(\.to)
                if event.state == .superseded {
                    superseded += 1
                    continue
                }
                #expect(steps.last == .done, "k=\(k) \(event.kind.rawValue) \(event.part ?? ""): \(steps)")
                if event.kind == .downloadPart, let first = steps.firstIndex(of: .done) {
                    #expect(!steps[(first + 1)...].contains(.started), "k=\(k): download of \(event.part ?? "") repeated")
                }
            }
            if superseded > 0 { replanned += 1 }
            k += 1
        }
        _ = try? await ch.execute("DROP DATABASE \(q(scenario.db)) SYNC")
        return (kills, replanned, effects)
    }

    @Test("killed at random moments mid-download (large parts from S3), the restore resumes to the backup")
    func randomKillsMidDownload() async throws {
        let db = TestBed.uniqueName("it_kill")
        try await ch.execute("CREATE DATABASE \(q(db))")
        // No merges, also in the table each restore creates from the backup's CREATE: the restore
        // starts merges again when it ends, and a merge before live() is read would replace the
        // parts compared by hash (seen on a loaded machine).
        try await ch.execute("CREATE TABLE \(q(db)).big (id UInt64, s String) ENGINE = MergeTree ORDER BY id \(noMergeSettings)")
        try await ch.execute("SYSTEM STOP MERGES \(q(db)).big")
        for index in 0..<6 {
            // About 16 MB each, incompressible: downloads take a while.
            try await ch.execute("INSERT INTO \(q(db)).big SELECT number + \(index * 100_000), randomString(800) FROM numbers(20000)")
        }
        let name = TestBed.uniqueName("kill")
        let env = ["S3_PATH": "it/\(TestBed.uniqueName("kill"))"]
        #expect(try await CLI.run(["create", "--config", config, "--tables", "\(db).*", name], environment: env).status == 0)
        #expect(try await CLI.run(["upload", "--config", config, name], environment: env).status == 0)
        let layout = LocalBackupLayout(disks: try await ClickHouseCatalog(client: ch).disks())
        try FileManager.default.removeItem(atPath: layout.folder(name))
        let backup = RemoteBackupSource(name: name, store: RemoteBackupStore(s3: try bed.s3(), path: env["S3_PATH"]!))
        let wanted = try await backup.tableMetadata(database: db, table: "big").hash_of_all_files?.values.sorted() ?? []
        #expect(wanted.count == 6)

        func reset() async throws {
            try await ch.execute("DROP TABLE IF EXISTS \(q(db)).big SYNC")
        }
        func live() async throws -> [String] {
            try await ClickHouseCatalog(client: ch).parts(of: [(db, "big")]).map(\.hash).sorted()
        }
        // How long an uninterrupted restore takes, to aim the kills inside it.
        try await reset()
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let started = ContinuousClock.now
        #expect(try await CLI.run(["restore", "--config", config, "--journal", folder.path("full.sqlite"), name], environment: env).status == 0)
        let duration = ContinuousClock.now - started
        #expect(try await live() == wanted)

        var midDownload = 0
        var attempts = 0
        while midDownload < 10 && attempts < 40 {
            attempts += 1
            try await reset()
            let journal = folder.path("kill-\(attempts).sqlite")
            let delay = duration * Double.random(in: 0.15...0.85)
            let status = try CLI.runKilled(after: delay, ["restore", "--config", config, "--journal", journal, name],
                                           environment: env)
            guard status != 0 else { continue }  // finished before the kill
            // Killed while planning, before a run was journaled (possibly before the new journal
            // had its schema): nothing changed, nothing to resume.
            guard let runs = try? await Journal(path: journal, readOnly: true).runs(), !runs.isEmpty else { continue }
            // Killed after the run was journaled done, before the process exited: nothing to resume.
            if runs.allSatisfy({ $0.state == .done }) {
                #expect(try await live() == wanted, "killed after \(delay), once done")
                continue
            }
            let reader = try Journal(path: journal, readOnly: true)
            // Mid-download: a download's `started` is held while it fetches into its staging
            // folder (committed before the rename into detached/), so the kill shows as that
            // folder, or as a committed `started` when it landed between commit and `done`.
            let inFlight = try await reader.events(1).filter { $0.kind == .downloadPart && $0.state == .started }
            let staging = try await diskPath() + "backup/.inplace-staging"
            let prefix = RestoreRunner.stagingPrefix(journal: journal, run: 1)
            let fetching = ((try? FileManager.default.contentsOfDirectory(atPath: staging)) ?? []).contains { $0.hasPrefix(prefix) }
            if !inFlight.isEmpty || fetching { midDownload += 1 }
            let resumed = try await CLI.run(["resume", "--config", config, "--journal", journal], environment: env)
            #expect(resumed.status == 0, "\(resumed.stderr)")
            #expect(try await live() == wanted, "killed after \(delay)")
            let count = try await ch.execute("SELECT count() = uniqExact(id) AND count() = 120000 FROM \(q(db)).big")
            #expect(count.trimmingCharacters(in: .whitespacesAndNewlines) == "1")
            for event in try await reader.events(1) where event.kind == .downloadPart {
                let steps = try await reader.transitions(event.id).map(\.to)
                if let first = steps.firstIndex(of: .done) {
                    #expect(!steps[(first + 1)...].contains(.started), "download of \(event.part ?? "") repeated after done")
                }
            }
        }
        #expect(midDownload >= 10, "\(midDownload) of \(attempts) kills landed mid-download")
        _ = try? await ch.execute("DROP DATABASE \(q(db)) SYNC")
    }
}

extension CLI {
    /// Runs the binary and kills it with SIGKILL after `delay` (a crash at a random moment).
    static func runKilled(after delay: Duration, _ arguments: [String], environment: [String: String]) throws -> Int32 {
        let process = process(arguments, environment: environment)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        usleep(useconds_t(delay.components.seconds * 1_000_000 + delay.components.attoseconds / 1_000_000_000_000))
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return process.terminationStatus
    }
}
