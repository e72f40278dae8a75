import Foundation
import Logging

/// The events of one table, run in order: plan-table, create-table, then the parts brought in
/// the backup's order (downloads run ahead, concurrent and bounded; each attach, and each
/// re-sequenced kept part's detach and attach, in order), then the drops, then verify-table.
///
/// 1. A resumed table is first checked against its plan: a part the plan keeps, or a step
///    attached, that is no longer active was merged (after a crash, at a server restart): the
///    table is planned again (its unfinished steps superseded), at most `maxReplans` times.
/// 2. Steps that may have had their effect are decided by `ResumeDecision` from what the journal
///    recorded and what ClickHouse and the disk show.
/// 3. Before the table is done, its active parts are compared with the backup's (verify-table).
struct TableRestore: Sendable {
    let runner: RestoreRunner
    let run: Int64
    let planEvent: JournalEvent
    let options: RestoreOptions
    let transfers: AsyncSemaphore
    let progress: RestoreProgress

    var journal: Journal { runner.journal }
    var client: ClickHouseClient { runner.client }
    var qualified: String { ClickHouseSQL.qualified(planEvent.database, planEvent.table) }

    /// Plans made again for one table in one process, at most.
    static let maxReplans = 3

    func execute() async throws {
        // A table whose steps all ended (done, or failed and waiting for a replay) is left as it
        // is: a resume carries on the others, and a finished table is never planned again.
        func unfinished() async throws -> Bool {
            try await journal.nextUnfinished(run, database: planEvent.database, table: planEvent.table) != nil
        }
        if planEvent.state == .done, try await !unfinished() { return }
        // One process changes a table at a time, whatever its journal: held until the table's
        // last step ends. Refused (held by another process), the error fails the table's next
        // step, naming the holder.
        let lock = try await runner.lockTable(planEvent.database, planEvent.table, run: run)
        defer { lock.handle.release() }
        guard try await planned(stale: lock.stale) else { return }
        guard try await unfinished() else { return }
        for try await create in stream([.createTable]) where create.state != .done {
            guard try await perform(create, check: { try await createTableDone(create) },
                                    action: { try await createTable(create) })
            else { return }  // without its table, nothing else of it can run
        }
        // Merges would replace parts while they are counted and attached: stopped on this table
        // while it is restored, started again after (also after a failure; not after a crash:
        // ClickHouse starts them again at its next restart, or the resumed run does).
        let partKinds: [EventKind] = [.dropPart, .downloadPart, .attachPart, .detachPart, .dropTable, .verifyTable,
                                      .killMutation]
        let touchesParts = try await journal.nextUnfinished(run, database: planEvent.database, table: planEvent.table,
                                                            kinds: partKinds) != nil
        // Stopped again here, under the table's lock, though the runner stopped them when the run
        // began: another run may have finished this table and started its merges meanwhile, and
        // a table created (or recreated) here is another table than the one the runner stopped.
        if touchesParts { try await client.execute("SYSTEM STOP MERGES \(qualified)") }
        do {
            var replans = 0
            // With merges stopped: a merge between the plan (or the last run) and now took parts
            // the plan names. One system.parts query; none for a table the run creates.
            var check = touchesParts
            // Planned before another run changed the table (its lock says so): planned again.
            var stale = planEvent.state == .done ? lock.stale : nil
            while true {
                do {
                    if let reason = stale {
                        stale = nil
                        throw TableNeedsReplan(reason: reason)
                    }
                    if check { try await checkStillAsPlanned() }
                    try await restoreParts()
                    break
                } catch let replan as TableNeedsReplan {
                    replans += 1
                    guard replans <= Self.maxReplans else {
                        throw RestoreError("\(replan.reason); planned again \(Self.maxReplans) times and the table kept changing: stop what merges or writes into it (SYSTEM STOP MERGES), then `inplace journal replay RUN --failed`")
                    }
                    try await self.replan(because: replan.reason)
                    check = false
                }
            }
        } catch {
            if touchesParts {
                let client = self.client, qualified = self.qualified
                _ = await Task { try? await client.execute("SYSTEM START MERGES \(qualified)") }.value
            }
            throw error
        }
        if touchesParts { try await client.execute("SYSTEM START MERGES \(qualified)") }
    }

