import Foundation
import Testing

@testable import InplaceCore

/// A CREATE TABLE of db.t with these columns and this storage definition.
private func table(_ storage: String, columns: String = "(`a` UInt8, `b` String, `d` Date, `ver` UInt32, `sign` Int8)") -> String {
    "CREATE TABLE db.t \(columns) ENGINE = \(storage)"
}

/// The schema comparison beyond columns (engine and keys) and the mutation refusals, on plain
/// values. Statements marked "measured" are `create_table_query` as the test bed's 26.9 engine
/// wrote them.
@Suite("The planner's schema and mutation checks")
struct PlannerSchemaTests {
    /// Measured: every clause, odd names, codecs, defaults holding keywords in strings.
    static let wide = "CREATE TABLE probe.t1 UUID '5a1c4d0e-0000-4000-8000-000000000001' (`odd name` String DEFAULT 'ORDER BY x', `d` Date, `ver` UInt32 CODEC(Delta(4), ZSTD(3)), `n` Nullable(String), `lc` LowCardinality(String), `s` Int8, `k` UInt64 DEFAULT cityHash64(d, 'PARTITION BY (')) ENGINE = ReplacingMergeTree(ver) PARTITION BY toYYYYMM(d) PRIMARY KEY (k, d) ORDER BY (k, d, `odd name`) SAMPLE BY k TTL d + toIntervalYear(1) SETTINGS index_granularity = 4096, merge_with_ttl_timeout = 3600"

    /// Measured: columns named after keywords are written bare in the keys.
    static let keywords = "CREATE TABLE probe.v1 (`TTL` UInt8, `SETTINGS` UInt8, `ORDER` UInt8, `BY` UInt8, `COMMENT` UInt8) ENGINE = MergeTree PARTITION BY ORDER ORDER BY TTL SAMPLE BY TTL SETTINGS index_granularity = 8192"

    @Test("the same DDL written in other ways compares equal", arguments: [
        (wide, """
            CREATE TABLE probe.t1 UUID '5a1c4d0e-0000-4000-8000-0000000000ff'
            (
                `odd name` String DEFAULT 'ORDER BY x',
                d Date,
                "ver" UInt32 CODEC(Delta(4), ZSTD(3)),
                `n` Nullable(String),
                `lc` LowCardinality(String),
                `s` Int8,
                `k` UInt64 DEFAULT cityHash64(d, 'PARTITION BY (')
            )
            ENGINE = ReplacingMergeTree(`ver`)
            PARTITION BY toYYYYMM(`d`)
            PRIMARY KEY tuple(k, d)
            ORDER BY (`k`, `d`, `odd name`)
            SAMPLE BY (k)
            TTL d + toIntervalYear(2) DELETE WHERE `odd name` = 'SAMPLE BY'
            SETTINGS index_granularity = 8192 COMMENT 'ORDER BY nothing'
            """),
        (keywords, "CREATE TABLE probe.v1 (`TTL` UInt8, `SETTINGS` UInt8, `ORDER` UInt8, `BY` UInt8, `COMMENT` UInt8) ENGINE = MergeTree() PARTITION BY `ORDER` ORDER BY (`TTL`) SAMPLE BY `TTL`"),
        (table("MergeTree ORDER BY a SETTINGS index_granularity = 8192"), table("MergeTree() PRIMARY KEY a ORDER BY tuple(a) TTL d + toIntervalDay(1)")),
        (table("MergeTree ORDER BY (a, b)"), table("MergeTree ORDER BY tuple(a, b) PRIMARY KEY (a, b)")),
        (table("MergeTree ORDER BY tuple()"), table("MergeTree ORDER BY ()")),
        (table("MergeTree PARTITION BY (a % 4, b) ORDER BY ((a))"), table("MergeTree PARTITION BY tuple(a%4,b) ORDER BY a")),
        (table("CollapsingMergeTree(sign) PARTITION BY toStartOfInterval(d, toIntervalDay(1)) ORDER BY a"),
         table("CollapsingMergeTree(`sign`)\n  PARTITION BY toStartOfInterval( d , toIntervalDay( 1 ) )\n  ORDER BY a")),
    ])
    func equalDDL(backup: String, live: String) {
        #expect(Planner.schemaDifference(backup: backup, live: live) == nil)
        #expect(Planner.schemaDifference(backup: live, live: backup) == nil)
    }

