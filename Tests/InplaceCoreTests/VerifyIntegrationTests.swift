import Foundation
import Testing

@testable import InplaceCore

private func q(_ name: String) -> String { ClickHouseSQL.identifier(name) }

/// `inplace verify` against the test bed: a backup made by `inplace create`, changes made behind
/// the tool's back, and `inplace restore` making the tables equal again.
@Suite("inplace verify on the test bed", .enabled(if: TestBed.shouldRun), .serialized)
struct VerifyIntegrationTests {
    struct Report: Decodable {
        struct Parts: Decodable, Equatable { let backup: Int; let live: Int }
        struct Table: Decodable {
            let database: String
            let table: String
            let status: String
            let equal: Bool?
            let reason: String?
            let identity: String?
            let parts: Parts?
            let difference_count: Int
            let differences: [TableDifference]
        }
        struct Totals: Decodable, Equatable { let tables: Int; let equal: Int; let different: Int; let not_compared: Int }
        let backup: String
        let source: String
        let equal: Bool
        let tables: [Table]
        let totals: Totals
    }

    let bed: TestBed
    let ch: ClickHouseClient
    let config: String

    init() throws {
        bed = try TestBed.load()
        ch = try bed.clickHouse()
        config = TestBed.envFile.replacingOccurrences(of: "/env", with: "/config.yml")
    }

    /// A database with table `t`: parts of distinct content, two in 202401 and one in 202402.
    private func makeDatabase(_ prefix: String) async throws -> String {
        let db = TestBed.uniqueName(prefix)
        try await ch.execute("CREATE DATABASE \(q(db))")
        // Merges would change the parts under the test: the restore starts them again when it ends,
        // so the table also refuses to merge anything bigger than a byte.
        try await ch.execute("""
            CREATE TABLE \(q(db)).t (d Date, id UInt64) ENGINE = MergeTree PARTITION BY toYYYYMM(d) ORDER BY id
            SETTINGS max_bytes_to_merge_at_max_space_in_pool = 1
            """)
        try await ch.execute("SYSTEM STOP MERGES \(q(db)).t")
        for (index, month) in ["2024-01", "2024-01", "2024-02"].enumerated() {
            try await ch.execute("INSERT INTO \(q(db)).t SELECT toDate('\(month)-01'), number + \(index * 100) FROM numbers(\(5 + index))")
        }
        return db
    }

    private func parts(_ db: String) async throws -> [ClickHouseCatalog.Part] {
        try await ClickHouseCatalog(client: ch).parts(of: [(db, "t")])
    }

    /// `inplace verify --json`: the exit status and the report (nil when stdout is not one).
    private func verify(_ name: String, _ extra: [String] = [], environment: [String: String] = [:]) async throws
        -> (status: Int32, report: Report?, stderr: String)
    {
        let result = try await CLI.run(["verify", "--config", config, "--json"] + extra + [name], environment: environment)
        return (result.status, try? JSONDecoder().decode(Report.self, from: Data(result.stdout.utf8)), result.stderr)
    }

    private func removeLocalBackup(_ name: String) async throws {
        let disks = try await ClickHouseCatalog(client: ch).disks()
        try? FileManager.default.removeItem(atPath: (disks.first { $0.name == "default" }?.path ?? "/nonexistent/") + "backup/" + name)
    }

    private func cleanUp(_ db: String, backup: String) async throws {
        try await removeLocalBackup(backup)
        _ = try? await ch.execute("DROP DATABASE \(q(db)) SYNC")
    }

