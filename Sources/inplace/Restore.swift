import ArgumentParser
import Foundation
import InplaceCore

/// `--wait-lock`, on every command that changes tables (restore, resume, journal replay).
struct LockOptions: ParsableArguments {
    @Option(name: .customLong("wait-lock"), help: ArgumentHelp(
        "Wait up to this many seconds for a table another inplace process is restoring (default 0: refuse the table at once).",
        valueName: "seconds"))
    var waitLock = 0

    func validate() throws {
        guard waitLock >= 0 else { throw ValidationError("--wait-lock takes a number of seconds, 0 or more") }
    }

    var duration: Duration { .seconds(waitLock) }
}

/// `--metrics-file`, on every command that runs restore steps (restore, resume, journal replay).
struct MetricsOptions: ParsableArguments {
    @Option(name: .customLong("metrics-file"), help: ArgumentHelp(
        "Write the run's progress for Prometheus' node_exporter textfile collector to this file (e.g. /var/lib/node_exporter/inplace.prom), atomically, while the run goes on and at its end.",
        valueName: "path"))
    var metricsFile: String?
    @Option(name: .customLong("metrics-interval"), help: ArgumentHelp("Seconds between writes of --metrics-file (default 5).", valueName: "seconds"))
    var metricsInterval = 5.0

    func validate() throws {
        guard metricsInterval > 0 else { throw ValidationError("--metrics-interval takes a number of seconds above 0") }
        if let metricsFile {
            let folder = (metricsFile as NSString).deletingLastPathComponent
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder.isEmpty ? "." : folder, isDirectory: &isFolder), isFolder.boolValue else {
                throw ValidationError("--metrics-file \(metricsFile): the folder \(folder) does not exist")
            }
        }
    }

    var metrics: RestoreMetrics? {
        metricsFile.map { RestoreMetrics(path: $0, interval: .milliseconds(Int64(metricsInterval * 1000))) }
    }
}

/// Options shared by the commands that read or write the journal.
struct JournalOptions: ParsableArguments {
    @Option(help: "The journal file (default: <default disk path>/backup/inplace-journal.sqlite on the ClickHouse host).")
    var journal: String?

    func path(_ layout: LocalBackupLayout) -> String { journal ?? layout.root + "inplace-journal.sqlite" }
}

struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Make the live tables equal to a backup, in place, journaled and resumable.",
        discussion: """
            In place is the default: parts both sides hold by content are kept, live parts the backup lacks \
            are dropped, the backup's missing parts are downloaded and attached. Every step is journaled; a \
            restore stopped at any point (Ctrl-C, a crash) continues with `inplace resume` or by running the \
            same restore again. Exit code 0 only when every step is done.
            """)
    @OptionGroup var global: GlobalOptions
    @OptionGroup var journalOptions: JournalOptions
    @OptionGroup var flags: RestoreFlags
    @OptionGroup var lockOptions: LockOptions
    @OptionGroup var metricsOptions: MetricsOptions
    @Flag(help: "Accepted as in clickhouse-backup; in-place is the default.")
    var restoreInPlace = false
    @Option(help: "Transfers and tables at once (default: general.download_concurrency).")
    var concurrency: Int?
    @Flag(help: "Start a new run instead of resuming an unfinished one; the unfinished runs of this backup in the journal are marked superseded and never resumed.")
    var newRun = false
    @Flag(help: "Print the summary as JSON on standard output.")
    var json = false
    @Argument(help: "The backup's name.")
    var name: String

    func validate() throws {
        if let concurrency, concurrency < 1 { throw ValidationError("--concurrency must be at least 1") }
    }

    func run() async throws {
        try await runMapped {
            let config = try global.load()
            RestoreTiming.mark("config loaded")
            let client = ClickHouseClient(endpoint: config.clickHouseEndpoint)
            let layout = try await localLayout(client, writing: true)
            RestoreTiming.mark("server checked")
            let options = try flags.restoreOptions(config, concurrency: concurrency ?? config.general.downloadConcurrency)
            let source = try await options.scoped(
                try await openBackup(name, from: flags.from, layout: layout,
                                     remote: try await remoteStore(config, client: client, required: flags.from == .remote)),
                client: client)
            RestoreTiming.mark("backup opened")
            let journal = try Journal(path: journalOptions.path(layout))
            let disks = try await ClickHouseCatalog(client: client).disks()
            RestoreTiming.mark("journal opened")
            let runner = RestoreRunner(client: client, source: source, journal: journal, disks: disks,
                                       retry: retryPolicy(config), waitLock: lockOptions.duration, command: "restore",
                                       metrics: metricsOptions.metrics)
            if !newRun, let unfinished = try await journal.unfinishedRun(backup: name, options: options.json) {
                FileHandle.standardError.write(Data("inplace: run \(unfinished.id) of \(name) with these options did not finish; resuming it (pass --new-run to start over)\n".utf8))
                try await finish(try await cancellable { try await runner.resume(unfinished.id, options: options) },
                                 journal: journal)
                return
            }
            if !newRun, let other = try await journal.unfinishedRun(backup: name) {
                // Two unfinished runs of one backup would each be resumed later with its own plan.
                throw JournalError(.unfinishedRun(other.id), "run \(other.id) of \(name), with other options (\(other.options)), did not finish; resume it (inplace resume \(other.id)), or pass --new-run to supersede it and start over with these options")
            }
            // Parts an unfinished run left in detached/ (kept parts it detached to re-sequence,
            // downloads not attached yet) go back before planning: the new plan sees the table whole.
            if newRun { try await runner.releaseUnfinished(backup: name) }
            let planned = try await PlanBuilder(client: client).build(.init(
                source: source, tables: TablePattern(flags.tables), skipTables: config.clickhouse.skipTables,
                options: flags.planOptions, concurrency: options.concurrency * 2))
            RestoreTiming.mark("planned")
            if let refused = planned.plan.refused {
                FileHandle.standardError.write(Data("inplace: error: nothing was changed: \(refused)\n".utf8))
                throw ExitCode(Exit.planRefused)
            }
            // Every table it would change refused: a run would change nothing and, journaled as
            // failed, would be resumed with the same refusal once the cause is fixed.
            let refused = planned.plan.refusedTables
            if !refused.isEmpty, planned.plan.tables.allSatisfy({ $0.refused != nil || $0.isNoOp }) {
                let reasons = refused.map { "\($0.database).\($0.table): \($0.refused ?? "")" }.joined(separator: "; ")
                FileHandle.standardError.write(Data("inplace: error: nothing was changed: every table to restore is refused: \(reasons)\n".utf8))
                throw ExitCode(Exit.planRefused)
            }
            if newRun { try await supersede(journal) }
            try await finish(try await cancellable { try await runner.start(planned, options: options) }, journal: journal)
        }
    }

    /// `--new-run`: the unfinished runs of this backup will never be resumed; the run started
    /// next replaces them (done only once the new run's plan is accepted).
    func supersede(_ journal: Journal) async throws {
        let superseded = try await journal.supersedeUnfinishedRuns(backup: name)
        guard !superseded.runs.isEmpty else { return }
        let list = superseded.runs.map(String.init).joined(separator: ", ")
        FileHandle.standardError.write(Data("inplace: --new-run: unfinished run(s) \(list) of \(name) marked superseded by run \(superseded.by); they will not be resumed\n".utf8))
    }

    func finish(_ summary: RestoreSummary, journal: Journal) async throws {
        try report(summary, json: json)
        try journal.verifyStillOnDisk()
        if summary.state != .done { throw ExitCode(Exit.restoreIncomplete) }
    }
}

