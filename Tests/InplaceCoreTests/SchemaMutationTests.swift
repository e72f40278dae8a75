import Foundation
import Testing

@testable import InplaceCore

private func q(_ name: String) -> String { ClickHouseSQL.identifier(name) }

/// Tables whose storage definition changed since the backup, and tables with unfinished
/// mutations, on the test bed: `plan` refuses them, `restore` changes nothing, and the ways out
/// (`--drop-if-schema-changed`, `--kill-mutations`) work.
@Suite("Schema and mutation refusals on the test bed", .enabled(if: TestBed.shouldRun))
struct SchemaMutationTests {
    struct PlanJSON: Decodable {
        struct Table: Decodable {
            let table: String
            let recreate: Bool
            let keep: [PlanIntegrationTests.PlanJSON.Kept]
            let refused: String?
            let kill_mutations: [TablePlan.Mutation]
        }
        let complete: Bool
        let tables: [Table]
    }

    struct Bed {
        let ch: ClickHouseClient
        let db: String
        let name: String
        let config = TestBed.envFile.replacingOccurrences(of: "/env", with: "/config.yml")
        let folder: TemporaryFolder
        var journal: String { folder.path("journal.sqlite") }

        init(_ prefix: String) throws {
            ch = try TestBed.load().clickHouse()
            db = TestBed.uniqueName(prefix)
            name = TestBed.uniqueName(prefix + "_backup")
            folder = try TemporaryFolder()
        }

        func layout() async throws -> LocalBackupLayout {
            LocalBackupLayout(disks: try await ClickHouseCatalog(client: ch).disks())
        }

        /// Rows and `sum(cityHash64(*))` per partition: equal data reads equal.
        func fingerprint(_ table: String) async throws -> String {
            try await ch.execute("SELECT _partition_id, count(), sum(cityHash64(*)) FROM \(q(db)).\(q(table)) GROUP BY _partition_id ORDER BY 1")
        }

        func createQuery(_ table: String) async throws -> String {
            try await ch.execute("SELECT create_table_query FROM system.tables WHERE database = {db:String} AND name = {t:String}",
                                 parameters: ["db": db, "t": table]).trimmingCharacters(in: .newlines)
        }

        func plan(_ arguments: [String] = []) async throws -> (CLI.Result, PlanJSON?) {
            let result = try await CLI.run(["plan", "--config", config, "--json"] + arguments + [name])
            return (result, try? JSONDecoder().decode(PlanJSON.self, from: Data(result.stdout.utf8)))
        }

        func restore(_ arguments: [String] = []) async throws -> CLI.Result {
            try await CLI.run(["restore", "--config", config, "--journal", journal] + arguments + [name])
        }

        /// Runs `body`, then drops the database and the backup whatever happened.
        func run(_ body: () async throws -> Void) async throws {
            do {
                try await body()
            } catch {
                await cleanup()
                throw error
            }
            await cleanup()
        }

        func cleanup() async {
            if let layout = try? await layout() { try? FileManager.default.removeItem(atPath: layout.folder(name)) }
            _ = try? await ch.execute("DROP DATABASE IF EXISTS \(q(db)) SYNC")
            folder.remove()
        }
    }

    /// Each table as backed up, and as recreated afterwards with one key or engine parameter changed.
    static let changes: [(table: String, before: String, after: String, words: String)] = [
        ("order_by", "MergeTree PARTITION BY toYYYYMM(d) ORDER BY id", "MergeTree PARTITION BY toYYYYMM(d) ORDER BY (s, id)",
         "its sorting key (ORDER BY) and primary key (PRIMARY KEY) differ from the backup's"),
        ("partition_by", "MergeTree PARTITION BY toYYYYMM(d) ORDER BY id", "MergeTree PARTITION BY toYear(d) ORDER BY id",
         "its partition key (PARTITION BY) differs from the backup's (partition key (PARTITION BY): the backup has `toYYYYMM(d)`, the table has `toYear(d)`)"),
        ("engine", "ReplacingMergeTree(v) PARTITION BY toYYYYMM(d) ORDER BY id", "ReplacingMergeTree PARTITION BY toYYYYMM(d) ORDER BY id",
         "its engine differs from the backup's (engine: the backup has `ReplacingMergeTree(v)`, the table has `ReplacingMergeTree`)"),
    ]