    /// This table's events of `kinds` (superseded ones left out), read from the journal a page at a time.
    func stream(_ kinds: [EventKind]) -> JournalEventStream {
        JournalEventStream(journal: journal, run: run, database: planEvent.database, table: planEvent.table, kinds: kinds)
    }

    /// Mutations to kill, then the parts brought in the backup's order, then the drops once
    /// every attach of the table is done: a live part is dropped only when the backup's parts
    /// are in the table and verified, so a damaged or unreachable backup never costs live data.
    /// `--drop-first`: drops first, to free disk space before the downloads. Then verify-table.
    private func restoreParts() async throws {
        for try await kill in stream([.killMutation]) where kill.state != .done && kill.state != .failed {
            _ = try await perform(kill, check: { try await mutationGone(kill) }, action: { try await killMutation(kill) })
        }
        guard try await journal.notDone(run, database: planEvent.database, table: planEvent.table, kinds: [.killMutation]) == 0
        else {
            try await withhold([.dropPart, .dropTable, .detachPart, .attachPart, .downloadPart, .verifyTable],
                               because: "a mutation of the live table was not killed, and it would go on changing the parts the restore keeps")
            return
        }
        if options.dropFirst { try await drops() }
        try await bringParts(BringPairs(events: stream([.downloadPart, .detachPart, .attachPart])))
        let missing = try await journal.notDone(run, database: planEvent.database, table: planEvent.table,
                                                kinds: [.downloadPart, .attachPart, .detachPart, .killMutation])
        guard missing == 0 else {
            // Withheld, journaled as failed with the reason: `journal replay --failed` runs them
            // once the backup's parts attach.
            let withheld = try await withhold([.dropPart, .dropTable], because: "\(missing) step(s) bringing the backup's parts into this table did not finish; a live part is dropped only once every part of the backup is attached and verified")
            if withheld > 0 {
                runner.logger.warning("\(planEvent.database).\(planEvent.table): \(withheld) live part(s) not dropped: the backup's parts are not all attached")
            }
            try await withhold([.verifyTable], because: "\(missing) step(s) bringing the backup's parts did not finish")
            return
        }
        if !options.dropFirst { try await drops() }
        let undropped = try await journal.notDone(run, database: planEvent.database, table: planEvent.table,
                                                  kinds: [.dropPart, .dropTable])
        guard undropped == 0 else {
            try await withhold([.verifyTable], because: "\(undropped) drop step(s) did not finish")
            return
        }
        for try await verify in stream([.verifyTable]) where verify.state != .done && verify.state != .failed {
            _ = try await perform(verify, check: { false }, action: { try await verifyTable(verify) })
        }
    }

    /// Fails the table's unfinished steps of `kinds` with the reason and what to do; how many.
    @discardableResult
    func withhold(_ kinds: [EventKind], because reason: String) async throws -> Int {
        var withheld = 0
        for try await step in stream(kinds) where step.state != .done && step.state != .failed {
            let what = step.kind == .verifyTable ? "not verified"
                : step.kind == .dropPart || step.kind == .dropTable ? "not dropped" : "withheld"
            try await journal.transition(step.id, to: .failed, error: "\(what): \(reason). Fix what failed, then `inplace journal replay RUN --failed`")
            withheld += 1
        }
        return withheld
    }

    /// The drop-part steps, then a recreated table's drop-table (last in sequence; there is
    /// none with `--drop-first`).
    private func drops() async throws {
        for try await drop in stream([.dropPart, .dropTable]) where drop.state != .done && drop.state != .failed {
            if drop.kind == .dropTable {
                _ = try await perform(drop, check: { try await !tableExists(drop.detail ?? "") },
                                      action: { try await dropAside(drop) })
            } else {
                _ = try await perform(drop, check: { try await dropSettled(drop) },
                                      action: { try await dropPart(drop) })
            }
        }
    }

    // MARK: Running one event

