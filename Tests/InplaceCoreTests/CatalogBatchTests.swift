import Foundation
import Testing

@testable import InplaceCore

@Suite("The live-state queries of many tables, in batches that fit a URL", .enabled(if: TestBed.shouldRun))
struct CatalogBatchTests {
    @Test("tables are cut into literals of at most about the limit, in order, none lost")
    func batchesCoverEveryTable() {
        let tables = (0..<1000).map { (database: "db", table: "table_\($0)") }
        let literals = ClickHouseCatalog.batches(tables, limit: 1000)
        #expect(literals.count > 1)
        #expect(literals.allSatisfy { $0.utf8.count <= 1100 })
        #expect(literals.joined(separator: ",").replacingOccurrences(of: "],[", with: ",")
            == ClickHouseCatalog.tupleLiteral(tables))
        #expect(ClickHouseCatalog.batches([]).isEmpty)
    }

    @Test("parts and mutations of 3,000 tables named at once: the test bed's 64 KiB URL limit is not hit")
    func manyTablesInOnePlan() async throws {
        let ch = try TestBed.load().clickHouse()
        let db = TestBed.uniqueName("it_batch")
        let table = ClickHouseSQL.identifier(db) + ".t"
        defer { Task { try? await ch.execute("DROP DATABASE IF EXISTS \(ClickHouseSQL.identifier(db)) SYNC") } }
        for statement in [
            "CREATE DATABASE \(ClickHouseSQL.identifier(db))", "CREATE TABLE \(table) (id UInt64) ENGINE = MergeTree ORDER BY id",
            "SYSTEM STOP MERGES \(table)", "INSERT INTO \(table) VALUES (1)", "INSERT INTO \(table) VALUES (2)",
        ] {
            try await ch.execute(statement)
        }
        // 3,000 names of about 40 characters: about 150 KB once percent-encoded in the URL.
        let absent = (0..<3000).map { (database: db, table: "a_table_that_is_not_there_number_\($0)") }
        let catalog = ClickHouseCatalog(client: ch)
        let parts = try await catalog.parts(of: absent + [(database: db, table: "t")] + absent.prefix(10))
        #expect(parts.map(\.name).sorted() == ["all_1_1_0", "all_2_2_0"])
        #expect(try await catalog.unfinishedMutations(of: absent + [(database: db, table: "t")]).isEmpty)
    }
}