    func make(_ bed: Bed, _ table: String, storage: String, extra: Bool = false) async throws {
        try await bed.ch.execute("CREATE TABLE \(q(bed.db)).\(q(table)) (d Date, id UInt64, s String, v UInt32) ENGINE = \(storage)")
        try await bed.ch.execute("SYSTEM STOP MERGES \(q(bed.db)).\(q(table))")
        for month in ["2024-01", "2024-02", "2025-03"] {
            try await bed.ch.execute("INSERT INTO \(q(bed.db)).\(q(table)) SELECT toDate('\(month)-01') + number % 20, number, toString(number % 7), 1 FROM numbers(50)")
        }
        // After the backup: a row more, so that a restore that went ahead would change the table.
        if extra { try await bed.ch.execute("INSERT INTO \(q(bed.db)).\(q(table)) VALUES ('2024-01-05', 999, 'extra', 2)") }
    }

    @Test("a table recreated with another ORDER BY, PARTITION BY or engine parameter is refused, changed by nothing, and recreated with --drop-if-schema-changed")
    func changedKeys() async throws {
        let bed = try Bed("it_keys")
        try await bed.run {
            try await bed.ch.execute("CREATE DATABASE \(q(bed.db))")
            var backedUp: [String: (fingerprint: String, query: String)] = [:]
            for change in Self.changes {
                try await make(bed, change.table, storage: change.before)
                backedUp[change.table] = (try await bed.fingerprint(change.table), try await bed.createQuery(change.table))
            }
            let created = try await CLI.run(["create", "--config", bed.config, "--tables", "\(bed.db).*", bed.name])
            try #require(created.status == 0, "\(created.stderr)")
            var changed: [String: String] = [:]
            for change in Self.changes {
                try await bed.ch.execute("DROP TABLE \(q(bed.db)).\(q(change.table)) SYNC")
                try await make(bed, change.table, storage: change.after, extra: true)
                changed[change.table] = try await bed.fingerprint(change.table)
            }

            let (planned, plan) = try await bed.plan()
            #expect(planned.status == 11, "\(planned.stderr)")
            let tables = try #require(plan?.tables, "no plan JSON in: \(planned.stdout) \(planned.stderr)")
            #expect(tables.count == Self.changes.count && plan?.complete == false)
            for change in Self.changes {
                let refused = try #require(tables.first { $0.table == change.table }?.refused, "\(change.table) not refused")
                #expect(refused.hasPrefix(change.words), "\(change.table): \(refused)")
                #expect(refused.contains("nothing was changed") && refused.contains("--drop-if-schema-changed"))
            }

            let refused = try await bed.restore()
            #expect(refused.status == 11, "\(refused.all)")
            #expect(refused.stderr.contains("nothing was changed"), "\(refused.stderr)")
            for change in Self.changes {
                #expect(try await bed.fingerprint(change.table) == changed[change.table]!, "\(change.table) changed")
            }

            let recreated = try await bed.restore(["--drop-if-schema-changed"])
            #expect(recreated.status == 0, "\(recreated.all)")
            for change in Self.changes {
                #expect(try await bed.fingerprint(change.table) == backedUp[change.table]!.fingerprint, "\(change.table)")
                let query = try await bed.createQuery(change.table)
                #expect(Planner.schemaDifference(backup: backedUp[change.table]!.query, live: query) == nil, "\(query)")
            }
            let (again, replanned) = try await bed.plan()
            #expect(again.status == 0, "\(again.all)")
            #expect(replanned?.tables.allSatisfy { $0.refused == nil && !$0.recreate && $0.keep.count == 3 } == true, "\(again.stdout)")
        }
    }

