import Testing

@testable import InplaceCore

/// Every rule of the planner, on plain values.
@Suite("The in-place planner")
struct PlannerTests {
    static let query = "CREATE TABLE db.t (`d` Date, `id` UInt64, `s` String) ENGINE = MergeTree PARTITION BY toYYYYMM(d) ORDER BY id SETTINGS index_granularity = 8192"

    func bpart(_ name: String, _ hash: String?, crc: UInt64? = nil, disk: String = "default", bytes: Int64 = 100)
        -> BackupTableState.Part
    {
        .init(name: name, disk: disk, hash: hash, checksumsCRC: crc, bytes: bytes)
    }

    func lpart(_ name: String, _ hash: String, crc: UInt64? = nil, bytes: Int64 = 100) -> LiveState.Part {
        .init(name: name, partitionID: PartName(name)!.partitionID, disk: "default", hash: hash, checksumsCRC: crc,
              bytes: bytes)
    }

    func backup(_ parts: [BackupTableState.Part], current: [BackupTableState.Part]? = nil, query: String = query,
                missing: Set<String> = [], table: String = "t") -> BackupTableState {
        BackupTableState(database: "db", table: table, query: query, parts: parts, currentParts: current,
                         missingData: missing)
    }

    func live(_ parts: [LiveState.Part]?, query: String = query, engine: String = "MergeTree",
              free: UInt64 = 1 << 40, extraTables: [TableKey: LiveState.Table] = [:]) -> LiveState {
        var tables = extraTables
        if let parts { tables[TableKey("db", "t")] = .init(engine: engine, createQuery: query, parts: parts) }
        return LiveState(databases: parts == nil && extraTables.isEmpty ? [:] : ["db": "Atomic"], tables: tables,
                         disks: ["default": free])
    }

    func only(_ plan: RestorePlan) throws -> TablePlan {
        try #require(plan.tables.count == 1)
        return plan.tables[0]
    }

    @Test("a table only in the backup is created with its database, and every part downloaded in order")
    func createsMissingTable() throws {
        let plan = try only(Planner.plan(backup: [backup([bpart("202402_3_3_0", "c"), bpart("202401_10_10_0", "b"),
                                                          bpart("202401_2_2_0", "a")])], live: live(nil)))
        #expect(plan.create && plan.createDatabase)
        #expect(plan.download.map(\.name) == ["202401_2_2_0", "202401_10_10_0", "202402_3_3_0"])
        #expect(plan.drop.isEmpty && plan.keep.isEmpty && plan.refused == nil)
    }

    @Test("a table only in the database is left alone and not listed")
    func ignoresLiveOnlyTables() {
        let other = LiveState.Table(engine: "MergeTree", createQuery: Self.query, parts: [lpart("all_1_1_0", "x")])
        let plan = Planner.plan(backup: [backup([bpart("all_1_1_0", "x")])],
                                live: live([lpart("all_1_1_0", "x")], extraTables: [TableKey("db", "other"): other]))
        #expect(plan.tables.map(\.table) == ["t"])
    }

    @Test("same name, different content: the live part is dropped and the backup's downloaded, never kept")
    func sameNameDifferentContent() throws {
        let plan = try only(Planner.plan(backup: [backup([bpart("all_1_1_0", "aaaa")])],
                                         live: live([lpart("all_1_1_0", "bbbb")])))
        #expect(plan.keep.isEmpty)
        #expect(plan.drop.map(\.name) == ["all_1_1_0"])
        #expect(plan.download.map(\.name) == ["all_1_1_0"])
    }

    @Test("same content, different name: kept, paired with the live part that holds it")
    func sameContentDifferentName() throws {
        let plan = try only(Planner.plan(backup: [backup([bpart("all_1_1_0", "h1"), bpart("all_2_2_0", "h2")])],
                                         live: live([lpart("all_2_2_0", "h1"), lpart("all_7_7_0", "h2")])))
        #expect(plan.keep == [.init(backup: "all_1_1_0", live: "all_2_2_0", bytes: 100), .init(backup: "all_2_2_0", live: "all_7_7_0", bytes: 100)])
        #expect(plan.drop.isEmpty && plan.download.isEmpty && plan.resequence.isEmpty)
        #expect(plan.isNoOp)
    }