    /// Runs `event`: a started or interrupted one is first checked against reality (`check`);
    /// then `action` with retries. Returns whether it ended done. `holdDone`: its `done` is
    /// committed with the journal's next write (for steps whose effect `check` can see).
    /// `holdStart`: its first `started` is held too, and `action` commits it (`journal.flush()`)
    /// before its effect can be seen (a download, before its rename into detached/).
    @discardableResult
    func perform(_ event: JournalEvent, holdDone: Bool = false, holdStart: Bool = false, check: () async throws -> Bool,
                 action: () async throws -> ActionResult) async throws -> Bool
    {
        var attempt = 0
        while true {
            attempt += 1
            // A step that may have had its effect (begun before, retried, replayed) is checked
            // against reality before it runs again.
            if event.state == .started || event.state == .interrupted || event.attempts > 0 || attempt > 1 {
                if try await check() {
                    try await journal.transition(event.id, to: .done, detail: "found done when checked before running again")
                    await counted(event)
                    return true
                }
            }
            if holdStart && attempt == 1 && event.state == .pending && event.attempts == 0 {
                journal.hold(event.id, to: .started, countAttempt: true)
            } else {
                try await journal.transition(event.id, to: .started, countAttempt: true)
            }
            do {
                let result = try await action()
                if holdDone {
                    journal.hold(event.id, to: .done, detail: result.detail, newPart: result.newPart, path: result.path)
                } else {
                    try await journal.transition(event.id, to: .done, detail: result.detail, newPart: result.newPart,
                                                 path: result.path)
                }
                await counted(event)
                return true
            } catch {
                if error is TableNeedsReplan { throw error }  // left started: the new plan supersedes it
                if Self.isCancellation(error) {
                    try? await journal.transition(event.id, to: .interrupted, detail: "stopped by a signal")
                    throw CancellationError()
                }
                let retryable = Self.isRetryable(error) && attempt < runner.retry.maxAttempts
                if !retryable {
                    try await journal.transition(event.id, to: .failed, error: "\(error)")
                    runner.logger.error("\(event.kind.rawValue) \(event.database).\(event.table) \(event.part ?? ""): \(error)")
                    return false
                }
                // Still started: a stop during the pause leaves a step that resume checks and redoes.
                try await journal.transition(event.id, to: .started, detail: "attempt \(attempt) failed, retrying: \(error)")
                try await Task.sleep(for: runner.retry.delay(afterAttempt: attempt))
            }
        }
    }

    /// Progress counts part steps (drops, downloads, attaches), as its totals do.
    private func counted(_ event: JournalEvent) async {
        guard [.dropPart, .downloadPart, .attachPart, .detachPart].contains(event.kind) else { return }
        await progress.done(bytes: event.kind == .downloadPart ? event.bytes : 0)
    }

    struct ActionResult {
        var detail: String?
        var newPart: String?
        var path: String?
    }

    static func isCancellation(_ error: any Error) -> Bool {
        if error is CancellationError { return true }
        if let error = error as? ClickHouseError, error.kind == .cancelled { return true }
        if let error = error as? S3Error, error.kind == .cancelled { return true }
        return Task.isCancelled
    }

    static func isRetryable(_ error: any Error) -> Bool {
        switch error {
        case let error as ClickHouseError: error.isRetryable
        case let error as S3Error: error.isRetryable
        case let error as HTTPError: error.isRetryable
        case let error as ArchiveError: error.kind == .corrupt && error.message.contains("download failed")
        default: false
        }
    }
}

/// What a create-table event runs (journaled as JSON in the event).
struct CreateStatement: Codable {
    var database: String
    /// The table exists and is replaced: dropped first, or, with `aside`, renamed to it.
    var dropFirst: Bool
    var table: String
    var aside: String?

    var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }
}

/// A restore step that cannot go on, with what to do.
struct RestoreError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The table no longer holds what its plan was made from (a merge took parts the plan names):
/// its unfinished steps are superseded and it is planned again.
struct TableNeedsReplan: Error, CustomStringConvertible {
    let reason: String
    var description: String { reason }
}
