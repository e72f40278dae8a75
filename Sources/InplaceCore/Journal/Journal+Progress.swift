import Foundation

/// A run's progress as the journal has it, read with three aggregate queries whatever the
/// number of steps: what `--metrics-file` writes and `journal show --follow` draws.
public struct RunProgress: Sendable, Equatable {
    public struct Steps: Sendable, Equatable {
        public var count = 0
        public var bytes: Int64 = 0
    }

    public var run: JournalRun
    /// Steps (and their bytes) by kind and state.
    public var steps: [EventKind: [EventState: Steps]] = [:]
    /// Tables the run changes, and those with every step done (or superseded).
    public var tables = 0
    public var tablesDone = 0
    /// Kept parts of the tables planned so far (from their plans): what in place did not fetch.
    public var keptParts = 0
    public var keptBytes: Int64 = 0
    /// Which plans the kept figures were summed over (their count, the sum of their event ids and
    /// the latest time one was written: a replan rewrites its plan in place): while it stays the
    /// same, a later read reuses them instead of parsing every plan again.
    public var keptFrom = KeptSource()
    public struct KeptSource: Sendable, Equatable {
        public var plans = 0
        public var idSum: Int64 = 0
        public var lastWritten = ""
    }
    /// How long the queries held the journal, and their thread CPU time (its held transitions'
    /// commit, which would have come anyway, left out): what reading the progress costs the run.
    public var queryTime: Duration = .zero
    public var queryCPU: Duration = .zero
    /// Per table: steps, done, failed (for `--follow`; nil when not asked for).
    public var perTable: [(database: String, table: String, events: Int, done: Int, failed: Int)]?

    public func count(_ kind: EventKind, _ state: EventState) -> Int { steps[kind]?[state]?.count ?? 0 }
    public func bytes(_ kind: EventKind, _ state: EventState) -> Int64 { steps[kind]?[state]?.bytes ?? 0 }
    public func count(_ state: EventState) -> Int { steps.values.reduce(0) { $0 + ($1[state]?.count ?? 0) } }
    public var total: Int { steps.values.reduce(0) { $0 + $1.values.reduce(0) { $0 + $1.count } } }

    public static func == (lhs: RunProgress, rhs: RunProgress) -> Bool {
        lhs.run == rhs.run && lhs.steps == rhs.steps && lhs.tables == rhs.tables && lhs.tablesDone == rhs.tablesDone
            && lhs.keptParts == rhs.keptParts && lhs.keptBytes == rhs.keptBytes
            && lhs.perTable.map { $0.map { "\($0)" } } == rhs.perTable.map { $0.map { "\($0)" } }
    }
}

extension Journal {
    /// The progress of `run`, or nil when the journal has no such run. `perTable` adds one row
    /// per table (one more grouped query). `previous`, an earlier read of the same run, lends its
    /// kept figures when no plan was done or written again since: a writer every few seconds then
    /// parses the plans only when they changed.
    public func progress(_ run: Int64, perTable: Bool = false, previous: RunProgress? = nil) throws -> RunProgress? {
        guard let found = try self.run(run) else { return nil }
        return try read {
            let began = ContinuousClock.now, beganCPU = Meter.threadCPU()
            var progress = RunProgress(run: found)
            try db.query("""
                SELECT kind, state, count(*), sum(bytes) FROM events WHERE run_id = ? GROUP BY kind, state
                """, bindings: [run]) { row in
                guard let kind = EventKind(rawValue: row.string(0) ?? ""),
                      let state = EventState(rawValue: row.string(1) ?? "") else { return }
                progress.steps[kind, default: [:]][state] = .init(count: row.int(2), bytes: row.int64(3))
            }
            try db.query("""
                SELECT count(*), coalesce(sum(open = 0), 0) FROM (
                    SELECT sum(state NOT IN ('done', 'superseded')) AS open FROM events WHERE run_id = ?
                    GROUP BY database_name, table_name)
                """, bindings: [run]) { row in
                progress.tables = row.int(0)
                progress.tablesDone = row.int(1)
            }
            try db.query("""
                SELECT count(*), coalesce(sum(id), 0), coalesce(max(updated_at), '') FROM events
                WHERE run_id = ? AND kind = 'plan-table' AND state = 'done'
                """, bindings: [run]) { row in
                progress.keptFrom = .init(plans: row.int(0), idSum: row.int64(1), lastWritten: row.string(2) ?? "")
            }
            if let previous, previous.run.id == run, previous.keptFrom == progress.keptFrom {
                progress.keptParts = previous.keptParts
                progress.keptBytes = previous.keptBytes
            } else {
                // Plans hold their kept parts: counted inside SQLite, nothing decoded here.
                // Each kept and re-sequenced part records its size (`bytes`) in the plan.
                try db.query("""
                    SELECT count(*), coalesce(sum(json_extract(kept.value, '$.bytes')), 0)
                    FROM events, json_each(events.detail, '$.keep') AS kept
                    WHERE run_id = ?1 AND kind = 'plan-table' AND state = 'done' AND json_valid(detail)
                    UNION ALL
                    SELECT count(*), coalesce(sum(json_extract(kept.value, '$.bytes')), 0)
                    FROM events, json_each(events.detail, '$.resequence') AS kept
                    WHERE run_id = ?1 AND kind = 'plan-table' AND state = 'done' AND json_valid(detail)
                    """, bindings: [run]) { row in
                    progress.keptParts += row.int(0)
                    progress.keptBytes += row.int64(1)
                }
            }
            if perTable {
                progress.perTable = try db.query("""
                    SELECT database_name, table_name, sum(state != 'superseded'), sum(state = 'done'), sum(state = 'failed')
                    FROM events WHERE run_id = ? GROUP BY database_name, table_name ORDER BY database_name, table_name
                    """, bindings: [run]) { ($0.string(0) ?? "", $0.string(1) ?? "", $0.int(2), $0.int(3), $0.int(4)) }
            }
            progress.queryTime = ContinuousClock.now - began
            progress.queryCPU = Meter.threadCPU() - beganCPU
            return progress
        }
    }
}