    @Test("equal after create (exit 0); a dropped part and an inserted row each exit 15 naming the part; a restore makes it equal again")
    func dropInsertRestore() async throws {
        let db = try await makeDatabase("it_verify")
        let name = TestBed.uniqueName("vfy")
        #expect(try await CLI.run(["create", "--config", config, "--tables", "\(db).*", name]).status == 0)
        let original = try await parts(db)
        // create records each part's rows.
        let layout = LocalBackupLayout(disks: try await ClickHouseCatalog(client: ch).disks())
        let metadata = try await LocalBackupSource(name: name, layout: layout).tableMetadata(database: db, table: "t")
        #expect(metadata.part_rows == Dictionary(uniqueKeysWithValues: original.map { ($0.name, $0.rows) }))

        let equal = try await verify(name)
        #expect(equal.status == 0, "\(equal.stderr)")
        let table = try #require(equal.report?.tables.first)
        #expect(equal.report?.equal == true && equal.report?.backup == name && equal.report?.source == "local")
        #expect(table.status == "equal" && table.equal == true && table.difference_count == 0)
        #expect(table.parts == .init(backup: 3, live: 3) && table.identity == "hash_of_all_files")

        // The last part of 202401 dropped behind the tool's back.
        let dropped = original[1].name
        try await ch.execute("ALTER TABLE \(q(db)).t DROP PART \(ClickHouseSQL.string(dropped))")
        let missing = try await verify(name)
        #expect(missing.status == 15, "\(missing.stderr)")
        #expect(missing.report?.equal == false)
        let afterDrop = try #require(missing.report?.tables.first)
        #expect(afterDrop.differences.map(\.kind) == [.missing])
        #expect(afterDrop.differences.map(\.backupPart) == [dropped])
        #expect(afterDrop.differences.first?.identity == original[1].hash)

        // A row inserted: a new part, reported as extra beside the missing one.
        try await ch.execute("INSERT INTO \(q(db)).t VALUES ('2024-02-10', 999)")
        let inserted = try #require(try await parts(db).map(\.name).first { !original.map(\.name).contains($0) })
        let text = try await CLI.run(["verify", "--config", config, name])
        #expect(text.status == 15)
        #expect(text.stdout.contains("\(db).t: DIFFERS (2)") && text.stdout.contains(dropped) && text.stdout.contains(inserted),
                "\(text.stdout)")
        let both = try #require(try await verify(name).report?.tables.first)
        #expect(both.differences.map(\.kind) == [.missing, .extra])
        #expect(both.differences.map { $0.backupPart ?? $0.livePart } == [dropped, inserted])

        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let restored = try await CLI.run(["restore", "--config", config, "--journal", folder.path("j.sqlite"), name])
        #expect(restored.status == 0, "\(restored.stderr)")
        let again = try await verify(name)
        #expect(again.status == 0, "the dropped part came back last in its partition, as in the backup: \(again.report?.tables.first?.differences.map(\.description) ?? [])")
        try await cleanUp(db, backup: name)
    }

    @Test("from S3: verify --from remote reads the uploaded backup; equal exits 0, a dropped part exits 15")
    func remote() async throws {
        let db = try await makeDatabase("it_verify_s3")
        let name = TestBed.uniqueName("vfys3")
        let env = ["S3_PATH": "it/\(TestBed.uniqueName("vfy"))"]
        #expect(try await CLI.run(["create", "--config", config, "--tables", "\(db).*", name], environment: env).status == 0)
        #expect(try await CLI.run(["upload", "--config", config, name], environment: env).status == 0)
        try await removeLocalBackup(name)  // only the remote copy is left
        let equal = try await verify(name, ["--from", "remote"], environment: env)
        #expect(equal.status == 0, "\(equal.stderr)")
        #expect(equal.report?.source == "remote" && equal.report?.tables.first?.status == "equal")
        let part = try await parts(db)[2].name
        try await ch.execute("ALTER TABLE \(q(db)).t DROP PART \(ClickHouseSQL.string(part))")
        let missing = try await verify(name, ["--from", "remote"], environment: env)
        #expect(missing.status == 15)
        #expect(missing.report?.tables.first?.differences.map(\.backupPart) == [part])
        try await cleanUp(db, backup: name)
    }

    @Test("a part detached and attached again holds the same content in another block order: exit 15, kind order")
    func blockOrder() async throws {
        let db = try await makeDatabase("it_verify_order")
        let name = TestBed.uniqueName("vfyord")
        #expect(try await CLI.run(["create", "--config", config, "--tables", "\(db).*", name]).status == 0)
        let first = try await parts(db)[0]
        try await ch.execute("ALTER TABLE \(q(db)).t DETACH PART \(ClickHouseSQL.string(first.name))")
        try await ch.execute("ALTER TABLE \(q(db)).t ATTACH PART \(ClickHouseSQL.string(first.name))")
        let result = try await verify(name)
        #expect(result.status == 15)
        let differences = result.report?.tables.first?.differences ?? []
        #expect(differences.map(\.kind) == [.order])
        #expect(differences.first?.partition == first.partitionID && differences.first?.backupPart == first.name)
        try await cleanUp(db, backup: name)
    }

    @Test("a table the database lacks is a difference; views and schema-only tables are not compared; --tables and skip_tables select")
    func tableSelection() async throws {
        let db = try await makeDatabase("it_verify_sel")
        try await ch.execute("CREATE TABLE \(q(db)).u (id UInt64) ENGINE = MergeTree ORDER BY id")
        try await ch.execute("INSERT INTO \(q(db)).u SELECT number FROM numbers(3)")
        try await ch.execute("CREATE VIEW \(q(db)).v AS SELECT id FROM \(q(db)).t")
        let name = TestBed.uniqueName("vfysel")
        let schema = TestBed.uniqueName("vfyschema")
        #expect(try await CLI.run(["create", "--config", config, "--tables", "\(db).*", name]).status == 0)
        #expect(try await CLI.run(["create", "--config", config, "--schema", "--tables", "\(db).t", schema]).status == 0)
        try await ch.execute("DROP TABLE \(q(db)).u SYNC")
        try await ch.execute("CREATE TABLE \(q(db)).only_live (id UInt64) ENGINE = MergeTree ORDER BY id")

        let all = try await verify(name)
        #expect(all.status == 15, "\(all.stderr)")
        let report = try #require(all.report)
        #expect(report.tables.map(\.table) == ["t", "u", "v"], "tables only in the database are left out")
        #expect(report.tables.map(\.status) == ["equal", "different", "not_compared"])
        #expect(report.tables[1].differences.map(\.kind) == [.missingTable])
        #expect(report.tables[1].parts == .init(backup: 1, live: 0))
        #expect(report.tables[2].equal == nil && report.tables[2].reason?.contains("View") == true)
        #expect(report.totals == .init(tables: 3, equal: 1, different: 1, not_compared: 1))

        #expect(try await verify(name, ["--tables", "\(db).t,\(db).v"]).status == 0)
        let skipped = try await verify(name, environment: ["CLICKHOUSE_SKIP_TABLES": "system.*,\(db).u"])
        #expect(skipped.status == 0, "\(skipped.stderr)")
        #expect(skipped.report?.tables.map(\.table) == ["t", "v"])
        #expect(try await verify(name, ["--tables", "nope.*"]).status == 9)

        let schemaOnly = try await verify(schema)
        #expect(schemaOnly.status == 0, "\(schemaOnly.stderr)")
        #expect(schemaOnly.report?.tables.first?.status == "not_compared")
        #expect(schemaOnly.report?.tables.first?.reason?.contains("schema only") == true)
        try await removeLocalBackup(schema)
        try await cleanUp(db, backup: name)
    }

    @Test("TableVerifier sends one query per table (counted by a proxy), and compares by CRC-64 of checksums.txt when the backup has no hashes")
    func queryBudgetAndChecksums() async throws {
        let db = try await makeDatabase("it_verify_budget")
        let name = TestBed.uniqueName("vfybud")
        #expect(try await CLI.run(["create", "--config", config, "--tables", "\(db).*", name]).status == 0)
        let layout = LocalBackupLayout(disks: try await ClickHouseCatalog(client: ch).disks())
        var metadata = try await LocalBackupSource(name: name, layout: layout).tableMetadata(database: db, table: "t")

        // The proxy only forwards and counts: every query the verifier sends passes through it.
        let proxy = try FaultProxy(upstream: "http://\(try bed.value("CLICKHOUSE_HOST")):\(try bed.value("CLICKHOUSE_HTTP_PORT"))")
        defer { proxy.stop() }
        var endpoint = try bed.clickHouseEndpoint()
        endpoint.port = proxy.port
        let verifier = TableVerifier(client: ClickHouseClient(endpoint: endpoint))
        try await proxy.reset()
        let equal = try await verifier.compare(database: db, table: "t", backup: metadata)
        #expect(equal.isEqual && equal.liveParts == 3)
        #expect(try await proxy.stats().requests == 1)

        // As clickhouse-backup before 2.7 wrote it: checksums only.
        metadata.hash_of_all_files = nil
        metadata.part_rows = nil
        let byCRC = try await verifier.compare(database: db, table: "t", backup: metadata)
        #expect(byCRC.isEqual && byCRC.identityKind == "checksums", "\(byCRC.differences.map(\.description))")
        try await ch.execute("INSERT INTO \(q(db)).t VALUES ('2024-03-01', 5)")
        try await proxy.reset()
        let differences = try await verifier.differences(database: db, table: "t", backup: metadata)
        #expect(try await proxy.stats().requests == 1)
        #expect(differences.map(\.kind) == [.extra])
        #expect(differences.first?.identity?.hasPrefix("crc64:") == true)
        #expect(differences.first?.partition == "202403")
        try await cleanUp(db, backup: name)
    }
}
