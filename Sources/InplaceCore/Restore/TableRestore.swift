import Foundation
import Logging

/// The events of one table, run in order: plan-table, create-table, drops, then downloads
/// (concurrent, bounded) each followed in order by its attach.
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

    func execute() async throws {
        guard try await planned() else { return }
        for try await create in stream([.createTable]) where create.state != .done {
            guard try await perform(create, check: { try await createTableDone(create) },
                                    action: { try await createTable(create) })
            else { return }  // without its table, nothing else of it can run
        }
        // Merges would replace parts while they are counted and attached: stopped on this table
        // while it is restored, started again after (also after a failure; not after a crash:
        // ClickHouse starts them again at its next restart, or the resumed run does).
        let partKinds: [EventKind] = [.dropPart, .downloadPart, .attachPart, .dropTable]
        let touchesParts = try await journal.nextUnfinished(run, database: planEvent.database, table: planEvent.table,
                                                            kinds: partKinds) != nil
        if touchesParts { try await client.execute("SYSTEM STOP MERGES \(qualified)") }
        do {
            try await restoreParts()
        } catch {
            if touchesParts {
                let client = self.client, qualified = self.qualified
                _ = await Task { try? await client.execute("SYSTEM START MERGES \(qualified)") }.value
            }
            throw error
        }
        if touchesParts { try await client.execute("SYSTEM START MERGES \(qualified)") }
    }

    /// This table's events of `kinds`, read from the journal a page at a time.
    func stream(_ kinds: [EventKind]) -> JournalEventStream {
        JournalEventStream(journal: journal, run: run, database: planEvent.database, table: planEvent.table, kinds: kinds)
    }

    /// The downloads and their attaches, then the drops once every attach of the table is done:
    /// a live part is dropped only when the backup's parts are in the table and verified, so a
    /// damaged or unreachable backup never costs live data. `--drop-first`: drops first, to free
    /// disk space before the downloads (trusting that parts listed in the backup will attach).
    private func restoreParts() async throws {
        if options.dropFirst { try await drops() }
        try await downloadAndAttach(DownloadAttachPairs(events: stream([.downloadPart, .attachPart])))
        guard !options.dropFirst else { return }
        let missing = try await journal.notDone(run, database: planEvent.database, table: planEvent.table,
                                                kinds: [.downloadPart, .attachPart])
        guard missing == 0 else {
            // Withheld, journaled as failed with the reason: `journal replay --failed` runs them
            // once the backup's parts attach.
            var withheld = 0
            for try await drop in stream([.dropPart, .dropTable]) where drop.state != .done && drop.state != .failed {
                try await journal.transition(drop.id, to: .failed, error: "not dropped: \(missing) step(s) bringing the backup's parts into this table did not finish; a live part is dropped only once every part of the backup is attached and verified. Fix what failed, then `inplace journal replay RUN --failed`")
                withheld += 1
            }
            if withheld > 0 {
                runner.logger.warning("\(planEvent.database).\(planEvent.table): \(withheld) live part(s) not dropped: the backup's parts are not all attached")
            }
            return
        }
        try await drops()
    }

    /// The drop-part steps, then a recreated table's drop-table (last in sequence; there is
    /// none with `--drop-first`).
    private func drops() async throws {
        for try await drop in stream([.dropPart, .dropTable]) where drop.state != .done && drop.state != .failed {
            if drop.kind == .dropTable {
                _ = try await perform(drop, check: { try await !tableExists(drop.detail ?? "") },
                                      action: { try await dropAside(drop) })
            } else {
                _ = try await perform(drop, check: { try await dropDone(drop) }, action: { try await dropPart(drop) })
            }
        }
    }

    // MARK: plan-table

    /// Plans the table's events when that has not happened yet; false when refused.
    private func planned() async throws -> Bool {
        if planEvent.state != .done {
            guard planEvent.state != .failed else { return false }
            try await journal.transition(planEvent.id, to: .started)
            var plan = try JSONDecoder().decode(TablePlan.self, from: Data((planEvent.detail ?? "").utf8))
            if plan.refused != nil, try await journal.transitions(planEvent.id).contains(where: { $0.to == .failed }) {
                // Replayed after a refusal: the operator may have fixed its cause, so the table
                // is planned again against the live state rather than refused from memory.
                plan = try await replanned() ?? plan
            }
            if let refused = plan.refused {
                try await journal.transition(planEvent.id, to: .failed, error: "refused: \(refused)")
                runner.logger.warning("\(planEvent.database).\(planEvent.table): refused: \(refused)")
                return false
            }
            let metadata = try await runner.source.tableMetadata(database: plan.database, table: plan.table)
            let backup = try await runner.source.metadata()
            let events = Self.events(for: plan, table: metadata, backup: backup, options: options,
                                     aside: asideName)
            try await journal.completePlanTable(planEvent.id, run: run, emitting: events,
                                                detail: "\(events.count) event(s)")
        }
        return true
    }

    /// The table planned again now, with the run's options; stored as the step's plan.
    private func replanned() async throws -> TablePlan? {
        let result = try await PlanBuilder(client: client).build(.init(
            source: runner.source, tables: .exactly(database: planEvent.database, table: planEvent.table),
            skipTables: [], options: PlanOptions(dropIfSchemaChanged: options.dropIfSchemaChanged, full: options.full,
                                                 ignoreDiskSpace: options.ignoreDiskSpace, dropFirst: options.dropFirst)))
        guard var table = result.plan.tables.first else { return nil }
        if table.refused == nil, let refused = result.plan.refused { table.refused = refused }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try await journal.replacePlan(planEvent.id, plan: String(decoding: try encoder.encode(table), as: UTF8.self))
        runner.logger.info("\(planEvent.database).\(planEvent.table): planned again: \(table.refused.map { "still refused: \($0)" } ?? "no longer refused")")
        return table
    }

    /// Where a recreated table's old copy waits until the new one is complete: a name of this
    /// journal's run and this table, short whatever the table's name.
    var asideName: String {
        var hash = CRC64()
        hash.update(Array("\(planEvent.database)\u{0}\(planEvent.table)".utf8))
        return ".inplace-old-" + runner.stagingPrefix(run) + String(hash.value, radix: 16)
    }

    /// The events a table plan emits, in execution order. A recreated table's old copy is kept
    /// under `aside` and dropped last (unless `--drop-first`: dropped before it is created).
    static func events(for plan: TablePlan, table: TableMetadata, backup: BackupMetadata, options: RestoreOptions,
                       aside: String) -> [NewEvent]
    {
        var events: [NewEvent] = []
        var sequence = 0
        func add(_ event: NewEvent) {
            var event = event
            sequence += 1
            event.sequence = sequence
            events.append(event)
        }
        let db = plan.database, name = plan.table
        if (plan.create || plan.recreate) && !options.dataOnly {
            let engine = backup.databases?.first { $0.name == db }?.engine ?? "Atomic"
            let statement = CreateStatement(
                database: "CREATE DATABASE IF NOT EXISTS \(ClickHouseSQL.identifier(db))"
                    + (engine.allSatisfy { $0.isLetter } ? " ENGINE = \(engine)" : ""),
                dropFirst: plan.recreate, table: table.query,
                aside: plan.recreate && !options.dropFirst ? aside : nil)
            add(NewEvent(kind: .createTable, database: db, table: name, detail: statement.json))
        } else if plan.create {
            return []  // --data: tables that do not exist are not created, nor filled
        }
        if options.schemaOnly { return events }
        for part in plan.drop {
            add(NewEvent(kind: .dropPart, database: db, table: name, part: part.name, disk: part.disk, bytes: part.bytes,
                         identity: part.identity))
        }
        func identity(_ backupPart: String) -> String? {
            plan.identity == "checksums"
                ? table.checksums?[backupPart].map { "crc64:\($0)" } : table.hash_of_all_files?[backupPart]
        }
        var live: [String: Int] = [:]
        for kept in plan.keep { if let id = identity(kept.backup) { live[id, default: 0] += 1 } }
        for part in plan.download {
            let id = part.identity ?? identity(part.name)
            var expected: Int?
            if let id {
                live[id, default: 0] += 1
                expected = live[id]
            }
            add(NewEvent(kind: .downloadPart, database: db, table: name, part: part.name, disk: part.disk,
                         bytes: part.bytes, identity: id))
            add(NewEvent(kind: .attachPart, database: db, table: name, part: part.name, disk: part.disk,
                         bytes: part.bytes, identity: id, expectedCount: expected))
        }
        if plan.recreate && !options.dataOnly && !options.dropFirst {
            add(NewEvent(kind: .dropTable, database: db, table: name, detail: aside))
        }
        return events
    }

    // MARK: Running one event

    /// Runs `event`: a started or interrupted one is first checked against reality (`check`);
    /// then `action` with retries. Returns whether it ended done. `holdDone`: its `done` is
    /// committed with the journal's next write (for steps whose effect `check` can see).
    @discardableResult
    func perform(_ event: JournalEvent, holdDone: Bool = false, check: () async throws -> Bool,
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
            try await journal.transition(event.id, to: .started, countAttempt: true)
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
        guard [.dropPart, .downloadPart, .attachPart].contains(event.kind) else { return }
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