    @Test("a table recreated with the same DDL written another way is not refused, and its parts are kept")
    func equivalentDDL() async throws {
        let bed = try Bed("it_same_ddl")
        let columns = """
            (`odd name` String DEFAULT 'ORDER BY x', d Date, ver UInt32 CODEC(Delta, ZSTD(3)), n Nullable(String),
             lc LowCardinality(String), k UInt64 DEFAULT cityHash64(d, 'PARTITION BY ('))
            """
        let before = "ReplacingMergeTree(ver) PARTITION BY toYYYYMM(d) ORDER BY (k, d, `odd name`) SAMPLE BY k SETTINGS index_granularity = 4096"
        let after = """
            ReplacingMergeTree(`ver`) PARTITION BY (toYYYYMM(`d`)) PRIMARY KEY tuple(k, d, `odd name`)
            ORDER BY tuple(`k`, `d`, `odd name`) SAMPLE BY (`k`)
            SETTINGS index_granularity = 4096, merge_with_ttl_timeout = 3600 COMMENT 'PARTITION BY x ORDER BY y'
            """
        try await bed.run {
            try await bed.ch.execute("CREATE DATABASE \(q(bed.db))")
            func make(_ storage: String) async throws {
                try await bed.ch.execute("CREATE TABLE \(q(bed.db)).t \(columns) ENGINE = \(storage)")
                try await bed.ch.execute("SYSTEM STOP MERGES \(q(bed.db)).t")
                for month in ["2024-01", "2024-02"] {
                    try await bed.ch.execute("INSERT INTO \(q(bed.db)).t (`odd name`, d, ver, n, lc) SELECT toString(number), toDate('\(month)-01') + number % 20, 1, NULL, 'x' FROM numbers(30)")
                }
            }
            try await make(before)
            let created = try await CLI.run(["create", "--config", bed.config, "--tables", "\(bed.db).*", bed.name])
            try #require(created.status == 0, "\(created.stderr)")
            try await bed.ch.execute("DROP TABLE \(q(bed.db)).t SYNC")
            try await make(after)
            #expect(try await bed.createQuery("t").contains("COMMENT"), "the table was recreated with the other text")
            let (planned, plan) = try await bed.plan()
            #expect(planned.status == 0, "\(planned.all)")
            let table = try #require(plan?.tables.first, "\(planned.stdout)")
            #expect(table.refused == nil && !table.recreate && table.keep.count == 2, "\(planned.stdout)")
        }
    }

    /// One table with a backup and, after it, an unfinished mutation: merges stopped, so it
    /// waits, and `mutations_sync = 0`, so no client waits for it (a client waiting on a
    /// mutation behind stopped merges can hang the test bed's engine). Returns its id.
    func mutated(_ bed: Bed) async throws -> String {
        try await bed.ch.execute("CREATE DATABASE \(q(bed.db))")
        try await make(bed, "t", storage: "MergeTree PARTITION BY toYYYYMM(d) ORDER BY id")
        let created = try await CLI.run(["create", "--config", bed.config, "--tables", "\(bed.db).*", bed.name])
        try #require(created.status == 0, "\(created.stderr)")
        try await bed.ch.execute("ALTER TABLE \(q(bed.db)).t UPDATE s = 'mutated' WHERE id < 10 SETTINGS mutations_sync = 0")
        return try #require(try await unfinished(bed).first, "the mutation is not unfinished")
    }

    func unfinished(_ bed: Bed) async throws -> [String] {
        try await ClickHouseCatalog(client: bed.ch).unfinishedMutations(of: [(bed.db, "t")]).map(\.id)
    }

    /// Kills what is left and lets merges run, so that nothing waits on the table when it is dropped.
    func release(_ bed: Bed) async {
        _ = try? await bed.ch.execute("KILL MUTATION WHERE database = {db:String} SYNC", parameters: ["db": bed.db])
        _ = try? await bed.ch.execute("SYSTEM START MERGES \(q(bed.db)).t")
    }

    @Test("a table with an unfinished mutation is refused with the mutation's id; --kill-mutations plans to kill it, and restore kills it")
    func unfinishedMutationRefuses() async throws {
        let bed = try Bed("it_mutation")
        try await bed.run {
            do {
                let id = try await mutated(bed)
                let before = try await bed.fingerprint("t")
                let (planned, plan) = try await bed.plan()
                #expect(planned.status == 11, "\(planned.all)")
                let refused = try #require(plan?.tables.first?.refused, "\(planned.stdout)")
                #expect(refused.contains("1 unfinished mutation(s) (\(id): (UPDATE s = 'mutated' WHERE id < 10))"), "\(refused)")
                #expect(refused.contains("KILL MUTATION WHERE database = \(ClickHouseSQL.string(bed.db)) AND table = 't' AND mutation_id = '\(id)'"), "\(refused)")
                #expect(refused.contains("--kill-mutations"))

                let restored = try await bed.restore()
                #expect(restored.status == 11 && restored.stderr.contains(id), "\(restored.all)")
                #expect(try await bed.fingerprint("t") == before)
                #expect(try await unfinished(bed) == [id])

                let (killing, killPlan) = try await bed.plan(["--kill-mutations"])
                #expect(killing.status == 0, "\(killing.all)")
                #expect(killPlan?.tables.first?.kill_mutations.map(\.id) == [id], "\(killing.stdout)")
                #expect(killPlan?.tables.first?.refused == nil && killPlan?.tables.first?.keep.count == 3)

                // The restore with the flag kills it before touching the table, and drops a part
                // inserted after the backup.
                try await bed.ch.execute("INSERT INTO \(q(bed.db)).t VALUES ('2024-01-05', 999, 'extra', 2)")
                let killed = try await bed.restore(["--kill-mutations"])
                #expect(killed.status == 0, "\(killed.all)")
                #expect(try await unfinished(bed).isEmpty)
                #expect(try await bed.fingerprint("t") == before)
            } catch {
                await release(bed)
                throw error
            }
            await release(bed)
        }
    }

