import Foundation

extension RestoreRunner {
    /// Before `restore --new-run` plans: what the unfinished runs of `backup` in this journal
    /// left in tables' `detached/` folders is put right, so that the new plan sees each table
    /// whole and no folder blocks its downloads. A kept part such a run detached (to re-sequence
    /// it) and did not attach again is attached back; a part it downloaded and did not attach
    /// is removed (the new plan downloads what it needs). Only folders the run's own steps made
    /// are touched: a download refuses to start over a folder that is not its own, and a detach
    /// moves a live part to `detached/<its name>` only.
    public func releaseUnfinished(backup: String) async throws {
        let runs = try await journal.runs().filter {
            $0.backup == backup && [.running, .interrupted, .partlyFailed].contains($0.state)
        }
        guard !runs.isEmpty else { return }
        try await requireWriter(tables: [])
        let tables = try await ClickHouseCatalog(client: client).tables()
        for run in runs {
            let events = try await journal.events(run.id)
            for (index, step) in events.enumerated() where step.attempts > 0 && step.state != .superseded
                && (step.kind == .detachPart || step.kind == .downloadPart)
            {
                // The attach that follows the step in its table.
                let attach = events[(index + 1)...].first {
                    $0.kind == .attachPart && $0.database == step.database && $0.table == step.table && $0.sequence > step.sequence
                }
                guard attach?.state != .done, let part = step.part,
                      let table = tables.first(where: { $0.database == step.database && $0.name == step.table }),
                      let folder = table.dataPaths.map({ ($0.hasSuffix("/") ? $0 : $0 + "/") + "detached/" + part })
                        .first(where: { FileSystem.isFolder($0) })
                else { continue }
                let qualified = ClickHouseSQL.qualified(step.database, step.table)
                if step.kind == .detachPart {
                    try await client.execute("ALTER TABLE \(qualified) ATTACH PART \(ClickHouseSQL.string(part))")
                    logger.info("run \(run.id): kept part \(part) of \(qualified), detached to re-sequence it, attached back before a new run")
                } else {
                    try FileManager.default.removeItem(atPath: folder)
                    logger.info("run \(run.id): its download of \(part) into \(qualified)'s detached/ removed before a new run")
                }
            }
        }
    }
}
