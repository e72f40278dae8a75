/// Superseded runs (`restore --new-run`, journal schema 3).
///
/// 1. `supersedeUnfinishedRuns(backup:)`, in one transaction: every unfinished run (running,
///    interrupted, partly failed) of that backup in this journal becomes `superseded`, and so do
///    its events that are neither done nor superseded already, each with a transition whose
///    detail names the run that superseded it: `run superseded by run N`. N is the id the
///    caller's next `createRun` gets (a run's id is the greatest so far plus one, and the caller
///    holds the journal's lock), so the caller supersedes right before it creates the new run.
/// 2. The run's last event always carries that transition (one to its own state when it was
///    done or already superseded): a run's `supersededBy` is read from there, one indexed
///    lookup per run, without scanning the run's events.
/// 3. Nothing picks a superseded run again: `unfinishedRun` skips it and `resumableRun`
///    refuses it, naming the run that superseded it.
extension Journal {
    static let supersededDetail = "run superseded by run "

    /// The columns `run(_:)` reads, in its order; the tenth is the run that superseded it.
    static let runSelect = """
        SELECT r.id, r.backup, r.source, r.options, r.tool_version, r.state, r.started_at, r.updated_at, r.finished_at,
               CASE WHEN r.state = 'superseded' THEN (
                   SELECT CAST(substr(t.detail, \(supersededDetail.count + 1)) AS INTEGER) FROM transitions t
                   WHERE t.event_id = (SELECT max(e.id) FROM events e WHERE e.run_id = r.id)
                     AND t.detail LIKE '\(supersededDetail)%' ORDER BY t.id DESC LIMIT 1)
               END,
               r.location
        FROM runs r
        """

    /// Marks the unfinished runs of `backup` superseded by the run created next (see 1. above).
    /// Returns them, oldest first, and that next run's id. Runs of other backups, and runs that
    /// ended (done, failed), are left as they are.
    @discardableResult
    public func supersedeUnfinishedRuns(backup: String) throws -> (runs: [Int64], by: Int64) {
        try write {
            let next = (try db.queryScalarInt("SELECT coalesce(max(id), 0) + 1 FROM runs") ?? 1)
            let runs = try db.query("""
                SELECT id FROM runs WHERE backup = ? AND state IN ('running', 'interrupted', 'partly_failed') ORDER BY id
                """, bindings: [backup]) { $0.int64(0) }
            let now = Self.now()
            let detail = "\(Self.supersededDetail)\(next) (restore --new-run)"
            for run in runs {
                // The record on the last event when the bulk below will not reach it.
                try db.run("""
                    INSERT INTO transitions (event_id, at, from_state, to_state, detail)
                    SELECT id, ?, state, state, ? FROM events
                    WHERE id = (SELECT max(id) FROM events WHERE run_id = ?) AND state IN ('done', 'superseded')
                    """, bindings: [now, detail, run])
                try db.run("""
                    INSERT INTO transitions (event_id, at, from_state, to_state, detail)
                    SELECT id, ?, state, 'superseded', ? FROM events WHERE run_id = ? AND state NOT IN ('done', 'superseded')
                    """, bindings: [now, detail, run])
                try db.run("""
                    UPDATE events SET state = 'superseded', updated_at = ? WHERE run_id = ? AND state NOT IN ('done', 'superseded')
                    """, bindings: [now, run])
                try db.run("UPDATE runs SET state = 'superseded', updated_at = ?, finished_at = ? WHERE id = ?",
                           bindings: [now, now, run])
            }
            return (runs, next)
        }
    }

    /// The run `id`, to resume or replay: refused when the journal lacks it or it was superseded.
    public func resumableRun(_ id: Int64) throws -> JournalRun {
        guard let run = try run(id) else {
            throw JournalError(.notFound, "the journal \(path) has no run \(id); see inplace journal list")
        }
        guard run.state != .superseded else {
            let by = run.supersededBy.map { "run \($0)" } ?? "a later run"
            throw JournalError(.superseded(by: run.supersededBy),
                               "run \(id) of \(run.backup) was superseded by \(by) (restore --new-run): it is never resumed or replayed; see inplace journal show \(run.supersededBy ?? id)")
        }
        return run
    }
}
