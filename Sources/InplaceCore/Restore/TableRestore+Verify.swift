import Foundation

extension TableRestore {
    // MARK: verify-table

    /// The table's active parts compared with the backup's, with merges still stopped on it:
    /// per partition, the sequence of content identities in block order must be the backup's
    /// (so the multiset is equal and the order kept). Fails, naming the first differences.
    func verifyTable(_ event: JournalEvent) async throws -> ActionResult {
        let metadata = try await runner.source.tableMetadata(database: planEvent.database, table: planEvent.table)
        let plan = try await currentPlan()
        let crc = plan.identity == "checksums"
        var wanted: [String: [String]] = [:]
        let parts = (metadata.parts ?? [:]).values.joined().compactMap { PartName($0.name) }.sorted()
        for name in parts {
            let id = crc ? metadata.checksums?[name.name].map { "crc64:\($0)" } : metadata.hash_of_all_files?[name.name]
            wanted[name.partitionID, default: []].append(id ?? "unknown \(name.name)")
        }
        var have: [String: [String]] = [:]
        var names: [String: [String]] = [:]
        for part in try await activeParts() {
            have[part.partitionID, default: []].append(try identityOf(part, crc: crc))
            names[part.partitionID, default: []].append(part.name)
        }
        var differences: [String] = []
        for partition in Set(wanted.keys).union(have.keys).sorted() where wanted[partition] != have[partition] {
            let w = wanted[partition] ?? [], h = have[partition] ?? []
            if w.sorted() != h.sorted() {
                differences.append("partition \(partition): the backup has \(w.count) part(s), the table \(h.count) (\((names[partition] ?? []).prefix(5).joined(separator: ", "))), not the same contents")
            } else {
                differences.append("partition \(partition): the same parts in another block order (\((names[partition] ?? []).prefix(5).joined(separator: ", ")))")
            }
        }
        guard differences.isEmpty else {
            throw RestoreError("the table is not equal to the backup: \(differences.prefix(5).joined(separator: "; "))\(differences.count > 5 ? "; and \(differences.count - 5) more" : ""). See `inplace verify`; replay with `inplace journal replay RUN --failed` after fixing it")
        }
        TestCrash.afterEffect("verified \(qualified)")
        return ActionResult(detail: "equal to the backup: \(parts.count) part(s) in \(wanted.count) partition(s), in the backup's order")
    }
}
