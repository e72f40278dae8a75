import Foundation
import Logging

/// Executes a restore as journaled events, and resumes one from its journal.
///
/// 1. A run is journaled with one `plan-table` event per table to change (its `TablePlan` as
///    JSON in the event).
/// 2. Tables run several at once. A table's `plan-table` emits its events (create-table, drops,
///    then download/attach pairs in partition and min-block order) in the transaction that marks
///    it done; a refused table's `plan-table` fails with the reason.
/// 3. Per table: create (or recreate) the table, then every drop, then downloads (bounded across
///    the run) into a staging folder on the table's disk, renamed into `detached/` when
///    complete, each followed in order by its ATTACH PART, verified (hash equal to the backup's,
///    CHECK TABLE ... PART passes) before it is done.
/// 4. Each event is journaled `started` before its side effect and `done` or `failed` after it;
///    failures are retried with backoff a bounded number of times. Cancellation marks events in
///    flight `interrupted`.
/// 5. Resume re-reads the events, checks each started or interrupted one against ClickHouse and
///    the disk (see journal-schema/README.md), and carries on.
public struct RestoreRunner: Sendable {
    let client: ClickHouseClient
    let source: any BackupSource
    let journal: Journal
    let disks: [ClickHouseCatalog.Disk]
    let retry: RetryPolicy
    let logger: Logger
    /// How long a table's lock held by another process is waited for (`--wait-lock`).
    let waitLock: Duration
    /// What the table locks name this process as: `restore`, `resume`, `journal replay`.
    let command: String
    /// `--metrics-file`: written while the run goes on and at its end.
    let metrics: RestoreMetrics?

