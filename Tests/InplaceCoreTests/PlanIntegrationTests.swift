import Foundation
import InplaceCore
import Testing

private func q(_ name: String) -> String { ClickHouseSQL.identifier(name) }

/// `inplace plan --json` against the test bed: a backup, then one kind of change per table, and
/// the exact lists the plan must give for each.
@Suite("inplace plan on the test bed", .enabled(if: TestBed.shouldRun))
struct PlanIntegrationTests {
    struct PlanJSON: Decodable {
        struct Kept: Decodable, Equatable { let backup: String; let live: String }
        struct Drift: Decodable { let added: [String]; let gone: [String] }
        struct Table: Decodable {
            let database: String
            let table: String
            let create: Bool
            let recreate: Bool
            let keep: [Kept]
            let drop: [String]
            let download: [String]
            let refused: String?
            let drift: Drift?
        }
        let complete: Bool
        let three_way: Bool
        let tables: [Table]
    }

    @Test("each kind of change to the live tables gives exactly the expected keep, drop and download lists")
    func planAfterChanges() async throws {
        let bed = try TestBed.load()
        let ch = try bed.clickHouse()
        let db = TestBed.uniqueName("it_plan")
        try await ch.execute("CREATE DATABASE \(q(db))")
        func make(_ table: String, partitions: [String] = ["2024-01", "2024-01", "2024-02"], offset: Int = 0) async throws {
            try await ch.execute("""
                CREATE TABLE \(q(db)).\(q(table)) (d Date, id UInt64, v UInt32) ENGINE = MergeTree
                PARTITION BY toYYYYMM(d) ORDER BY id
                """)
            try await ch.execute("SYSTEM STOP MERGES \(q(db)).\(q(table))")
            for (index, month) in partitions.enumerated() {
                try await ch.execute("INSERT INTO \(q(db)).\(q(table)) SELECT toDate('\(month)-01'), number + \(index * 1000 + offset), number FROM numbers(\(10 + index))")
            }
        }
        func parts(_ table: String) async throws -> [String] {
            try await ClickHouseCatalog(client: ch).parts(of: [(db, table)]).map(\.name).sorted()
        }
        let tables = ["same", "inserted", "merged", "dropped_part", "recreated", "altered", "vanished"]
        for table in tables { try await make(table) }
        var before: [String: [String]] = [:]
        for table in tables { before[table] = try await parts(table) }

        let name = TestBed.uniqueName("plan")
        let config = TestBed.envFile.replacingOccurrences(of: "/env", with: "/config.yml")
        let created = try await CLI.run(["create", "--config", config, "--tables", "\(db).*", name])
        #expect(created.status == 0, "\(created.stderr)")

        // One change per table.
        try await ch.execute("INSERT INTO \(q(db)).inserted SELECT toDate('2024-03-01'), 7, 7 FROM numbers(1)")
        try await ch.execute("SYSTEM START MERGES \(q(db)).merged")
        try await ch.execute("OPTIMIZE TABLE \(q(db)).merged PARTITION 202401 FINAL")
        try await ch.execute("ALTER TABLE \(q(db)).dropped_part DROP PART \(ClickHouseSQL.string(before["dropped_part"]![1]))")
        try await ch.execute("DROP TABLE \(q(db)).recreated SYNC")
        // Block numbers restart: the new part reuses a backup part's name with other rows.
        try await make("recreated", partitions: ["2024-01"], offset: 500)
        // The type change is a mutation: it needs merges running, or the ALTER waits for ever.
        try await ch.execute("SYSTEM START MERGES \(q(db)).altered")
        try await ch.execute("ALTER TABLE \(q(db)).altered MODIFY COLUMN v UInt64")
        try await ch.execute("DROP TABLE \(q(db)).vanished SYNC")
        try await make("extra")
        var after: [String: [String]] = [:]
        for table in tables where table != "vanished" { after[table] = try await parts(table) }

        let result = try await CLI.run(["plan", "--config", config, "--json", name])
        #expect(result.status == 11, "a refused table makes the plan incomplete: \(result.stderr)")
        let plan = try JSONDecoder().decode(PlanJSON.self, from: Data(result.stdout.utf8))
        #expect(plan.three_way)
        #expect(!plan.complete)
        let byName = Dictionary(uniqueKeysWithValues: plan.tables.map { ($0.table, $0) })
        #expect(Set(byName.keys) == Set(tables), "the extra table is not in the backup, so not in the plan")

        let same = try #require(byName["same"])
        #expect(same.keep == before["same"]!.map { .init(backup: $0, live: $0) })
        #expect(same.drop.isEmpty && same.download.isEmpty && !same.create)

        let inserted = try #require(byName["inserted"])
        let newPart = Set(after["inserted"]!).subtracting(before["inserted"]!)
        #expect(inserted.drop == Array(newPart) && inserted.download.isEmpty && inserted.keep.count == 3)
        #expect(inserted.drift?.added == Array(newPart))

        let merged = try #require(byName["merged"])
        let mergedPart = Set(after["merged"]!).subtracting(before["merged"]!)
        #expect(merged.drop == Array(mergedPart))
        #expect(merged.download == before["merged"]!.filter { $0.hasPrefix("202401") })
        #expect(merged.keep.map(\.backup) == before["merged"]!.filter { $0.hasPrefix("202402") })
        #expect(merged.drift?.gone.sorted() == before["merged"]!.filter { $0.hasPrefix("202401") })

        let droppedPart = try #require(byName["dropped_part"])
        #expect(droppedPart.download == [before["dropped_part"]![1]])
        #expect(droppedPart.drop.isEmpty && droppedPart.keep.count == 2)

        let recreated = try #require(byName["recreated"])
        // Same name as a backup part, different content: dropped and downloaded, never kept.
        #expect(Set(after["recreated"]!).isSubset(of: before["recreated"]!))
        #expect(recreated.keep.isEmpty)
        #expect(recreated.drop == after["recreated"]!)
        #expect(recreated.download == before["recreated"]!)

        let altered = try #require(byName["altered"])
        #expect(altered.refused?.contains("columns differ") == true)
        #expect(altered.drop.isEmpty && altered.download.isEmpty)

        let vanished = try #require(byName["vanished"])
        #expect(vanished.create && vanished.download == before["vanished"]!)

        // The plan changed nothing.
        for table in tables where table != "vanished" { #expect(try await parts(table) == after[table]!) }

        // With --drop-if-schema-changed the altered table is recreated instead, and the plan is complete.
        let forced = try await CLI.run(["plan", "--config", config, "--json", "--drop-if-schema-changed", name])
        #expect(forced.status == 0, "\(forced.stderr)")
        let forcedPlan = try JSONDecoder().decode(PlanJSON.self, from: Data(forced.stdout.utf8))
        let alteredForced = try #require(forcedPlan.tables.first { $0.table == "altered" })
        #expect(alteredForced.recreate && alteredForced.download == before["altered"]!)

        // --tables narrows the plan; a pattern matching nothing in the backup is an error.
        let narrowed = try await CLI.run(["plan", "--config", config, "--json", "--tables", "\(db).same", name])
        #expect(narrowed.status == 0)
        #expect(try JSONDecoder().decode(PlanJSON.self, from: Data(narrowed.stdout.utf8)).tables.map(\.table) == ["same"])
        let nothing = try await CLI.run(["plan", "--config", config, "--tables", "nope.*", name])
        #expect(nothing.status == 9)

        let disks = try await ClickHouseCatalog(client: ch).disks()
        try? FileManager.default.removeItem(atPath: (disks.first { $0.name == "default" }?.path ?? "/nonexistent/") + "backup/" + name)
        _ = try? await ch.execute("DROP DATABASE \(q(db)) SYNC")
    }
}
