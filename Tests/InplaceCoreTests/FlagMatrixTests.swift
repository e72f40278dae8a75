import Foundation
import Testing

@testable import InplaceCore

private func q(_ name: String) -> String { ClickHouseSQL.identifier(name) }

/// One combination of the flags that choose what a restore does.
struct RestoreFlagSet: CustomStringConvertible, Sendable {
    var data = false, schema = false, full = false, dropIfSchemaChanged = false, dropFirst = false

    var arguments: [String] {
        [(data, "--data"), (schema, "--schema"), (full, "--full"), (dropIfSchemaChanged, "--drop-if-schema-changed"),
         (dropFirst, "--drop-first")].filter(\.0).map(\.1)
    }
    var description: String { arguments.isEmpty ? "(no flag)" : arguments.joined(separator: " ") }

    /// All 32 combinations.
    static let all: [RestoreFlagSet] = (0..<32).map { bits in
        RestoreFlagSet(data: bits & 1 != 0, schema: bits & 2 != 0, full: bits & 4 != 0, dropIfSchemaChanged: bits & 8 != 0,
                       dropFirst: bits & 16 != 0)
    }

    /// The messages of the refused pairs this combination holds (written here, not taken from
    /// the tool, so that the test checks the rules rather than repeating them).
    var refusals: [String] {
        var found: [String] = []
        if data && schema { found.append("--data and --schema exclude each other") }
        if schema && full { found.append("--schema leaves existing tables untouched, --full replaces their data") }
        if schema && dropIfSchemaChanged { found.append("a recreated table would be left empty") }
        if schema && dropFirst { found.append("--drop-first has no effect with --schema: nothing is dropped") }
        if data && dropIfSchemaChanged { found.append("recreating a table means creating it, and --data creates none") }
        if full && dropIfSchemaChanged { found.append("--full already recreates every table") }
        return found
    }
}

@Suite("Every combination of --data, --schema, --full, --drop-if-schema-changed, --drop-first")
struct FlagRefusalTests {
    @Test("the refused combinations exit 64 from plan and restore, saying why; exactly 11 are accepted")
    func refusedCombinations() async throws {
        let refused = RestoreFlagSet.all.filter { !$0.refusals.isEmpty }
        #expect(refused.count == 21)
        #expect(RestoreFlagSet.all.count - refused.count == 11)
        for flags in refused {
            for command in ["plan", "restore"] {
                let result = try await CLI.run([command] + flags.arguments + ["some-backup"])
                #expect(result.status == 64, "\(command) \(flags): \(result.all)")
                #expect(flags.refusals.contains { result.stderr.contains($0) }, "\(command) \(flags): \(result.stderr)")
            }
        }
    }
}

/// A database that drifted after its backup: `plain` lost a part and gained one, `repl` (a
/// ReplacingMergeTree: the order of its parts decides which row FINAL returns) lost its oldest
/// part, `gone` was dropped, `changed` gained a part and, for --drop-if-schema-changed, a column.
/// Inserts are deterministic, so the same drifted state is rebuilt for every combination.
struct DriftedDatabase {
    let ch: ClickHouseClient
    let db: String
    static let tables = ["plain", "repl", "gone", "changed"]
    static let replFinal = "k, v FROM {table} ORDER BY k"

    func table(_ name: String) -> String { "\(q(db)).\(q(name))" }

    func original() async throws {
        _ = try? await ch.execute("DROP DATABASE IF EXISTS \(q(db)) SYNC")
        try await ch.execute("CREATE DATABASE \(q(db))")
        for name in ["plain", "gone", "changed"] {
            try await ch.execute("""
                CREATE TABLE \(table(name)) (d Date, id UInt64, s String) ENGINE = MergeTree
                PARTITION BY toYYYYMM(d) ORDER BY id
                """)
        }
        try await ch.execute("CREATE TABLE \(table("repl")) (k UInt64, v String) ENGINE = ReplacingMergeTree ORDER BY k \(noMergeSettings)")
        for name in Self.tables { try await ch.execute("SYSTEM STOP MERGES \(table(name))") }
        for index in 0..<4 { try await insert("plain", index) }
        for index in 0..<2 {
            try await insert("gone", index)
            try await insert("changed", index)
        }
        for value in ["old", "mid", "new"] {
            try await ch.execute("INSERT INTO \(table("repl")) SELECT number, '\(value)' FROM numbers(50)")
        }
    }

    func insert(_ name: String, _ index: Int) async throws {
        try await ch.execute("""
            INSERT INTO \(table(name)) SELECT toDate('2024-0\(1 + index % 2)-01') + number % 28, number + \(index * 1000),
            toString(number * \(index + 3)) FROM numbers(\(10 + index))
            """)
    }

