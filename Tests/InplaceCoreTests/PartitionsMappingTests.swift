import Foundation
import Testing

@testable import InplaceCore

private func q(_ name: String) -> String { ClickHouseSQL.identifier(name) }

@Suite("--partitions and name mappings: parsing")
struct PartitionSelectionParsingTests {
    @Test("ids, globs, tuples with quotes, commas and colons, table-specific rules")
    func parses() throws {
        let ids = try PartitionSelection(["202401, 202402", "2023*"])
        #expect(ids.rules.map(\.ids) == [["202401", "202402"], ["2023*"]])
        let filter = PartitionFilter.literal(ids.rules)
        #expect(filter.matches("202401") && filter.matches("202312") && !filter.matches("202403"))

        let tuples = try PartitionSelection(["('2024-01-15','eu'), ('2024-02-01 10:00:00', 'a,b)')"])
        #expect(tuples.rules.count == 1)
        #expect(tuples.rules[0].tables == "*.*")
        #expect(tuples.rules[0].tuples == [["'2024-01-15'", "'eu'"], ["'2024-02-01 10:00:00'", "'a,b)'"]])

        let scoped = try PartitionSelection(["shop.orders*:202401", "db.t:(1),(2)"])
        #expect(scoped.rules[0].tables == "shop.orders*" && scoped.rules[0].ids == ["202401"])
        #expect(scoped.rules[1].tables == "db.t" && scoped.rules[1].tuples == [["1"], ["2"]])
        #expect(scoped.rules(database: "shop", table: "orders_2024").count == 1)
        #expect(scoped.rules(database: "shop", table: "items").isEmpty, "a table no rule names is not restricted")
        #expect(try PartitionSelection([]).isEmpty)
    }

    @Test("malformed values are refused, saying what is wrong")
    func refuses() {
        for (value, words) in [
            ("('2024-01-15'", "not closed"), ("'2024-01-15'", "in parentheses"), ("202401,,202402", "empty"),
            (":202401", "empty"), ("db.t:", "names no partition"), ("(1),x", "outside the parentheses"),
            ("('a)", "not closed"),
        ] {
            do {
                _ = try PartitionSelection([value])
                Issue.record("\(value) was accepted")
            } catch {
                #expect("\(error)".contains(words) && "\(error)".contains("--partitions"), "\(value): \(error)")
            }
        }
    }

    @Test("mappings: full names first, then table names; db.table targets; the CREATE renamed without its UUID")
    func mappings() throws {
        var databases: [String: String] = [:]
        var tables: [String: String] = [:]
        try TableMapping.parse(["shop:shop_copy"], flag: "--restore-database-mapping", into: &databases)
        try TableMapping.parse(["shop.orders:orders_new,items:other.items2", "t:t2"], flag: "--restore-table-mapping",
                               into: &tables)
        let mapping = TableMapping(databases: databases, tables: tables)
        #expect(mapping.target(database: "shop", table: "orders") == TableKey("shop_copy", "orders_new"))
        #expect(mapping.target(database: "shop", table: "items") == TableKey("other", "items2"))
        #expect(mapping.target(database: "shop", table: "x") == TableKey("shop_copy", "x"))
        #expect(mapping.target(database: "logs", table: "t") == TableKey("logs", "t2"))
        #expect(mapping.target(database: "logs", table: "u") == TableKey("logs", "u"))
        #expect(throws: BackupError.self) {
            try TableMapping.parse(["a:b:c"], flag: "--restore-table-mapping", into: &tables)
        }

