import Foundation

extension TableRestore {
    // MARK: verify-table

    /// The table's active parts compared with the backup's, with merges still stopped on it
    /// (`TableVerifier`, one system.parts query): the multiset of (partition, identity), rows
    /// where the backup records them, and the block order of each partition. Fails, naming the
    /// first differences; `inplace verify` shows all of them.
    func verifyTable(_ event: JournalEvent) async throws -> ActionResult {
        let metadata = try await runner.source.tableMetadata(database: planEvent.database, table: planEvent.table)
        let comparison = try await TableVerifier(client: client, limit: 5)
            .compare(database: planEvent.database, table: planEvent.table, backup: metadata)
        guard comparison.isEqual else {
            let listed = comparison.differences.map(\.description).joined(separator: "; ")
            let more = comparison.differenceCount > comparison.differences.count
                ? "; and \(comparison.differenceCount - comparison.differences.count) more" : ""
            throw RestoreError("the table is not equal to the backup (\(comparison.differenceCount) difference(s)): \(listed)\(more). `inplace verify` lists them; fix the table, then `inplace journal replay RUN --failed`")
        }
        TestCrash.afterEffect("verified \(qualified)")
        return ActionResult(detail: "equal to the backup: \(comparison.backupParts) part(s), by \(comparison.identityKind), in the backup's block order")
    }
}
