import Foundation

/// Kept parts re-sequenced in a batch: a row of them (one partition, steps not begun) detached
/// by one `ALTER TABLE ... DETACH PART 'a', DETACH PART 'b', ...` and attached again by one
/// `ATTACH PART 'a', ATTACH PART 'b', ...`, which ClickHouse executes in order (each ATTACH
/// takes the next block number, so the backup's order holds; measured on the 26.9 engine). The
/// journal sees every step as it would one at a time, a transaction per change of the batch:
///
/// 1. every detach `started` (one commit); the DETACH statement;
/// 2. every detach `done` and every attach `started` (one commit); the ATTACH statement;
/// 3. every attach `attached as X` (one commit); one system.parts query checks every hash;
/// 4. every attach `done` (held for the journal's next write).
///
/// A kill between any two is resumed step by step (`ResumeDecision`), as for one part. A
/// statement that fails (even halfway: its earlier commands stay applied) ends the batch: the
/// caller runs each step on its own, from what the journal recorded and the table shows.
extension TableRestore {
    /// Whether the batch ended with every part attached again and checked.
    func resequence(_ batch: [(part: PartName, pair: BringPairs.Element)]) async throws -> Bool {
        let names = batch.map(\.part.name)
        // One query_id for each statement; a fallback waits for it to end before observing.
        let statement = queryID(batch[0].pair.first)
        do {
            try await journal.transition(batch.map { .init(event: $0.pair.first.id, state: .started, countAttempt: true) })
            try await client.execute("ALTER TABLE \(qualified) " + names.map { "DETACH PART \(ClickHouseSQL.string($0))" }.joined(separator: ", "),
                                     settings: ["query_id": statement])
            TestCrash.afterEffect("DETACH PART \(names.joined(separator: ", "))")
            try await journal.transition(
                batch.map { .init(event: $0.pair.first.id, state: .done, detail: "detached, to attach again in the backup's order") }
                + batch.map { .init(event: $0.pair.attach.id, state: .started, countAttempt: true) })
            for _ in batch { await progress.done() }
            let answer = try await client.execute(
                "ALTER TABLE \(qualified) " + names.map { "ATTACH PART \(ClickHouseSQL.string($0))" }.joined(separator: ", "),
                settings: ["alter_partition_verbose_result": "1", "query_id": statement + "-attach"])
            TestCrash.afterEffect("ATTACH PART \(names.joined(separator: ", "))")
            // command_type, partition_id, part_name, old_part_name: one row per part, in order.
            let attached = answer.split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false) }
            guard attached.count == batch.count,
                  zip(attached, names).allSatisfy({ $0.count >= 4 && String($0[3]) == $1 && PartName(String($0[2])) != nil })
            else {
                runner.logger.warning("\(qualified): ATTACH PART of \(names.count) parts answered \(answer.prefix(200)); each is checked on its own")
                return false
            }
            let newNames = attached.map { String($0[2]) }
            try await journal.transition(zip(batch, newNames).map {
                .init(event: $0.pair.attach.id, state: .started, detail: "attached as \($1)", newPart: $1)
            })
            let live = Dictionary(try await activeParts(partition: batch[0].part.partitionID).map { ($0.name, $0) },
                                  uniquingKeysWith: { first, _ in first })
            for ((_, pair), name) in zip(batch, newNames) {
                guard let part = live[name] else { return false }
                if let identity = pair.attach.identity, try identityOf(part, crc: identity.hasPrefix("crc64:")) != identity { return false }
            }
            TestCrash.afterEffect("checked \(newNames.joined(separator: ", "))")
            for ((_, pair), name) in zip(batch, newNames) {
                journal.hold(pair.attach.id, to: .done, detail: "attached as \(name), verified", newPart: name)
                await progress.done()
            }
            return true
        } catch {
            if Self.isCancellation(error) { throw CancellationError() }
            guard error is ClickHouseError || error is BackupError else { throw error }
            runner.logger.warning("\(qualified): re-sequencing \(names.count) parts at once failed (\(error)); each is run on its own")
            // The statement may still run on the server: its effect is observed once it ended.
            for _ in 0..<Self.statementWaits {
                guard try await runner.statementsRunning(prefix: statement) else { return false }
                try await Task.sleep(for: .seconds(1))
            }
            throw RestoreError("a statement of step \(batch[0].pair.first.id) is still running on the server after \(Self.statementWaits) s; wait for it (system.processes), then resume")
        }
    }
}