    @Test("the kill-mutation step kills the mutation its event names, and its resume check sees it gone")
    func killMutationStep() async throws {
        let bed = try Bed("it_kill")
        try await bed.run {
            do {
                let id = try await mutated(bed)
                let journal = try Journal(path: bed.folder.path("kill.sqlite"))
                let runner = RestoreRunner(client: bed.ch, source: LocalBackupSource(name: bed.name, layout: try await bed.layout()),
                                           journal: journal, disks: try await ClickHouseCatalog(client: bed.ch).disks())
                let event = JournalEvent(id: 1, runID: 1, kind: .killMutation, database: bed.db, table: "t", bytes: 0,
                                         sequence: 1, state: .pending, attempts: 0, detail: id)
                let step = TableRestore(runner: runner, run: 1, planEvent: event, options: RestoreOptions(killMutations: true),
                                        transfers: AsyncSemaphore(1), progress: RestoreProgress(logger: runner.logger))
                #expect(try await step.mutationGone(event) == false)
                let result = try await step.killMutation(event)
                #expect(result.detail == "killed mutation \(id)", "\(result.detail ?? "")")
                #expect(try await step.mutationGone(event))
                #expect(try await unfinished(bed).isEmpty)
                // Run again (a retried step): nothing left to kill, and that is done too.
                #expect(try await step.killMutation(event).detail == "killed mutation \(id)")
                // A step naming no mutation is an error, never "gone".
                var unnamed = event
                unnamed.detail = ""
                await #expect(throws: RestoreError.self) { try await step.mutationGone(unnamed) }
                await #expect(throws: RestoreError.self) { try await step.killMutation(unnamed) }
            } catch {
                await release(bed)
                throw error
            }
            await release(bed)
        }
    }

    @Test("a backup whose table JSON lists unfinished mutations (clickhouse-backup's `mutations`) is refused, naming them")
    func backupMutationsRefuse() async throws {
        let bed = try Bed("it_backup_mutation")
        try await bed.run {
            try await bed.ch.execute("CREATE DATABASE \(q(bed.db))")
            try await make(bed, "t", storage: "MergeTree PARTITION BY toYYYYMM(d) ORDER BY id")
            let created = try await CLI.run(["create", "--config", bed.config, "--tables", "\(bed.db).*", bed.name])
            try #require(created.status == 0, "\(created.stderr)")
            // As clickhouse-backup writes them (pkg/metadata: MutationMetadata, `mutations`).
            let file = try await bed.layout().tableMetadataFile(bed.name, database: bed.db, table: "t")
            var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file))) as? [String: Any])
            json["mutations"] = [["mutation_id": "mutation_42.txt", "command": "UPDATE s = 'x' WHERE 1"]]
            try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: file))
            try await bed.ch.execute("INSERT INTO \(q(bed.db)).t VALUES ('2024-01-05', 999, 'extra', 2)")
            let before = try await bed.fingerprint("t")

            let (planned, plan) = try await bed.plan(["--kill-mutations"])
            #expect(planned.status == 11, "\(planned.all)")
            let refused = try #require(plan?.tables.first?.refused, "\(planned.stdout)")
            #expect(refused.contains("mutation_42.txt: UPDATE s = 'x' WHERE 1") && refused.contains("not built"), "\(refused)")
            let restored = try await bed.restore()
            #expect(restored.status == 11, "\(restored.all)")
            #expect(try await bed.fingerprint("t") == before)
        }
    }
}