    @Test("kept parts in another block order than the backup's: the later ones are re-sequenced, nothing downloaded")
    func keptOutOfOrder() throws {
        // Backup order h1, h2; live holds h2 before h1 (h1 was attached again by someone).
        let plan = try only(Planner.plan(backup: [backup([bpart("all_1_1_0", "h1"), bpart("all_2_2_0", "h2")])],
                                         live: live([lpart("all_7_7_0", "h1"), lpart("all_2_2_0", "h2")])))
        #expect(plan.keep == [.init(backup: "all_1_1_0", live: "all_7_7_0", bytes: 100)])
        #expect(plan.resequence.map(\.live) == ["all_2_2_0"] && plan.resequence.map(\.backup) == ["all_2_2_0"])
        #expect(plan.download.isEmpty && plan.drop.isEmpty && !plan.isNoOp)
    }

    @Test("block order: a lost oldest part is attached first and every later kept part of its partition after it")
    func lostOldestPart() throws {
        let backupParts = [bpart("all_1_1_0", "old"), bpart("all_2_2_0", "mid"), bpart("all_3_3_0", "new"),
                           bpart("202401_4_4_0", "x")]
        // The oldest lost; another partition untouched.
        let plan = try only(Planner.plan(backup: [backup(backupParts)],
                                         live: live([lpart("all_2_2_0", "mid"), lpart("all_3_3_0", "new"),
                                                     lpart("202401_4_4_0", "x")])))
        #expect(plan.download.map(\.name) == ["all_1_1_0"])
        #expect(plan.resequence.map(\.live) == ["all_2_2_0", "all_3_3_0"])
        #expect(plan.keep.map(\.live) == ["202401_4_4_0"])
        // The events attach in the backup's order: the download, then each kept part detached and attached.
        let kinds = TableRestore.bringOrder(plan).map { item -> String in
            switch item {
            case .download(let part): "download \(part.name)"
            case .resequence(let part): "resequence \(part.live)"
            }
        }
        #expect(kinds == ["download all_1_1_0", "resequence all_2_2_0", "resequence all_3_3_0"])
    }

    @Test("block order: a lost newest part needs no re-sequencing; a lost middle one re-sequences only what follows")
    func lostNewestAndMiddle() throws {
        let backupParts = [bpart("all_1_1_0", "old"), bpart("all_2_2_0", "mid"), bpart("all_3_3_0", "new")]
        let newest = try only(Planner.plan(backup: [backup(backupParts)],
                                           live: live([lpart("all_1_1_0", "old"), lpart("all_2_2_0", "mid")])))
        #expect(newest.download.map(\.name) == ["all_3_3_0"] && newest.resequence.isEmpty && newest.keep.count == 2)
        let middle = try only(Planner.plan(backup: [backup(backupParts)],
                                           live: live([lpart("all_1_1_0", "old"), lpart("all_3_3_0", "new"),
                                                       lpart("all_9_9_0", "extra")])))
        #expect(middle.download.map(\.name) == ["all_2_2_0"])
        #expect(middle.resequence.map(\.live) == ["all_3_3_0"] && middle.keep.map(\.live) == ["all_1_1_0"])
        #expect(middle.drop.map(\.name) == ["all_9_9_0"])
    }