        let query = "CREATE TABLE shop.orders UUID '8f0c5a4e-1111-4222-8333-444455556666' (`d` Date, `x` UInt64) ENGINE = MergeTree ORDER BY x"
        #expect(TableMapping.rename(query, to: TableKey("shop copy", "o`x"))
            == "CREATE TABLE `shop copy`.`o\\`x` (`d` Date, `x` UInt64) ENGINE = MergeTree ORDER BY x")
        #expect(TableMapping.rename("CREATE TABLE IF NOT EXISTS `a b`.`c` (x UInt8) ENGINE = Log", to: TableKey("n", "m"))
            == "CREATE TABLE IF NOT EXISTS `n`.`m` (x UInt8) ENGINE = Log")
        #expect(TableMapping.rename("CREATE MATERIALIZED VIEW db.mv TO db.t AS SELECT 1", to: TableKey("d2", "mv"))
            == "CREATE MATERIALIZED VIEW `d2`.`mv` TO db.t AS SELECT 1")
        #expect(TableMapping.rename("SELECT 1", to: TableKey("a", "b")) == nil)
    }

    @Test("a partition key's columns and expressions are read from the CREATE statement")
    func partitionKey() throws {
        let key = try #require(PartitionKey(
            "CREATE TABLE db.t (`d` Date, `region` String, `x` UInt64) ENGINE = MergeTree PARTITION BY (toYYYYMM(d), region) ORDER BY x"))
        #expect(key.expressions == ["toYYYYMM(d)", "region"])
        #expect(key.columns.map(\.name) == ["d", "region"])
        #expect(key.columns.map(\.type) == ["Date", "String"])
        let none = try #require(PartitionKey("CREATE TABLE db.t (`x` UInt64) ENGINE = MergeTree ORDER BY x"))
        #expect(none.expressions.isEmpty)
    }
}

/// A real restore with `--partitions`, `create --partitions` and mappings against the test
/// bed's engine; tables compared by rows per partition and a checksum of every row.
@Suite("--partitions and name mappings on the test bed", .enabled(if: TestBed.shouldRun))
struct PartitionsMappingIntegrationTests {
    struct Fixture {
        let bed: TestBed
        let ch: ClickHouseClient
        let db: String
        let config: String
        let folder: TemporaryFolder
        var journal: String { folder.path("journal.sqlite") }

        init() async throws {
            bed = try TestBed.load()
            ch = try bed.clickHouse()
            db = TestBed.uniqueName("it_part")
            config = TestBed.envFile.replacingOccurrences(of: "/env", with: "/config.yml")
            folder = try TemporaryFolder()
            try await ch.execute("CREATE DATABASE \(q(db))")
            // Three monthly partitions, two parts each, no merges: parts stay as inserted.
            try await ch.execute("""
                CREATE TABLE \(q(db)).t (d Date, region String, id UInt64, s String) ENGINE = MergeTree
                PARTITION BY (toYYYYMM(d), region) ORDER BY id \(noMergeSettings)
                """)
            for month in 1...3 {
                for batch in 0..<2 {
                    try await ch.execute("INSERT INTO \(q(db)).t SELECT toDate('2024-0\(month)-01') + number % 20, 'eu', number + \(batch * 1000), 'b\(batch)' FROM numbers(100)")
                }
            }
        }

        /// `partition id\tcount\tsum(cityHash64)` per partition, by the partition's value.
        func contents() async throws -> [String: String] {
            let rows = try await ch.execute(
                "SELECT toString(toYYYYMM(d)), count(), sum(cityHash64(d, region, id, s)) FROM \(q(db)).t GROUP BY 1 ORDER BY 1")
            var byMonth: [String: String] = [:]
            for line in rows.split(separator: "\n") {
                let fields = line.split(separator: "\t", maxSplits: 1)
                byMonth[String(fields[0])] = String(fields[1])
            }
            return byMonth
        }

        /// Part names and hashes per month: a partition left alone keeps exactly these.
        func parts() async throws -> [String: [String]] {
            let rows = try await ch.execute("""
                SELECT toString(min_date), name, hash_of_all_files FROM system.parts
                WHERE database = {db:String} AND table = 't' AND active ORDER BY name
                """, parameters: ["db": db])
            var byMonth: [String: [String]] = [:]
            for line in rows.split(separator: "\n") {
                let fields = line.split(separator: "\t")
                byMonth[String(fields[0].prefix(7)), default: []].append("\(fields[1]) \(fields[2])")
            }
            return byMonth
        }

