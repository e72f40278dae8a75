import Foundation

/// The kill-mutation step (`--kill-mutations`): a live table's unfinished mutation would go on
/// rewriting the parts an in-place restore keeps, so it is killed before the table's parts are
/// touched. The event's `detail` holds the mutation's id; the table is the event's.
///
/// Measured on 26.9 (chdb), for a mutation waiting behind `SYSTEM STOP MERGES` and for one that
/// fails on every try: KILL MUTATION answers `kill_status` `waiting` and the mutation is gone
/// from `system.mutations` when it returns, with SYNC and (on MergeTree) without; a second kill
/// of the same id answers no rows. SYNC makes it wait where the kill is slower (a mutation
/// in the middle of a large part). No client ever waits for a mutation itself (no
/// `mutations_sync`): behind stopped merges that wait can hang the engine.
extension TableRestore {
    // MARK: kill-mutation

    /// Kills an unfinished mutation of the live table; the step's detail is its id.
    func killMutation(_ event: JournalEvent) async throws -> ActionResult {
        let id = try Self.mutationID(event)
        try await client.execute(
            "KILL MUTATION WHERE database = {db:String} AND table = {t:String} AND mutation_id = {m:String} SYNC",
            parameters: ["db": event.database, "t": event.table, "m": id])
        TestCrash.afterEffect("KILL MUTATION \(id)")
        guard try await mutationGone(event) else {
            throw RestoreError("the mutation \(id) of \(qualified) is still unfinished after KILL MUTATION; look at its latest_fail_reason in system.mutations, kill it by hand (KILL MUTATION WHERE database = \(ClickHouseSQL.string(event.database)) AND table = \(ClickHouseSQL.string(event.table)) AND mutation_id = \(ClickHouseSQL.string(id))), then `inplace journal replay RUN --failed`")
        }
        return ActionResult(detail: "killed mutation \(id)")
    }

    /// Whether the mutation no longer runs (killed, or finished: a finished mutation has
    /// rewritten parts, which the table's verify step sees).
    func mutationGone(_ event: JournalEvent) async throws -> Bool {
        let id = try Self.mutationID(event)
        let count = try await client.execute(
            "SELECT count() FROM system.mutations WHERE database = {db:String} AND table = {t:String} AND mutation_id = {m:String} AND is_done = 0",
            parameters: ["db": event.database, "t": event.table, "m": id])
        return Int(count.trimmingCharacters(in: .whitespacesAndNewlines)) == 0
    }

    /// The step's mutation id; an empty one would otherwise read as "gone" and be reported done.
    private static func mutationID(_ event: JournalEvent) throws -> String {
        guard let id = event.detail, !id.isEmpty else {
            throw RestoreError("kill-mutation step \(event.id) of \(event.database).\(event.table) names no mutation (its detail is empty); plan the table again with a new run (inplace restore --new-run --kill-mutations NAME)")
        }
        return id
    }
}