    @Test("a kept part to re-sequence whose live name is a part to download is downloaded instead, and its live part dropped")
    func resequenceNameCollision() throws {
        // Backup: all_1_1_0 (a, lost), all_2_2_0 (b); live holds b as all_1_1_0: detaching it
        // would need detached/all_1_1_0, where the backup's all_1_1_0 is downloaded.
        let plan = try only(Planner.plan(backup: [backup([bpart("all_1_1_0", "a"), bpart("all_2_2_0", "b")])],
                                         live: live([lpart("all_1_1_0", "b")])))
        #expect(plan.download.map(\.name) == ["all_1_1_0", "all_2_2_0"])
        #expect(plan.drop.map(\.name) == ["all_1_1_0"] && plan.resequence.isEmpty && plan.keep.isEmpty)
    }

    @Test("name clashes in detached/ are resolved until none is left: a download added for one clash can clash with another")
    func resequenceNameCollisionChain() throws {
        // Backup p_1 = A (lost), p_2 = B, p_3 = C; live holds C as all_1_1_0 and B as all_3_3_0
        // (a recreated table's block numbers restart).
        let plan = try only(Planner.plan(backup: [backup([bpart("all_1_1_0", "A"), bpart("all_2_2_0", "B"), bpart("all_3_3_0", "C")])],
                                         live: live([lpart("all_1_1_0", "C"), lpart("all_3_3_0", "B")])))
        let detachedNames = plan.download.map(\.name) + plan.resequence.map(\.live)
        #expect(Set(detachedNames).count == detachedNames.count, "\(detachedNames)")
        #expect(plan.download.map(\.name) == ["all_1_1_0", "all_2_2_0", "all_3_3_0"])
        #expect(plan.drop.map(\.name) == ["all_1_1_0", "all_3_3_0"] && plan.resequence.isEmpty)
    }

    @Test("--schema plans nothing for existing tables (no refusal) and no download for missing ones; --data leaves missing ones without downloads")
    func schemaAndDataOnly() throws {
        let schema = try only(Planner.plan(backup: [backup([bpart("all_1_1_0", "h1")])],
                                           live: live([lpart("all_5_5_0", "h5")], query: "CREATE TABLE db.t (`x` UInt8) ENGINE = MergeTree ORDER BY x"),
                                           options: PlanOptions(schemaOnly: true)))
        #expect(schema.isNoOp && schema.refused == nil)
        let missing = try only(Planner.plan(backup: [backup([bpart("all_1_1_0", "h1")])], live: live(nil),
                                            options: PlanOptions(schemaOnly: true)))
        #expect(missing.create && missing.download.isEmpty)
        let data = Planner.plan(backup: [backup([bpart("all_1_1_0", "h1", bytes: 1 << 50)])], live: live(nil),
                                options: PlanOptions(dataOnly: true))
        #expect(data.tables[0].download.isEmpty && data.refused == nil, "no space needed for a table --data leaves missing")
    }

    @Test("--data --full keeps the table and replaces every live part by the backup's")
    func dataFull() throws {
        let plan = try only(Planner.plan(backup: [backup([bpart("all_1_1_0", "h1")])],
                                         live: live([lpart("all_1_1_0", "h1"), lpart("all_5_5_0", "h5")]),
                                         options: PlanOptions(full: true, dataOnly: true)))
        #expect(!plan.recreate && !plan.create)
        #expect(plan.download.map(\.name) == ["all_1_1_0"])
        #expect(plan.drop.map(\.name) == ["all_1_1_0", "all_5_5_0"])
    }

    @Test("a part attached by an earlier restore under a new name is kept on the next plan")
    func reattachedPartIsKept() throws {
        // First plan: the live table lost all_3_3_0; the restore attaches it, ClickHouse names it all_9_9_0.
        let first = try only(Planner.plan(backup: [backup([bpart("all_1_1_0", "h1"), bpart("all_3_3_0", "h3")])],
                                          live: live([lpart("all_1_1_0", "h1")])))
        #expect(first.download.map(\.name) == ["all_3_3_0"])
        let second = try only(Planner.plan(backup: [backup([bpart("all_1_1_0", "h1"), bpart("all_3_3_0", "h3")])],
                                           live: live([lpart("all_1_1_0", "h1"), lpart("all_9_9_0", "h3")])))
        #expect(second.isNoOp)
        #expect(second.keep.contains(.init(backup: "all_3_3_0", live: "all_9_9_0", bytes: 100)))
    }