struct ResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume", abstract: "Carry on an unfinished restore from its journal.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var journalOptions: JournalOptions
    @OptionGroup var lockOptions: LockOptions
    @OptionGroup var metricsOptions: MetricsOptions
    @Flag(help: "Print the summary as JSON on standard output.")
    var json = false
    @Argument(help: "The run to resume (default: the newest unfinished run).")
    var runID: Int64?

    func run() async throws {
        try await runMapped {
            let config = try global.load()
            let client = ClickHouseClient(endpoint: config.clickHouseEndpoint)
            let layout = try await localLayout(client, writing: true)
            let journal = try Journal(path: journalOptions.path(layout))
            let run: JournalRun
            if let runID {
                run = try await journal.resumableRun(runID)
            } else {
                guard let found = try await journal.unfinishedRun() else {
                    throw JournalError(.notFound, "the journal \(journal.path) has no unfinished run; nothing to resume")
                }
                run = found
            }
            try await resumeRun(run, config: config, client: client, layout: layout, waitLock: lockOptions.duration,
                                command: "resume", metrics: metricsOptions.metrics, journal: journal, json: json)
        }
    }
}

/// Resumes `run` with the options and backup it was journaled with, prints the summary, and exits
/// non-zero unless every step is done (resume and replay).
func resumeRun(_ run: JournalRun, config: InplaceConfig, client: ClickHouseClient, layout: LocalBackupLayout,
               waitLock: Duration, command: String, metrics: RestoreMetrics?,
               journal: Journal, json: Bool) async throws {
    let options = try JSONDecoder().decode(RestoreOptions.self, from: Data(run.options.utf8))
    let source = try await options.scoped(
        try await openBackup(run.backup, from: BackupLocation(rawValue: run.source), layout: layout,
                             remote: try await remoteStore(config, client: client, required: run.source == "remote")),
        client: client)
    if let recorded = run.location, recorded != source.address {
        // s3.path (or its macros) changed since the run began: another backup of the same name.
        throw JournalError(.notFound, "run \(run.id) read its backup from \(recorded), but the configuration now gives \(source.address) (s3.path, its macros, or the bucket changed); put the configuration back to resume it, or start over with restore --new-run")
    }
    let runner = RestoreRunner(client: client, source: source, journal: journal,
                               disks: try await ClickHouseCatalog(client: client).disks(), retry: retryPolicy(config),
                               waitLock: waitLock, command: command, metrics: metrics)
    let summary = try await cancellable { try await runner.resume(run.id, options: options) }
    try report(summary, json: json)
    try journal.verifyStillOnDisk()
    if summary.state != .done { throw ExitCode(Exit.restoreIncomplete) }
}

func retryPolicy(_ config: InplaceConfig) -> RetryPolicy {
    RetryPolicy(maxAttempts: config.general.retriesOnFailure + 1, baseDelay: .milliseconds(200),
                maxDelay: config.general.retriesPause)
}

func report(_ summary: RestoreSummary, json: Bool) throws {
    if json {
        try printJSON(summary)
        return
    }
    var text = "run \(summary.run): \(summary.state.rawValue): \(summary.done) of \(summary.events) step(s) done, \(summary.failed) failed, \(summary.pending + summary.interrupted) left; \(summary.bytesDownloaded) bytes downloaded"
    for failure in summary.failures.prefix(20) { text += "\n  failed: \(failure)" }
    if summary.state != .done { text += "\nsee `inplace journal show \(summary.run)`; `inplace journal replay \(summary.run) --failed` retries failed steps" }
    print(text)
}

/// Runs `body` in a task that SIGINT and SIGTERM cancel: steps in flight end as interrupted and
/// the run can be resumed.
func cancellable<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let task = Task { try await body() }
    let sources = [SIGINT, SIGTERM].map { number -> DispatchSourceSignal in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number)
        source.setEventHandler {
            FileHandle.standardError.write(Data("inplace: signal \(number): stopping; steps in flight end as interrupted (resume with inplace resume)\n".utf8))
            task.cancel()
        }
        source.resume()
        return source
    }
    defer { sources.forEach { $0.cancel() } }
    do {
        return try await task.value
    } catch is CancellationError {
        throw ExitCode(Exit.interrupted)
    }
}