    @Test("every compared part of the storage definition that differs is named, with both sides", arguments: [
        (table("MergeTree ORDER BY a"), table("ReplacingMergeTree ORDER BY a"), "its engine differs", "`MergeTree`", "`ReplacingMergeTree`"),
        (table("ReplacingMergeTree(ver) ORDER BY a"), table("ReplacingMergeTree ORDER BY a"), "its engine differs", "`ReplacingMergeTree(ver)`", "`ReplacingMergeTree`"),
        (table("CollapsingMergeTree(sign) ORDER BY a"), table("VersionedCollapsingMergeTree(sign, ver) ORDER BY a"), "its engine differs", "`CollapsingMergeTree(sign)`", "`VersionedCollapsingMergeTree(sign, ver)`"),
        (table("MergeTree PARTITION BY toYYYYMM(d) ORDER BY a"), table("MergeTree PARTITION BY toYYYYMMDD(d) ORDER BY a"), "its partition key (PARTITION BY) differs", "`toYYYYMM(d)`", "`toYYYYMMDD(d)`"),
        (table("MergeTree ORDER BY a"), table("MergeTree PARTITION BY a ORDER BY a"), "its partition key (PARTITION BY) differs", "`none`", "`a`"),
        (table("MergeTree ORDER BY (a, b)"), table("MergeTree ORDER BY (b, a)"), "its sorting key (ORDER BY) and primary key (PRIMARY KEY) differ", "`a, b`", "`b, a`"),
        (table("MergeTree PRIMARY KEY a ORDER BY (a, b)"), table("MergeTree ORDER BY (a, b)"), "its primary key (PRIMARY KEY) differs", "`a`", "`a, b`"),
        (table("MergeTree ORDER BY a SAMPLE BY a"), table("MergeTree ORDER BY a"), "its sampling key (SAMPLE BY) differs", "`a`", "`none`"),
        (keywords, keywords.replacingOccurrences(of: "ORDER BY TTL", with: "ORDER BY BY"), "its sorting key (ORDER BY) and primary key (PRIMARY KEY) differ", "`TTL`", "`BY`"),
    ])
    func differentDDL(backup: String, live: String, subject: String, backupSide: String, liveSide: String) throws {
        let difference = try #require(Planner.schemaDifference(backup: backup, live: live))
        #expect(difference.hasPrefix(subject + " from the backup's"), "\(difference)")
        #expect(difference.contains("the backup has \(backupSide)"), "\(difference)")
        #expect(difference.contains("the table has \(liveSide)"), "\(difference)")
    }