    @Test("an empty backup table drops every live part")
    func emptyBackupTable() throws {
        let plan = try only(Planner.plan(backup: [backup([])], live: live([lpart("all_1_1_0", "x"), lpart("all_2_2_0", "y")])))
        #expect(plan.drop.map(\.name) == ["all_1_1_0", "all_2_2_0"])
        #expect(plan.download.isEmpty && plan.keep.isEmpty)
    }

    @Test("identical content is counted: 3 backup and 1 live keep 1 and download 2")
    func multisetMoreInBackup() throws {
        let plan = try only(Planner.plan(
            backup: [backup([bpart("all_1_1_0", "H"), bpart("all_2_2_0", "H"), bpart("all_3_3_0", "H")])],
            live: live([lpart("all_5_5_0", "H")])))
        #expect(plan.keep.count == 1)
        #expect(plan.download.count == 2)
        #expect(plan.drop.isEmpty)
    }

    @Test("identical content is counted: 1 backup and 3 live keep 1 and drop 2")
    func multisetMoreLive() throws {
        let plan = try only(Planner.plan(
            backup: [backup([bpart("all_1_1_0", "H")])],
            live: live([lpart("all_1_1_0", "H"), lpart("all_2_2_0", "H"), lpart("all_3_3_0", "H")])))
        #expect(plan.keep == [.init(backup: "all_1_1_0", live: "all_1_1_0", bytes: 100)])
        #expect(plan.drop.map(\.name) == ["all_2_2_0", "all_3_3_0"])
        #expect(plan.download.isEmpty)
    }

    @Test("equal hashes in different partitions are different parts")
    func partitionIsPartOfIdentity() throws {
        let plan = try only(Planner.plan(backup: [backup([bpart("202401_1_1_0", "H")])],
                                         live: live([lpart("202402_1_1_0", "H")])))
        #expect(plan.keep.isEmpty)
        #expect(plan.drop.map(\.name) == ["202402_1_1_0"] && plan.download.map(\.name) == ["202401_1_1_0"])
    }

    @Test("a backup without hashes compares CRC-64 of checksums.txt on both sides")
    func backupWithoutHashes() throws {
        let plan = try only(Planner.plan(
            backup: [backup([bpart("all_1_1_0", nil, crc: 11), bpart("all_2_2_0", nil, crc: 22)])],
            live: live([lpart("all_4_4_0", "h-ignored", crc: 11), lpart("all_2_2_0", "h-ignored", crc: 99)])))
        #expect(plan.identity == "checksums")
        #expect(plan.keep == [.init(backup: "all_1_1_0", live: "all_4_4_0", bytes: 100)])
        #expect(plan.drop.map(\.name) == ["all_2_2_0"])
        #expect(plan.download.map(\.name) == ["all_2_2_0"])
        #expect(plan.download.first?.identity == "crc64:22")
    }

    @Test("a part with no identity at all is downloaded, never kept")
    func partWithoutIdentity() throws {
        let plan = try only(Planner.plan(backup: [backup([bpart("all_1_1_0", nil)])],
                                         live: live([lpart("all_1_1_0", "x")])))
        #expect(plan.keep.isEmpty && plan.download.count == 1 && plan.drop.count == 1)
    }