        /// Changes every month: a new part in each, and the first part of March dropped.
        func drift() async throws {
            for month in 1...3 {
                try await ch.execute("INSERT INTO \(q(db)).t SELECT toDate('2024-0\(month)-05'), 'eu', number + 5000, 'late' FROM numbers(7)")
            }
            let march = try await ch.execute(
                "SELECT name FROM system.parts WHERE database = {db:String} AND table = 't' AND active AND toYYYYMM(min_date) = 202403 ORDER BY name LIMIT 1",
                parameters: ["db": db]).trimmingCharacters(in: .whitespacesAndNewlines)
            try await ch.execute("ALTER TABLE \(q(db)).t DROP PART \(ClickHouseSQL.string(march))")
        }

        func create(_ name: String, _ extra: [String] = []) async throws {
            let result = try await CLI.run(["create", "--config", config, "--tables", "\(db).*"] + extra + [name])
            #expect(result.status == 0, "\(result.all)")
        }

        func cleanUp(_ backups: [String]) async {
            if let disks = try? await ClickHouseCatalog(client: ch).disks() {
                let layout = LocalBackupLayout(disks: disks)
                for name in backups { try? FileManager.default.removeItem(atPath: layout.folder(name)) }
            }
            _ = try? await ch.execute("DROP DATABASE IF EXISTS \(q(db)) SYNC")
            folder.remove()
        }
    }

    @Test("--partitions by value restores that partition only; the others keep their parts byte for byte, also through plan")
    func restoreSomePartitions() async throws {
        let f = try await Fixture()
        let name = TestBed.uniqueName("parts")
        defer { Task { await f.cleanUp([name]) } }
        try await f.create(name)
        let atBackup = try await f.contents()
        try await f.drift()
        let before = try await f.contents()
        let partsBefore = try await f.parts()
        #expect(before["202402"] != atBackup["202402"])

        // February by value of the key columns (d, region): evaluated by ClickHouse's partitionId.
        let selection = "('2024-02-10','eu')"
        let plan = try await CLI.run(["plan", "--config", f.config, "--json", "--partitions", selection, name])
        #expect(plan.status == 0, "\(plan.all)")
        let json = try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any]
        let table = try #require((json?["tables"] as? [[String: Any]])?.first { ($0["table"] as? String) == "t" })
        #expect((table["drop"] as? [String])?.count == 1, "February's new part only: \(table)")
        #expect((table["download"] as? [String])?.isEmpty == true)
        #expect(table["partitions"] as? String != nil)
        #expect((table["partitions_dropped"] as? [String])?.isEmpty == true)