    @Test("a string or name holding clause keywords never starts a clause")
    func keywordsInsideStrings() {
        let backup = table("MergeTree ORDER BY a COMMENT 'PARTITION BY b ORDER BY b'")
        #expect(Planner.schemaDifference(backup: backup, live: table("MergeTree ORDER BY a")) == nil)
        #expect(Planner.schemaDifference(backup: Self.wide, live: Self.wide.replacingOccurrences(of: "DEFAULT 'ORDER BY x'", with: "DEFAULT 'ORDER BY y'")) == nil,
                "defaults are not compared (as before), and the string does not move the ORDER BY")
        let odd = "CREATE TABLE db.`ENGINE` (`ENGINE` UInt8, `x``y` String) ENGINE = MergeTree ORDER BY (`x``y`, ENGINE)"
        #expect(Planner.schemaDifference(backup: odd, live: odd.replacingOccurrences(of: "`x``y`", with: "`x\\`y`")) == nil)
        #expect(Planner.schemaDifference(backup: odd, live: odd.replacingOccurrences(of: "(`x``y`, ENGINE)", with: "ENGINE")) != nil)
    }

    @Test("several differences are listed together; a column difference keeps its wording")
    func severalDifferences() throws {
        let difference = try #require(Planner.schemaDifference(
            backup: table("ReplacingMergeTree(ver) PARTITION BY d ORDER BY a"), live: table("ReplacingMergeTree PARTITION BY a ORDER BY a")))
        #expect(difference.hasPrefix("its engine and partition key (PARTITION BY) differ from the backup's ("), "\(difference)")
        let columns = try #require(Planner.schemaDifference(backup: table("MergeTree ORDER BY a"),
                                                            live: table("MergeTree ORDER BY a", columns: "(`a` UInt16)")))
        #expect(columns.hasPrefix("its columns differ from the backup's (column 1:"), "\(columns)")
    }

    // MARK: The plan

    func backup(_ query: String, mutations: [TablePlan.Mutation] = []) -> BackupTableState {
        var state = BackupTableState(database: "db", table: "t", query: query,
                                     parts: [.init(name: "all_1_1_0", disk: "default", hash: "aa", checksumsCRC: nil, bytes: 10)])
        state.mutations = mutations
        return state
    }

    func live(_ query: String, mutations: [TablePlan.Mutation] = []) -> LiveState {
        let part = LiveState.Part(name: "all_1_1_0", partitionID: "all", disk: "default", hash: "aa", bytes: 10)
        return LiveState(databases: ["db": "Atomic"],
                         tables: [TableKey("db", "t"): .init(engine: "MergeTree", createQuery: query, parts: [part],
                                                            mutations: mutations)],
                         disks: ["default": 1 << 40])
    }

    @Test("a table recreated with another ORDER BY is refused in the plan, or recreated with --drop-if-schema-changed")
    func planRefusesOtherKeys() throws {
        let wanted = table("MergeTree ORDER BY a"), have = table("MergeTree ORDER BY b")
        let refused = Planner.plan(backup: [backup(wanted)], live: live(have)).tables[0]
        let reason = try #require(refused.refused)
        #expect(reason.hasPrefix("its sorting key (ORDER BY) and primary key (PRIMARY KEY) differ from the backup's"), "\(reason)")
        #expect(reason.contains("nothing was changed") && reason.contains("--drop-if-schema-changed"))
        #expect(refused.keep.isEmpty && refused.drop.isEmpty && refused.download.isEmpty && !refused.recreate)

        let forced = Planner.plan(backup: [backup(wanted)], live: live(have), options: PlanOptions(dropIfSchemaChanged: true)).tables[0]
        #expect(forced.refused == nil && forced.recreate && forced.download.map(\.name) == ["all_1_1_0"] && forced.keep.isEmpty)
    }

    static let mutations = [TablePlan.Mutation(id: "mutation_7.txt", command: "(UPDATE b = 'x' WHERE 1)"),
                            TablePlan.Mutation(id: "mutation_9.txt", command: "(DELETE WHERE a = 1)")]

    @Test("a live table with unfinished mutations is refused with their ids, commands and how to kill them")
    func liveMutationsRefuse() throws {
        let query = table("MergeTree ORDER BY a")
        let plan = Planner.plan(backup: [backup(query)], live: live(query, mutations: Self.mutations)).tables[0]
        let reason = try #require(plan.refused)
        #expect(reason.contains("2 unfinished mutation(s) (mutation_7.txt: (UPDATE b = 'x' WHERE 1), mutation_9.txt: (DELETE WHERE a = 1))"), "\(reason)")
        #expect(reason.contains("KILL MUTATION WHERE database = 'db' AND table = 't' AND mutation_id = 'mutation_7.txt'"), "\(reason)")
        #expect(reason.contains("nothing was changed") && reason.contains("--kill-mutations"))
        #expect(plan.keep.isEmpty && plan.killMutations.isEmpty)
    }

    @Test("with --kill-mutations the plan carries the live mutations to kill, and the table is not a no-op")
    func killMutationsOption() {
        let query = table("MergeTree ORDER BY a")
        let plan = Planner.plan(backup: [backup(query)], live: live(query, mutations: Self.mutations),
                                options: PlanOptions(killMutations: true)).tables[0]
        #expect(plan.refused == nil)
        #expect(plan.killMutations == Self.mutations)
        #expect(plan.keep.map(\.live) == ["all_1_1_0"] && plan.download.isEmpty && plan.drop.isEmpty)
        #expect(!plan.isNoOp, "killing the mutations is a change")
        let quiet = Planner.plan(backup: [backup(query)], live: live(query), options: PlanOptions(killMutations: true)).tables[0]
        #expect(quiet.isNoOp && quiet.killMutations.isEmpty)
    }

    @Test("a recreated table's live mutations do not matter: none of its parts are kept")
    func recreatedIgnoresLiveMutations() {
        let plan = Planner.plan(backup: [backup(table("MergeTree ORDER BY a"))],
                                live: live(table("MergeTree ORDER BY b"), mutations: Self.mutations),
                                options: PlanOptions(dropIfSchemaChanged: true)).tables[0]
        #expect(plan.refused == nil && plan.recreate && plan.killMutations.isEmpty)
        let full = Planner.plan(backup: [backup(table("MergeTree ORDER BY a"))],
                                live: live(table("MergeTree ORDER BY a"), mutations: Self.mutations),
                                options: PlanOptions(full: true)).tables[0]
        #expect(full.refused == nil && full.recreate && full.killMutations.isEmpty)
    }

    @Test("a backup that lists unfinished mutations is refused, also for a missing table and with --kill-mutations")
    func backupMutationsRefuse() throws {
        let query = table("MergeTree ORDER BY a")
        let missing = LiveState(databases: [:], tables: [:], disks: ["default": 1 << 40])
        for (state, options) in [(live(query), PlanOptions(killMutations: true)), (missing, PlanOptions()),
                                 (live(query), PlanOptions(full: true))] {
            let plan = Planner.plan(backup: [backup(query, mutations: [Self.mutations[1]])], live: state, options: options).tables[0]
            let reason = try #require(plan.refused)
            #expect(reason.contains("mutation_9.txt: (DELETE WHERE a = 1)") && reason.contains("not built"), "\(reason)")
            #expect(!plan.create && !plan.recreate && plan.download.isEmpty && plan.killMutations.isEmpty)
        }
    }

    @Test("a table plan journaled before killMutations existed decodes with none; a new one keeps them")
    func tablePlanDecoding() throws {
        let old = #"{"create":false,"createDatabase":false,"database":"db","download":[],"drop":[],"drift":null,"identity":"hash_of_all_files","keep":[{"backup":"all_1_1_0","live":"all_1_1_0"}],"recreate":false,"refused":null,"table":"t"}"#
        let decoded = try JSONDecoder().decode(TablePlan.self, from: Data(old.utf8))
        #expect(decoded.killMutations.isEmpty && decoded.keep.count == 1 && decoded.table == "t")
        var plan = decoded
        plan.killMutations = Self.mutations
        #expect(try JSONDecoder().decode(TablePlan.self, from: JSONEncoder().encode(plan)) == plan)
    }

    @Test("restore options write killMutations only when set, and read runs journaled without it")
    func restoreOptionsEncoding() throws {
        #expect(!RestoreOptions().json.contains("killMutations"), "runs without it keep the options text they had")
        let killing = RestoreOptions(killMutations: true)
        #expect(killing.json.contains("\"killMutations\":true"))
        #expect(try JSONDecoder().decode(RestoreOptions.self, from: Data(killing.json.utf8)) == killing)
        #expect(try JSONDecoder().decode(RestoreOptions.self, from: Data(RestoreOptions().json.utf8)).killMutations == false)
    }
}