    @Test("different columns refuse the table; --drop-if-schema-changed recreates it instead")
    func schemaChange() throws {
        let altered = Self.query.replacingOccurrences(of: "`id` UInt64", with: "`id` Int64")
        let refused = try only(Planner.plan(backup: [backup([bpart("all_1_1_0", "a")])],
                                            live: live([lpart("all_1_1_0", "a")], query: altered)))
        #expect(refused.refused?.contains("column 2: backup has `id UInt64`, the table has `id Int64`") == true)
        #expect(refused.drop.isEmpty && refused.download.isEmpty && refused.keep.isEmpty)
        var options = PlanOptions()
        options.dropIfSchemaChanged = true
        let recreated = try only(Planner.plan(backup: [backup([bpart("all_1_1_0", "a")])],
                                              live: live([lpart("all_1_1_0", "a")], query: altered), options: options))
        #expect(recreated.recreate && recreated.refused == nil)
        #expect(recreated.download.map(\.name) == ["all_1_1_0"])
        let reordered = "CREATE TABLE db.t (`id` UInt64, `d` Date, `s` String) ENGINE = MergeTree ORDER BY id"
        #expect(try only(Planner.plan(backup: [backup([])], live: live([], query: reordered))).refused != nil)
    }

    @Test("a live table of another engine, a Replicated table, a missing disk: refused with the reason")
    func refusals() throws {
        let log = try only(Planner.plan(backup: [backup([bpart("all_1_1_0", "a")])],
                                        live: live([], engine: "Log")))
        #expect(log.refused?.contains("not of the MergeTree family") == true)
        let replicated = Self.query.replacingOccurrences(of: "ENGINE = MergeTree", with: "ENGINE = ReplicatedMergeTree('/p', 'r')")
        let rep = try only(Planner.plan(backup: [backup([bpart("all_1_1_0", "a")], query: replicated)], live: live(nil)))
        #expect(rep.refused?.contains("not supported yet") == true)
        let disk = try only(Planner.plan(backup: [backup([bpart("all_1_1_0", "a", disk: "hot")])], live: live(nil)))
        #expect(disk.refused?.contains("disk 'hot'") == true)
        #expect(disk.create == false, "a refused table is not created either")
    }

    @Test("missing backup data refuses the table before anything is dropped")
    func missingData() throws {
        let plan = try only(Planner.plan(backup: [backup([bpart("all_1_1_0", "a"), bpart("all_2_2_0", "b")],
                                                         missing: ["all_2_2_0"])],
                                         live: live([lpart("all_3_3_0", "z")])))
        #expect(plan.refused?.contains("missing") == true)
        #expect(plan.drop.isEmpty)
        // Missing data of a part the table already holds does not matter.
        let fine = try only(Planner.plan(backup: [backup([bpart("all_1_1_0", "a")], missing: ["all_1_1_0"])],
                                         live: live([lpart("all_5_5_0", "a")])))
        #expect(fine.refused == nil && fine.isNoOp)
    }

    @Test("a refused table does not refuse the others")
    func refusalIsPerTable() {
        let plan = Planner.plan(
            backup: [backup([bpart("all_1_1_0", "a", disk: "nope")]), backup([bpart("all_1_1_0", "a")], table: "u")],
            live: live(nil))
        #expect(plan.tables.map { $0.refused == nil } == [true, false].reversed())
        #expect(!plan.isComplete)
        #expect(plan.refused == nil)
    }

