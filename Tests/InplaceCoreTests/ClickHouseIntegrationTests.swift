import Foundation
import InplaceCore
import Testing

private func q(_ name: String) -> String { ClickHouseSQL.identifier(name) }

private struct PartRow: Decodable, Sendable {
    let name: String
    let partition_id: String
    let rows: UInt64
    let bytes_on_disk: UInt64
    let hash_of_all_files: String
    let disk_name: String
    let path: String
}

@Suite("ClickHouse over its HTTP interface (test bed)", .enabled(if: TestBed.shouldRun))
struct ClickHouseIntegrationTests {
    @Test("a MergeTree table's parts and data paths are read from system tables and exist on disk")
    func readsPartsAndDataPaths() async throws {
        let bed = try TestBed.load()
        let ch = try bed.clickHouse()
        let db = TestBed.uniqueName("it_parts")
        try await ch.execute("CREATE DATABASE \(q(db))")
        try await ch.execute("""
            CREATE TABLE \(q(db)).t (d Date, id UInt64, s String)
            ENGINE = MergeTree PARTITION BY toYYYYMM(d) ORDER BY id
            """)
        try await ch.execute("SYSTEM STOP MERGES \(q(db)).t")
        try await ch.execute("INSERT INTO \(q(db)).t VALUES ('2024-01-05', 1, 'a'), ('2024-01-06', 2, 'b')")
        try await ch.execute("INSERT INTO \(q(db)).t VALUES ('2024-02-01', 3, 'c')")
        try await ch.execute("INSERT INTO \(q(db)).t SELECT '2024-02-02', number + 10, toString(number) FROM numbers(1000)")

        let parts: [PartRow] = try await ch.rows(
            """
            SELECT name, partition_id, rows, bytes_on_disk, lower(hash_of_all_files) AS hash_of_all_files,
                   disk_name, path
            FROM system.parts WHERE database = {db:String} AND table = 't' AND active ORDER BY name
            """, parameters: ["db": db])
        #expect(parts.count == 3)
        #expect(Set(parts.map(\.partition_id)) == ["202401", "202402"])
        #expect(parts.map(\.rows).reduce(0, +) == 1003)
        for part in parts {
            #expect(part.hash_of_all_files.count == 32, "hash of \(part.name)")
            #expect(part.disk_name == "default")
            #expect(part.bytes_on_disk > 0)
            #expect(FileManager.default.fileExists(atPath: part.path + "/checksums.txt"), "\(part.path)")
        }

        let tables = try await ch.tsvRows(
            "SELECT name, data_paths, uuid FROM system.tables WHERE database = {db:String}",
            as: TableRow.self, parameters: ["db": db])
        #expect(tables.count == 1)
        let dataPath = try #require(tables.first?.dataPaths.first)
        var isFolder: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: dataPath, isDirectory: &isFolder) && isFolder.boolValue)
        for part in parts {
            #expect(FileManager.default.fileExists(atPath: dataPath + part.name), "\(part.name) under \(dataPath)")
        }
        try await ch.execute("DROP DATABASE \(q(db)) SYNC")
    }

    private struct TableRow: TSVDecodable, Sendable {
        let name: String
        let dataPaths: [String]
        let uuid: String
        init(row: TSVRow) throws {
            name = try row.string(0)
            dataPaths = try row.stringArray(1)
            uuid = try row.string(2)
        }
    }

    @Test("three identical inserts make three parts with one hash (content identity is a multiset)")
    func identicalInsertsShareAHash() async throws {
        let ch = try TestBed.load().clickHouse()
        let db = TestBed.uniqueName("it_hash")
        try await ch.execute("CREATE DATABASE \(q(db))")
        try await ch.execute("CREATE TABLE \(q(db)).t (id UInt64) ENGINE = MergeTree ORDER BY id")
        try await ch.execute("SYSTEM STOP MERGES \(q(db)).t")
        for _ in 0..<3 { try await ch.execute("INSERT INTO \(q(db)).t VALUES (1), (2), (3)") }
        let hashes = try await ch.execute(
            "SELECT lower(hash_of_all_files) FROM system.parts WHERE database = {db:String} AND active",
            parameters: ["db": db]
        ).split(separator: "\n")
        #expect(hashes.count == 3)
        #expect(Set(hashes).count == 1)
        try await ch.execute("DROP DATABASE \(q(db)) SYNC")
    }

    @Test("a query on a missing table is error 60 UNKNOWN_TABLE, with the query, not retryable")
    func unknownTable() async throws {
        let ch = try TestBed.load().clickHouse()
        let sql = "SELECT * FROM no_such_db_\(UInt32.random(in: 0...UInt32.max)).t"
        do {
            try await ch.execute(sql)
            Issue.record("a query on a missing table succeeded")
        } catch {
            #expect(error.code == 81 || error.code == 60, "\(error)")  // UNKNOWN_DATABASE or UNKNOWN_TABLE
            if case .server(_, let name) = error.kind { #expect(name == "UNKNOWN_DATABASE" || name == "UNKNOWN_TABLE") }
            #expect(error.query == sql)
            #expect(!error.isRetryable)
        }
        let db = TestBed.uniqueName("it_err")
        try await ch.execute("CREATE DATABASE \(q(db))")
        do {
            try await ch.execute("SELECT * FROM \(q(db)).missing")
            Issue.record("a query on a missing table succeeded")
        } catch {
            #expect(error.kind == .server(code: 60, name: "UNKNOWN_TABLE"), "\(error)")
            #expect(error.httpStatus == 404)
            #expect(error.description.contains("ClickHouse error 60 (UNKNOWN_TABLE)"))
        }
        try await ch.execute("DROP DATABASE \(q(db)) SYNC")
    }

    @Test("a syntax error is error 62 SYNTAX_ERROR")
    func syntaxError() async throws {
        let ch = try TestBed.load().clickHouse()
        await #expect {
            try await ch.execute("SELEC 1")
        } throws: { error in
            (error as? ClickHouseError)?.kind == .server(code: 62, name: "SYNTAX_ERROR")
        }
    }

    @Test("a wrong password is an authentication error that never shows a password")
    func wrongPassword() async throws {
        let bed = try TestBed.load()
        let wrong = "Wr0ng-\(UUID().uuidString)"
        let ch = try bed.clickHouse(password: wrong)
        do {
            try await ch.execute("SELECT 1")
            Issue.record("a wrong password was accepted")
        } catch {
            #expect(error.kind == .authentication, "\(error)")
            #expect(!error.isRetryable)
            let text = "\(error) \(error.message) \(String(reflecting: error))"
            #expect(!text.contains(wrong))
            #expect(!text.contains(bed.clickHousePassword))
            #expect(text.contains("clickhouse.password"))
        }
    }

    @Test("query parameters with quotes and newlines arrive intact; settings apply to the query")
    func parametersAndSettings() async throws {
        let ch = try TestBed.load().clickHouse()
        let tricky = "it's `odd`;\n DROP TABLE x; \\ ü"
        let echoed = try await ch.execute("SELECT {v:String}", parameters: ["v": tricky])
        #expect(echoed == TSVEscaped(tricky) + "\n")
        struct Row: Decodable, Sendable { let big: UInt64; let value: String }
        let rows: [Row] = try await ch.rows(
            "SELECT toUInt64(18446744073709551615) AS big, toString(getSetting('max_threads')) AS value",
            settings: ["max_threads": "3"])
        #expect(rows.count == 1)
        #expect(rows.first?.big == UInt64.max)
        #expect(rows.first?.value == "3")
    }

    private func TSVEscaped(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
            .replacingOccurrences(of: "'", with: "\\'")
    }

    @Test("a million-row result streams row by row, in order")
    func streamsLargeResults() async throws {
        let ch = try TestBed.load().clickHouse()
        let state = Counter()
        try await ch.forEachTSVRow("SELECT number, toString(number * 2) FROM numbers(1000000)") { row in
            let n = try row.int64(0)
            let doubled = try row.string(1)
            state.check(n, doubled == String(n * 2))
        }
        #expect(state.count == 1_000_000)
        #expect(state.inOrder)

        struct Row: Decodable, Sendable { let number: UInt64 }
        let rows: [Row] = try await ch.rows("SELECT number FROM numbers(100000)")
        #expect(rows.count == 100_000)
        #expect(rows.last?.number == 99_999)
    }

    final class Counter: @unchecked Sendable {
        var count = 0
        var inOrder = true
        func check(_ n: Int64, _ valueRight: Bool) {
            if n != Int64(count) || !valueRight { inOrder = false }
            count += 1
        }
    }

    @Test("the version check passes on the test bed and refuses when the minimum is above it")
    func versionCheck() async throws {
        let ch = try TestBed.load().clickHouse()
        let version = try await ch.requireSupportedVersion()
        #expect(version.components.first == 26)
        do {
            try await ch.requireSupportedVersion(minimum: ClickHouseVersion("99.1")!)
            Issue.record("an older server passed the check")
        } catch {
            #expect(error.kind == .unsupportedVersion(found: version.text, minimum: "99.1"))
            #expect(error.description.contains("Nothing was changed"))
        }
    }

    @Test("an unreachable server is a retryable connection error")
    func unreachable() async throws {
        let ch = ClickHouseClient(endpoint: ClickHouseEndpoint(host: "127.0.0.1", port: 1, password: "s3cr3t-pw"))
        do {
            try await ch.execute("SELECT 1")
            Issue.record("port 1 answered")
        } catch {
            #expect(error.kind == .transport(.couldNotConnect), "\(error)")
            #expect(error.isRetryable)
            #expect(!"\(error)".contains("s3cr3t-pw"))
        }
    }
}