    func drifted(alter: Bool) async throws {
        try await original()
        let catalog = ClickHouseCatalog(client: ch)
        for name in ["plain", "repl"] {
            let oldest = try await catalog.parts(of: [(db, name)]).min { PartName($0.name)!.minBlock < PartName($1.name)!.minBlock }!
            try await ch.execute("ALTER TABLE \(table(name)) DROP PART \(ClickHouseSQL.string(oldest.name))")
        }
        try await insert("plain", 7)
        try await ch.execute("DROP TABLE \(table("gone")) SYNC")
        try await insert("changed", 8)
        if alter { try await ch.execute("ALTER TABLE \(table("changed")) ADD COLUMN extra UInt8 DEFAULT 1") }
    }

    /// Every table's contents (nil: missing).
    func contents() async throws -> [String: TableContents?] {
        var all: [String: TableContents?] = [:]
        for name in Self.tables {
            all[name] = try await TableContents.of(ch, db, name, final: name == "repl" ? Self.replFinal : nil)
        }
        return all
    }
}

@Suite("Each accepted flag combination leaves every table equal to the backup, on the test bed",
       .enabled(if: TestBed.shouldRun), .serialized)
struct FlagMatrixTests {
    let ch: ClickHouseClient
    let config: String

    init() throws {
        ch = try TestBed.load().clickHouse()
        config = TestBed.envFile.replacingOccurrences(of: "/env", with: "/config.yml")
    }

    @Test("one backup, a drifted database rebuilt for each of the 11 accepted combinations, plan and restore")
    func acceptedCombinations() async throws {
        let database = DriftedDatabase(ch: ch, db: TestBed.uniqueName("it_flags"))
        try await database.original()
        let backup = try await database.contents()
        #expect(backup.values.allSatisfy { $0 != nil })
        let name = TestBed.uniqueName("flags")
        #expect(try await CLI.run(["create", "--config", config, "--tables", "\(database.db).*", name]).status == 0)
        let folder = try TemporaryFolder()
        defer { folder.remove() }

        let accepted = RestoreFlagSet.all.filter { $0.refusals.isEmpty }
        #expect(accepted.count == 11)
        for (index, flags) in accepted.enumerated() {
            try await database.drifted(alter: flags.dropIfSchemaChanged)
            let before = try await database.contents()

            let plan = try await CLI.run(["plan", "--config", config, "--json"] + flags.arguments + [name])
            #expect(plan.status == 0, "plan \(flags): \(plan.all)")
            try checkPlan(plan.stdout, flags: flags)

            let journal = folder.path("journal-\(index).sqlite")
            let restored = try await CLI.run(["restore", "--config", config, "--journal", journal, "--json"]
                                             + flags.arguments + [name])
            #expect(restored.status == 0, "restore \(flags): \(restored.stdout) \(restored.stderr)")
            let after = try await database.contents()
            for table in DriftedDatabase.tables {
                let wanted: TableContents?
                if flags.schema {
                    // Existing tables untouched; the missing one created, empty.
                    wanted = table == "gone" ? TableContents(partitions: "", final: nil) : before[table]!
                } else if flags.data && table == "gone" {
                    wanted = nil  // not created
                } else {
                    wanted = backup[table]!
                }
                let got = after[table]!
                #expect(got == wanted, "\(flags): \(table) is \(got.map(\.description) ?? "missing"), wanted \(wanted.map(\.description) ?? "missing")")
            }
        }
        let layout = LocalBackupLayout(disks: try await ClickHouseCatalog(client: ch).disks())
        try? FileManager.default.removeItem(atPath: layout.folder(name))
        _ = try? await ch.execute("DROP DATABASE \(q(database.db)) SYNC")
    }

    /// `plan --json` with the same flags says what the restore will do: --data creates no
    /// table, --schema downloads and drops nothing.
    private func checkPlan(_ json: String, flags: RestoreFlagSet) throws {
        guard let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
              let tables = object["tables"] as? [[String: Any]], let totals = object["totals"] as? [String: Any]
        else {
            Issue.record("plan \(flags): not a plan: \(json.prefix(500))")
            return
        }
        let created = tables.filter { $0["create"] as? Bool == true }.compactMap { $0["table"] as? String }
        #expect(created == (flags.data ? [] : ["gone"]), "plan \(flags)")
        if flags.schema {
            #expect(totals["download"] as? Int == 0 && totals["drop"] as? Int == 0, "plan \(flags): \(totals)")
        } else {
            #expect((totals["download"] as? Int ?? 0) > 0, "plan \(flags): \(totals)")
        }
    }
}