    @Test("not enough disk space refuses the run with the numbers; drops count as freed only with --drop-first; the override works")
    func diskSpace() throws {
        let parts = [bpart("all_1_1_0", "a", bytes: 600 << 20), bpart("all_2_2_0", "b", bytes: 600 << 20)]
        let dropFirst = PlanOptions(dropFirst: true)
        let short = Planner.plan(backup: [backup(parts)], live: live([lpart("all_9_9_0", "z", bytes: 100 << 20)], free: 1 << 30),
                                 options: dropFirst)
        #expect(short.refused?.contains("not enough space on disk 'default'") == true)
        #expect(short.disks == [DiskCheck(disk: "default", free: 1 << 30, freedByDrops: 100 << 20, needed: 1200 << 20,
                                          margin: 256 << 20, enough: false)])
        let bigDrop = live([lpart("all_9_9_0", "z", bytes: 600 << 20)], free: 1 << 30)
        let freed = Planner.plan(backup: [backup(parts)], live: bigDrop, options: dropFirst)
        #expect(freed.refused == nil)
        // By default drops wait for the attaches: the space they free comes too late to count.
        let safe = Planner.plan(backup: [backup(parts)], live: bigDrop)
        #expect(safe.refused?.contains("--drop-first") == true)
        #expect(safe.disks.first?.freedByDrops == 0)
        let forced = Planner.plan(backup: [backup(parts)], live: live(nil, free: 1 << 20),
                                  options: PlanOptions(ignoreDiskSpace: true))
        #expect(forced.refused == nil)
        let linked = Planner.plan(backup: [backup(parts)], live: live(nil, free: 1 << 20),
                                  options: PlanOptions(downloadsUseSpace: false))
        #expect(linked.refused == nil)
    }

    @Test("with current_parts the drift since the backup is reported; without, there is none")
    func drift() throws {
        let current = [bpart("all_1_1_0", "h1"), bpart("all_2_2_0", "h2")]
        let plan = try only(Planner.plan(
            backup: [backup([bpart("all_1_1_0", "h1"), bpart("all_2_2_0", "h2")], current: current)],
            live: live([lpart("all_1_2_1", "merged"), lpart("all_3_3_0", "new")])))
        #expect(plan.drift == .init(added: ["all_1_2_1", "all_3_3_0"], gone: ["all_1_1_0", "all_2_2_0"]))
        #expect(plan.drop.map(\.name) == ["all_1_2_1", "all_3_3_0"])
        #expect(plan.download.map(\.name) == ["all_1_1_0", "all_2_2_0"])
        let without = try only(Planner.plan(backup: [backup([bpart("all_1_1_0", "h1")])], live: live([])))
        #expect(without.drift == nil)
    }

    @Test("--full drops and recreates every table and downloads every part")
    func full() throws {
        let plan = try only(Planner.plan(backup: [backup([bpart("all_1_1_0", "a")])], live: live([lpart("all_1_1_0", "a")]),
                                         options: PlanOptions(full: true)))
        #expect(plan.recreate && plan.keep.isEmpty && plan.download.map(\.name) == ["all_1_1_0"])
    }

    @Test("views and schema-only tables are created when missing, left alone when present")
    func viewsAndSchemaOnly() throws {
        let view = "CREATE VIEW db.t AS SELECT 1"
        let missing = try only(Planner.plan(backup: [backup([], query: view)], live: live(nil)))
        #expect(missing.create && missing.download.isEmpty)
        let present = try only(Planner.plan(backup: [backup([], query: view)], live: live([], query: view, engine: "View")))
        #expect(present.isNoOp)
    }

    @Test("columns and engines are read from CREATE statements")
    func readsCreateStatements() {
        let query = """
            CREATE TABLE db.t UUID 'x' (`d` DateTime64(3, 'UTC') DEFAULT now(), `m` Map(String, Array(Nullable(Decimal(10, 2)))) CODEC(ZSTD(1)), \
            `weird name``x` LowCardinality(String) COMMENT 'a, b', INDEX i d TYPE minmax GRANULARITY 1, \
            PROJECTION p (SELECT d ORDER BY d)) ENGINE = ReplacingMergeTree(d) ORDER BY d
            """
        #expect(CreateQuery.columns(query) == [
            .init(name: "d", type: "DateTime64(3, 'UTC')"),
            .init(name: "m", type: "Map(String, Array(Nullable(Decimal(10, 2))))"),
            .init(name: "weird name`x", type: "LowCardinality(String)"),
        ])
        #expect(CreateQuery.engine(query) == "ReplacingMergeTree")
        #expect(CreateQuery.engine("CREATE TABLE a.b (x UInt8) ENGINE = Log") == "Log")
        #expect(CreateQuery.engine("CREATE MATERIALIZED VIEW a.v TO a.t AS SELECT 1") == "MaterializedView")
    }
}
