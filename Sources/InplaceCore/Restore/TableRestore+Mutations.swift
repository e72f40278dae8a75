import Foundation

extension TableRestore {
    // MARK: kill-mutation

    /// Kills an unfinished mutation of the live table (`--kill-mutations`); the step's detail is its id.
    func killMutation(_ event: JournalEvent) async throws -> ActionResult {
        let id = event.detail ?? ""
        try await client.execute(
            "KILL MUTATION WHERE database = {db:String} AND table = {t:String} AND mutation_id = {m:String}",
            parameters: ["db": event.database, "t": event.table, "m": id])
        TestCrash.afterEffect("KILL MUTATION \(id)")
        guard try await mutationGone(event) else {
            throw RestoreError("the mutation \(id) of \(qualified) is still unfinished after KILL MUTATION; look at system.mutations, then replay")
        }
        return ActionResult(detail: "killed mutation \(id)")
    }

    /// Whether the mutation no longer runs (killed, or finished).
    func mutationGone(_ event: JournalEvent) async throws -> Bool {
        let count = try await client.execute(
            "SELECT count() FROM system.mutations WHERE database = {db:String} AND table = {t:String} AND mutation_id = {m:String} AND is_done = 0",
            parameters: ["db": event.database, "t": event.table, "m": event.detail ?? ""])
        return Int(count.trimmingCharacters(in: .whitespacesAndNewlines)) == 0
    }
}