        let restore = try await CLI.run(["restore", "--config", f.config, "--journal", f.journal, "--partitions", selection, name])
        #expect(restore.status == 0, "\(restore.all)")
        let after = try await f.contents()
        let partsAfter = try await f.parts()
        #expect(after["202402"] == atBackup["202402"], "February equals the backup")
        #expect(after["202401"] == before["202401"] && after["202403"] == before["202403"], "the others as they were")
        #expect(partsAfter["2024-01"] == partsBefore["2024-01"] && partsAfter["2024-03"] == partsBefore["2024-03"],
                "January and March keep their very parts (names and hashes)")

        // The journal keeps the selection: the run's options name it.
        let show = try await CLI.run(["journal", "show", "--config", f.config, "--journal", f.journal, "--json"])
        #expect(show.stdout.contains("2024-02-10"), "\(show.stdout.prefix(2000))")

        // Ids and globs that name no partition (a tuple key's ids are hashes): nothing changes.
        let ids = try await CLI.run(["restore", "--config", f.config, "--journal", f.journal, "--new-run",
                                     "--partitions", "\(f.db).t:2024031*,nothing", name])
        #expect(ids.status == 0, "\(ids.all)")
        #expect(try await f.contents()["202403"] == before["202403"])
        let values = try await CLI.run(["restore", "--config", f.config, "--journal", f.journal, "--new-run",
                                        "--partitions", "(202403,'eu')", name])
        #expect(values.status == 0, "\(values.all)")
        let last = try await f.contents()
        #expect(last["202403"] == atBackup["202403"], "March by the expressions' values, as system.parts shows them")
        #expect(last["202401"] == before["202401"])
        #expect(try await f.parts()["2024-01"] == partsBefore["2024-01"])

        // A value that is no partition of the table is refused before anything changes.
        let bad = try await CLI.run(["restore", "--config", f.config, "--journal", f.journal, "--new-run",
                                     "--partitions", "('not a date','eu')", name])
        #expect(bad.status == 64, "\(bad.all)")
        #expect(bad.stderr.contains("is not a partition of"), "\(bad.stderr)")
    }

    @Test("killed after an attach and before its journal commit, merges run, then resumed: the journaled --partitions still bound the restore")
    func crashAndResumeKeepsSelection() async throws {
        let f = try await Fixture()
        let name = TestBed.uniqueName("pcrash")
        defer { Task { await f.cleanUp([name]) } }
        try await f.create(name)
        let atBackup = try await f.contents()
        // February loses its parts (so the restore attaches two), the others drift.
        try await f.drift()
        try await f.ch.execute("ALTER TABLE \(q(f.db)).t DROP PARTITION (202402, 'eu')")
        let before = try await f.contents()
        #expect(before["202402"] == nil)

        // A test-only switch: the process kills itself right after its 1st side effect (the
        // first ATTACH), before the journal records it.
        let crashed = try await CLI.run(["restore", "--config", f.config, "--journal", f.journal, "--partitions",
                                         "('2024-02-01','eu')", name], environment: ["INPLACE_TEST_CRASH_AFTER_EFFECT": "1"])
        #expect(crashed.status != 0, "\(crashed.all)")
        #expect(try await f.contents()["202402"] != atBackup["202402"], "killed midway")
        // Merges run in every partition before the resume.
        try await f.ch.execute("SYSTEM START MERGES \(q(f.db)).t")
        try await f.ch.execute("OPTIMIZE TABLE \(q(f.db)).t PARTITION (202401, 'eu') FINAL")
        let resumed = try await CLI.run(["resume", "--config", f.config, "--journal", f.journal])
        #expect(resumed.status == 0, "\(resumed.all)")
        let after = try await f.contents()
        #expect(after["202402"] == atBackup["202402"], "February equals the backup: no part twice, none lost")
        #expect(after["202401"] == before["202401"] && after["202403"] == before["202403"], "the others as they were")
    }

    @Test("create --partitions records the partitions; restoring that backup leaves the other partitions alone by itself")
    func createSomePartitions() async throws {
        let f = try await Fixture()
        let name = TestBed.uniqueName("cparts")
        defer { Task { await f.cleanUp([name]) } }
        let partition = try await f.ch.execute(
            "SELECT DISTINCT partition_id FROM system.parts WHERE database = {db:String} AND table = 't' AND toYYYYMM(min_date) = 202401",
            parameters: ["db": f.db]).trimmingCharacters(in: .whitespacesAndNewlines)
        try await f.create(name, ["--partitions", "('2024-01-01','eu')"])
        let atBackup = try await f.contents()
        let layout = LocalBackupLayout(disks: try await ClickHouseCatalog(client: f.ch).disks())
        let table = try JSONDecoder().decode(TableMetadata.self, from: Data(try FileSystem.readFile(
            layout.tableMetadataFile(name, database: f.db, table: "t"))))
        #expect(table.inplace_partitions == [partition])
        #expect(table.parts?.values.joined().count == 2, "January's two parts only")
        #expect(table.parts?.values.joined().allSatisfy { $0.name.hasPrefix(partition + "_") } == true)

        try await f.drift()
        let before = try await f.contents()
        let partsBefore = try await f.parts()
        let restore = try await CLI.run(["restore", "--config", f.config, "--journal", f.journal, name])
        #expect(restore.status == 0, "\(restore.all)")
        let after = try await f.contents()
        #expect(after["202401"] == atBackup["202401"])
        #expect(after["202402"] == before["202402"] && after["202403"] == before["202403"])
        #expect(try await f.parts()["2024-02"] == partsBefore["2024-02"])
        let verify = try await CLI.run(["verify", "--config", f.config, name])
        #expect(verify.status == 0, "verify compares January only: \(verify.all)")

        // The same backup without the record (as clickhouse-backup writes a partial backup): the
        // plan shows which whole partitions it would drop.
        var json = try BackupEdit.json(try FileSystem.readFile(layout.tableMetadataFile(name, database: f.db, table: "t")))
        json["inplace_partitions"] = nil
        try FileSystem.writeDurably(try BackupEdit.bytes(json), to: layout.tableMetadataFile(name, database: f.db, table: "t"))
        let plan = try await CLI.run(["plan", "--config", f.config, name])
        #expect(plan.status == 0, "\(plan.all)")
        #expect(plan.stdout.contains("drops whole partition(s) the backup has no part of"), "\(plan.stdout)")
        #expect(plan.stdout.contains("(2)"), "February and March: \(plan.stdout)")
        let planJSON = try await CLI.run(["plan", "--config", f.config, "--json", name])
        #expect(planJSON.stdout.contains("\"partitions_dropped\""), "\(planJSON.stdout.prefix(1500))")
    }

    @Test("a mapping restores beside the original: the copy equals the backup, the original is untouched")
    func mappingBesideOriginal() async throws {
        let f = try await Fixture()
        let name = TestBed.uniqueName("map")
        let copyDB = f.db + "_copy"
        defer {
            Task {
                _ = try? await f.ch.execute("DROP DATABASE IF EXISTS \(q(copyDB)) SYNC")
                await f.cleanUp([name])
            }
        }
        try await f.create(name)
        let atBackup = try await TableContents.of(f.ch, f.db, "t")
        try await f.drift()
        let original = try await TableContents.of(f.ch, f.db, "t")
        let originalUUID = try await f.ch.execute(
            "SELECT toString(uuid) FROM system.tables WHERE database = {db:String} AND name = 't'", parameters: ["db": f.db])

        // The table beside the original, in the same database.
        let beside = try await CLI.run(["restore", "--config", f.config, "--journal", f.journal,
                                        "--restore-table-mapping", "\(f.db).t:t_restored", name])
        #expect(beside.status == 0, "\(beside.all)")
        #expect(try await TableContents.of(f.ch, f.db, "t_restored") == atBackup)
        #expect(try await TableContents.of(f.ch, f.db, "t") == original, "the original is untouched")
        let copyUUID = try await f.ch.execute(
            "SELECT toString(uuid) FROM system.tables WHERE database = {db:String} AND name = 't_restored'", parameters: ["db": f.db])
        #expect(copyUUID != originalUUID && !copyUUID.isEmpty, "a new UUID")

        // A database mapping from the environment, as clickhouse-backup reads it; then the copy
        // drifts and a second restore of the same mapping changes only what differs.
        let env = ["RESTORE_DATABASE_MAPPING": "\(f.db):\(copyDB)"]
        let copy = try await CLI.run(["restore", "--config", f.config, "--journal", f.journal, name], environment: env)
        #expect(copy.status == 0, "\(copy.all)")
        #expect(try await TableContents.of(f.ch, copyDB, "t") == atBackup)
        #expect(try await TableContents.of(f.ch, f.db, "t") == original)
        try await f.ch.execute("INSERT INTO \(q(copyDB)).t VALUES ('2024-01-03', 'eu', 99999, 'extra')")
        let plan = try await CLI.run(["plan", "--config", f.config, "--json", name], environment: env)
        let tables = (try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any])?["tables"] as? [[String: Any]]
        let planned = try #require(tables?.first { ($0["table"] as? String) == "t" })
        #expect(planned["database"] as? String == copyDB)
        #expect((planned["drop"] as? [String])?.count == 1 && (planned["download"] as? [String])?.isEmpty == true, "\(planned)")
        let again = try await CLI.run(["restore", "--config", f.config, "--journal", f.journal, "--json", name], environment: env)
        #expect(again.status == 0, "\(again.all)")
        #expect(try await TableContents.of(f.ch, copyDB, "t") == atBackup)
        #expect(try await TableContents.of(f.ch, f.db, "t") == original)
    }
}
