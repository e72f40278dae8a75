/// Mutations and the in-place plan.
///
/// 1. The backup lists mutations that were unfinished when it was made (`mutations`):
///    clickhouse-backup re-applies them after the data; that is not built here, so the table is
///    refused, naming them, rather than restored without them.
/// 2. The live table has unfinished mutations (`system.mutations`, `is_done = 0`): they would go
///    on rewriting the parts the plan keeps, after the restore has compared them with the
///    backup's. Refused, with the KILL MUTATION statements to run; with `--kill-mutations` the
///    plan carries them as steps to kill instead. A table that is recreated (`--full`,
///    `--drop-if-schema-changed`) keeps none of its parts, so its live mutations do not matter.
extension Planner {
    /// Why the table is refused for mutations, or the live mutations to kill.
    static func mutationCheck(_ backup: BackupTableState, live: LiveState.Table?, recreate: Bool, options: PlanOptions)
        -> (refusal: String?, kill: [TablePlan.Mutation])
    {
        if !backup.mutations.isEmpty {
            return ("the backup lists \(backup.mutations.count) mutation(s) unfinished when it was made (\(listed(backup.mutations))); re-applying a backup's unfinished mutations is not built, so nothing was changed. Restore this table with clickhouse-backup, or restore it and run the mutations yourself", [])
        }
        guard let live, !recreate, !live.mutations.isEmpty else { return (nil, []) }
        if options.killMutations { return (nil, live.mutations) }
        let kills = live.mutations.prefix(3).map {
            "KILL MUTATION WHERE database = \(ClickHouseSQL.string(backup.database)) AND table = \(ClickHouseSQL.string(backup.table)) AND mutation_id = \(ClickHouseSQL.string($0.id))"
        }
        let more = live.mutations.count > 3 ? " (and the same for the others)" : ""
        return ("it has \(live.mutations.count) unfinished mutation(s) (\(listed(live.mutations))), which would go on changing the parts an in-place restore keeps; nothing was changed. Wait for them to finish, kill them (\(kills.joined(separator: "; "))\(more)), or pass --kill-mutations", [])
    }

    /// The first mutations, as `id: command`.
    private static func listed(_ mutations: [TablePlan.Mutation]) -> String {
        mutations.prefix(5).map { "\($0.id): \($0.command)" }.joined(separator: ", ")
            + (mutations.count > 5 ? ", and \(mutations.count - 5) more" : "")
    }
}
