/// The journal's queries for `RunReport`: aggregates per table, and the steps with their times a
/// page at a time, so that a report of a run of any size never reads the run whole.
extension Journal {
    /// Per table of a run: its steps by state, and its finished downloads and drops (count, bytes).
    func reportTables(_ run: Int64) throws -> [RunReport.Table] {
        try read {
            try db.query("""
                SELECT database_name, table_name, count(*), sum(state = 'pending'), sum(state = 'started'),
                       sum(state = 'done'), sum(state = 'failed'), sum(state = 'interrupted'), sum(state = 'superseded'),
                       sum(kind = 'download-part' AND state = 'done'),
                       sum(CASE WHEN kind = 'download-part' AND state = 'done' THEN bytes ELSE 0 END),
                       sum(kind = 'drop-part' AND state = 'done'),
                       sum(CASE WHEN kind = 'drop-part' AND state = 'done' THEN bytes ELSE 0 END)
                FROM events WHERE run_id = ? GROUP BY database_name, table_name ORDER BY database_name, table_name
                """, bindings: [run]) { row in
                var table = RunReport.Table(database: row.string(0) ?? "", table: row.string(1) ?? "")
                table.steps = RunReport.StepCounts(
                    total: row.int(2), pending: row.int(3), started: row.int(4), done: row.int(5), failed: row.int(6),
                    interrupted: row.int(7), superseded: row.int(8))
                table.savings.downloadedParts = row.int(9)
                table.savings.downloadedBytes = row.int64(10)
                table.savings.droppedParts = row.int(11)
                table.savings.droppedBytes = row.int64(12)
                return table
            }
        }
    }

    /// What each table's plan (its `plan-table` step's detail, the plan as last made) keeps,
    /// re-sequences and downloads, summed by SQLite's JSON functions; the refusal, if any.
    func reportPlans(_ run: Int64) throws -> [TableKey: (savings: RunReport.Savings, refused: String?)] {
        func parts(_ list: String) -> String {
            """
            (SELECT count(*) FROM json_each(plan, '$.\(list)')),
            (SELECT coalesce(sum(json_extract(value, '$.bytes')), 0) FROM json_each(plan, '$.\(list)'))
            """
        }
        var plans: [TableKey: (savings: RunReport.Savings, refused: String?)] = [:]
        _ = try read {
            try db.query("""
                SELECT database_name, table_name, \(parts("keep")), \(parts("resequence")), \(parts("download")),
                       json_extract(plan, '$.refused')
                FROM (SELECT database_name, table_name, CASE WHEN json_valid(detail) THEN detail END AS plan
                      FROM events WHERE run_id = ? AND kind = 'plan-table')
                """, bindings: [run]) { row in
                var savings = RunReport.Savings()
                (savings.keptParts, savings.keptBytes) = (row.int(2), row.int64(3))
                (savings.resequencedParts, savings.resequencedBytes) = (row.int(4), row.int64(5))
                (savings.plannedDownloadParts, savings.plannedDownloadBytes) = (row.int(6), row.int64(7))
                plans[TableKey(row.string(0) ?? "", row.string(1) ?? "")] = (savings, row.string(8))
            }
        }
        return plans
    }

    /// A run's first and last transition times: its steps' first `pending` and last change
    /// (a step's `created_at` and `updated_at` are set with its first and its latest change).
    func reportWindow(_ run: Int64) throws -> (first: String?, last: String?) {
        try read {
            try db.query("SELECT min(created_at), max(updated_at) FROM events WHERE run_id = ?",
                         bindings: [run]) { ($0.string(0), $0.string(1)) }.first ?? (nil, nil)
        }
    }

    /// A page of the run's steps that began, after event `after`, in id order: each from its
    /// first transition to `started` to its last to an end state (nil while it has none).
    func reportSteps(_ run: Int64, after: Int64, limit: Int) throws -> [RunReport.Step] {
        try read {
            try db.query("""
                SELECT e.id, e.database_name, e.table_name, e.kind, e.state, e.part, e.attempts, e.last_error,
                       min(CASE WHEN t.to_state = 'started' THEN t.at END) AS began,
                       max(CASE WHEN t.to_state IN ('done', 'failed', 'interrupted', 'superseded') THEN t.at END)
                FROM events e JOIN transitions t ON t.event_id = e.id
                WHERE e.run_id = ? AND e.id > ? GROUP BY e.id HAVING began IS NOT NULL ORDER BY e.id LIMIT ?
                """, bindings: [run, after, Int64(limit)]) { row in
                RunReport.Step(
                    id: row.int64(0), table: TableKey(row.string(1) ?? "", row.string(2) ?? ""),
                    kind: EventKind(rawValue: row.string(3) ?? "") ?? .planTable,
                    state: EventState(rawValue: row.string(4) ?? "") ?? .pending, part: row.string(5),
                    attempts: row.int(6), error: row.string(7),
                    began: parseDate(row.string(8) ?? "")?.timeIntervalSince1970 ?? 0,
                    ended: row.string(9).flatMap(parseDate)?.timeIntervalSince1970)
            }
        }
    }
}