    public init(client: ClickHouseClient, source: any BackupSource, journal: Journal, disks: [ClickHouseCatalog.Disk],
                retry: RetryPolicy = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(500), maxDelay: .seconds(10)),
                waitLock: Duration = .zero, command: String = "restore", metrics: RestoreMetrics? = nil,
                logger: Logger = Logger(label: "inplace.restore")) {
        self.metrics = metrics
        self.client = client
        self.source = source
        self.journal = journal
        self.disks = disks
        self.retry = retry
        self.waitLock = waitLock
        self.command = command
        self.logger = logger
    }

    /// Takes a table's lock (TableLock.swift) for this run. `stale` names another run that
    /// held it after this run began: that run changed the table, so this run's plan of it is
    /// no longer to be trusted.
    func lockTable(_ database: String, _ table: String, run: Int64) async throws -> (handle: TableLockHandle, stale: String?) {
        let holder = TableLockHolder(journal: journal.path, run: run, command: command)
        let handle = try await TableLocks(layout: LocalBackupLayout(disks: disks))
            .acquire(database: database, table: table, holder: holder, wait: waitLock)
        // Another run's holder that released the lock after this run began (or died holding it).
        guard let previous = handle.previous, previous.journal != nil,
              previous.journal != journal.path || previous.run != run,
              let started = try await journal.run(run)?.startedAt, (previous.releasedAt ?? started) >= started
        else { return (handle, nil) }
        return (handle, "another run changed the table since this run planned it: \(previous.summary)")
    }

    /// Journals a new run for `planned` and executes it.
    public func start(_ planned: PlanBuilder.Result, options: RestoreOptions) async throws -> RestoreSummary {
        let tables = planned.plan.tables.filter { !$0.isNoOp || $0.refused != nil }
        try await requireWriter(tables: Set(tables.filter { $0.refused == nil }.map { TableKey($0.database, $0.table) }))
        let events = try tables.map {
            NewEvent(kind: .planTable, database: $0.database, table: $0.table, detail: try TableRestore.encode($0))
        }
        let run = try await journal.createRun(backup: source.name, source: source.location.rawValue, location: source.address,
                                              options: options.json, events: events)
        logger.info("run \(run): \(tables.count) table(s) to change, journal \(journal.path)")
        RestoreTiming.mark("run journaled")
        return try await execute(run, options: options)
    }

    /// Carries on an unfinished run from its journal.
    public func resume(_ run: Int64, options: RestoreOptions) async throws -> RestoreSummary {
        logger.info("resuming run \(run) from \(journal.path)")
        try await requireWriter(tables: Set(try await journal.events(run, kind: .planTable).map { TableKey($0.database, $0.table) }))
        try await journal.setRunState(run, .running)
        return try await execute(run, options: options)
    }

    private func execute(_ run: Int64, options: RestoreOptions) async throws -> RestoreSummary {
        let started = ContinuousClock.now
        let journalBefore = await journal.busy
        let journalCPUBefore = await journal.busyCPU
        removeStaging(of: run)
        // A statement of this run still running on the server (its process was killed, the
        // server carried on) is waited for before anything is observed or planned again.
        try await waitForStatements(of: run)
        let plans = try await journal.events(run, kind: .planTable)
        let transfers = AsyncSemaphore(options.concurrency)
        let progress = RestoreProgress(logger: logger)
        // Merges would change the live parts the plan names before a table's turn: stopped on
        // every live table the run still changes, started again as each one ends.
        var frozen: [Int64: String] = [:]
        for plan in plans {
            if let table = try? JSONDecoder().decode(TablePlan.self, from: Data((plan.detail ?? "").utf8)) {
                await progress.add(steps: table.drop.count + 2 * (table.download.count + table.resequence.count),
                                   bytes: table.downloadBytes, tables: 1)
                if try await stillChangesLiveParts(plan, table, run: run) {
                    let qualified = ClickHouseSQL.qualified(table.database, table.table)
                    if (try? await client.execute("SYSTEM STOP MERGES \(qualified)")) != nil { frozen[plan.id] = qualified }
                }
            }
        }
        let frozenTables = frozen
        RestoreTiming.mark("merges stopped")
        let client = self.client
        let thaw = { @Sendable (qualified: String) async in
            // Not cancelled with the run: a stopped run must not leave merges stopped.
            _ = await Task { try? await client.execute("SYSTEM START MERGES \(qualified)") }.value
        }
        let reporter = Task { await progress.report(every: .seconds(5)) }
        defer { reporter.cancel() }
        let metricsSpent = RestoreMetrics.Spent()
        let metricsWriter = metrics.map { metrics in
            Task { [journal, logger] in await metrics.keepWriting(run, journal: journal, logger: logger, spent: metricsSpent) }
        }
        /// The last write, once the run's state is journaled (also when it stopped early).
        func finalMetrics() async {
            metricsWriter?.cancel()
            _ = await metricsWriter?.value
            guard let metrics else { return }
            do {
                metricsSpent.add(try await metrics.write(run, journal: journal, finished: true).cost)
            } catch {
                logger.warning("cannot write the metrics file \(metrics.path): \(error)")
            }
        }
        do {
            _ = try await concurrentMap(plans, width: max(1, options.concurrency)) { planEvent in
                do {
                    try await TableRestore(runner: self, run: run, planEvent: planEvent, options: options,
                                           transfers: transfers, progress: progress).execute()
                } catch {
                    if TableRestore.isCancellation(error) { throw CancellationError() }
                    // One table's trouble (a disk it lacks, a failing query) fails its next step
                    // and leaves the other tables going.
                    try await self.failNextStep(of: planEvent, run: run, error: error)
                }
                if let qualified = frozenTables[planEvent.id] { await thaw(qualified) }
                await progress.tableDone()
            }
        } catch {
            for qualified in frozenTables.values { await thaw(qualified) }
            let cancelled = TableRestore.isCancellation(error)
            try? await journal.setRunState(run, cancelled ? .interrupted : .failed)
            await finalMetrics()
            throw cancelled ? CancellationError() : error
        }
        RestoreTiming.mark("tables done")
        removeStaging(of: run)
        var summary = try await RestoreSummary.of(run, journal: journal)
        try await journal.setRunState(run, summary.state)
        await finalMetrics()
        if metrics != nil {
            summary.metricsSeconds = metricsSpent.value.wall.seconds
            summary.metricsCPUSeconds = metricsSpent.value.cpu.seconds
        }
        summary.seconds = (ContinuousClock.now - started).seconds
        summary.journalSeconds = (await journal.busy - journalBefore).seconds
        summary.journalCPUSeconds = (await journal.busyCPU - journalCPUBefore).seconds
        return summary
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

extension RestoreRunner {
    /// Whether a table of the run will still drop or attach parts of an existing table: planned
    /// so (not refused, not created), and not failed or finished already.
    func stillChangesLiveParts(_ plan: JournalEvent, _ table: TablePlan, run: Int64) async throws -> Bool {
        guard table.refused == nil, !table.create,
              !(table.drop.isEmpty && table.download.isEmpty && table.resequence.isEmpty && table.killMutations.isEmpty)
        else { return false }
        switch plan.state {
        case .failed: return false
        case .done: return try await journal.nextUnfinished(run, database: table.database, table: table.table) != nil
        default: return true
        }
    }

    /// Marks the first unfinished step of a table failed with `error` (what stopped the table).
    /// When every step already ended (the error came after them, e.g. restarting merges), none is
    /// changed: failing the done plan-table would make a replay emit the table's steps again.
    func failNextStep(of planEvent: JournalEvent, run: Int64, error: any Error) async throws {
        logger.error("\(planEvent.database).\(planEvent.table): \(error)")
        guard let next = try await journal.nextUnfinished(run, database: planEvent.database, table: planEvent.table)
        else { return }
        try await journal.transition(next.id, to: .failed, error: "\(error)")
    }

    /// Refuses, before anything changes, a process that cannot write as the owner of the disks'
    /// folders (staging, quarantine, table locks) and of the data folders of `tables` that exist
    /// (FileOwner): one stat per folder. A folder that does not exist is not refused.
    func requireWriter(tables: Set<TableKey>) async throws {
        try FileOwner.requireWriter(disks: disks)
        guard !tables.isEmpty else { return }
        for table in try await ClickHouseCatalog(client: client).tables() where tables.contains(TableKey(table.database, table.name)) {
            for folder in table.dataPaths { try FileOwner.ifExists(folder)?.requireWriter() }
        }
    }

    /// Whether a statement whose query_id starts with `prefix` runs on the server.
    func statementsRunning(prefix: String) async throws -> Bool {
        let count = try await client.execute(
            "SELECT count() FROM system.processes WHERE startsWith(query_id, {p:String})", parameters: ["p": prefix])
        return (Int(count.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) > 0
    }

    /// Waits (up to an hour) while a statement sent by this journal's run is still running on
    /// the server (its query_id starts with the run's prefix).
    func waitForStatements(of run: Int64) async throws {
        let prefix = "inplace-" + stagingPrefix(run)
        for second in 0..<3600 {
            guard try await statementsRunning(prefix: prefix) else { return }
            if second % 30 == 0 { logger.warning("run \(run): waiting for its statements still running on the server (system.processes, query_id \(prefix)*)") }
            try await Task.sleep(for: .seconds(1))
        }
        throw RestoreError("statements of run \(run) are still running on the server after an hour (system.processes, query_id \(prefix)*); wait for them or KILL QUERY them, then resume")
    }

    /// The disk a path is on: the one with the longest matching path, since another disk may be
    /// mounted inside the default disk's folder.
    func disk(holding path: String) -> ClickHouseCatalog.Disk? {
        disks.filter { path.hasPrefix($0.path) }.max { $0.path.count < $1.path.count }
    }

    /// Names this journal's run in staging folders: two journals both have a run 1.
    func stagingPrefix(_ run: Int64) -> String { Self.stagingPrefix(journal: journal.path, run: run) }

    static func stagingPrefix(journal path: String, run: Int64) -> String {
        var hash = CRC64()
        hash.update(Array(path.utf8))
        return "j" + String(hash.value, radix: 16) + "-run-\(run)-"
    }

    /// Staging folders of `run` left by a process that was killed mid-download. Only one process
    /// works on a journal, so none of them is in use when a run starts or ends.
    func removeStaging(of run: Int64) {
        for disk in disks {
            let root = disk.path + "backup/.inplace-staging/"
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
            where entry.hasPrefix(stagingPrefix(run)) {
                try? FileManager.default.removeItem(atPath: root + entry)
            }
        }
    }
}

/// What a run came to, from its journal.
public struct RestoreSummary: Sendable, Codable, Equatable {
    public var run: Int64
    public var state: RunState
    public var events: Int
    public var done: Int
    public var failed: Int
    public var pending: Int
    public var interrupted: Int
    /// Steps replaced by a new plan of their table (a merge took parts the first plan named).
    public var superseded: Int = 0
    public var bytesDownloaded: Int64
    public var failures: [String]
    /// Wall time of this process's work on the run, and the part of it spent in the journal.
    public var seconds: Double = 0
    public var journalSeconds: Double = 0
    public var journalCPUSeconds: Double = 0
    /// With `--metrics-file`: what writing it cost the run, wall and thread CPU time (absent without).
    public var metricsSeconds: Double?
    public var metricsCPUSeconds: Double?

    enum CodingKeys: String, CodingKey {
        case run, state, events, done, failed, pending, interrupted, superseded, failures, seconds
        case bytesDownloaded = "bytes_downloaded"
        case journalSeconds = "journal_seconds"
        case journalCPUSeconds = "journal_cpu_seconds"
        case metricsSeconds = "metrics_seconds"
        case metricsCPUSeconds = "metrics_cpu_seconds"
    }

    /// At most this many failures are listed; `failed` counts them all.
    static let failuresListed = 100

    static func of(_ run: Int64, journal: Journal) async throws -> RestoreSummary {
        let counts = try await journal.counts(run)
        let failed = try await journal.failedEvents(run, limit: failuresListed)
        let state: RunState = counts[.failed] == 0 && counts[.done] + counts[.superseded] == counts.events ? .done
            : counts[.interrupted] > 0 ? .interrupted : .partlyFailed
        return RestoreSummary(
            run: run, state: state, events: counts.events, done: counts[.done], failed: counts[.failed],
            pending: counts[.pending] + counts[.started], interrupted: counts[.interrupted], superseded: counts[.superseded],
            bytesDownloaded: counts.bytesDownloaded,
            failures: failed.map { "\($0.kind.rawValue) \($0.database).\($0.table)\($0.part.map { " " + $0 } ?? ""): \($0.lastError ?? "failed")" })
    }
}
