import ArgumentParser
import Foundation
import InplaceCore

struct JournalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "journal", abstract: "Inspect restore journals and replay failed steps.",
        subcommands: [ListRuns.self, Show.self, Report.self, Replay.self])

    struct ListRuns: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the runs in the journal.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var journalOptions: JournalOptions
        @Flag(help: "Print JSON on standard output.")
        var json = false

        func run() async throws {
            try await runMapped {
                let journal = try await openForReading(global, journalOptions)
                let runs = try await journal.runs()
                if json { return try printJSON(runs) }
                for run in runs {
                    print("\(run.id)\t\(run.backup)\t\(run.source)\t\(run.state.rawValue)\t\(run.startedAt)\t\(run.finishedAt ?? "-")")
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a run: summary, progress per table, failed steps; or one step's timeline with --event.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var journalOptions: JournalOptions
        @Option(help: "Only steps in this state: pending, started, done, failed, interrupted, superseded.")
        var state: EventState?
        @Option(help: "Only steps of tables matching these globs on db.table.")
        var table: String?
        @Option(help: "The timeline of one step: every state change with its time and detail.")
        var event: Int64?
        @Flag(help: "Print JSON on standard output.")
        var json = false
        @Flag(name: [.short, .customLong("follow")], help: "Redraw the run's per-table progress every second until it ends (on a terminal in place, otherwise one line per change).")
        var follow = false
        @Argument(help: "The run (default: the newest).")
        var runID: Int64?

        func validate() throws {
            if follow && (json || event != nil) { throw ValidationError("--follow draws the run's progress; it takes neither --json nor --event") }
        }

        struct Report: Encodable {
            struct Table: Encodable {
                var database: String
                var table: String
                var events: Int
                var done: Int
                var failed: Int
            }
            var run: JournalRun
            var tables: [Table]
            var events: [JournalEvent]
        }

        struct Timeline: Encodable {
            var event: JournalEvent
            var transitions: [JournalTransition]
        }

        func run() async throws {
            try await runMapped {
                let journal = try await openForReading(global, journalOptions)
                if let event {
                    guard let found = try await journal.event(event) else {
                        throw JournalError(.notFound, "the journal has no step \(event)")
                    }
                    let timeline = Timeline(event: found, transitions: try await journal.transitions(event))
                    if json { return try printJSON(timeline) }
                    print("step \(found.id): \(found.kind.rawValue) \(found.database).\(found.table) \(found.part ?? "") — \(found.state.rawValue), \(found.attempts) attempt(s)")
                    for step in timeline.transitions {
                        print("  \(step.at)  \(step.from?.rawValue ?? "-") -> \(step.to.rawValue)\(step.detail.map { "  \($0)" } ?? "")")
                    }
                    return
                }
                let run = try await chosenRun(journal, runID)
                if follow {
                    let state = try await JournalFollower(journal: journal, run: run.id, interval: .seconds(1)).follow()
                    if state != .done { throw ExitCode(Exit.restoreIncomplete) }
                    return
                }
                let pattern = TablePattern(table)
                // Counted and listed by queries: a run of a million steps is never read whole.
                let tables = try await journal.tableCounts(run.id)
                    .filter { pattern.matches(database: $0.database, table: $0.table) }
                    .map { Report.Table(database: $0.database, table: $0.table, events: $0.events, done: $0.done,
                                        failed: $0.failed) }
                let listed = try await journal.events(run.id, state: state ?? .failed)
                    .filter { pattern.matches(database: $0.database, table: $0.table) }
                if json { return try printJSON(Report(run: run, tables: tables, events: listed)) }
                print("run \(run.id): backup \(run.backup) (\(run.location ?? run.source)), \(run.state.rawValue)\(run.supersededBy.map { " by run \($0)" } ?? ""); started \(run.startedAt)\(run.finishedAt.map { ", finished \($0)" } ?? ""); inplace \(run.toolVersion)")
                print("options: \(run.options)")
                for table in tables {
                    print("  \(table.database).\(table.table): \(table.done)/\(table.events) done\(table.failed > 0 ? ", \(table.failed) failed" : "")")
                }
                if !listed.isEmpty { print(state == nil ? "failed steps:" : "\(state!.rawValue) steps:") }
                for event in listed {
                    print("  [\(event.id)] \(event.kind.rawValue) \(event.database).\(event.table) \(event.part ?? ""): \(event.state.rawValue)\(event.lastError.map { ": \($0)" } ?? "")")
                }
            }
        }
    }

    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a run's report: one self-contained HTML file (header, timeline, what in place saved), or JSON.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var journalOptions: JournalOptions
        @Option(help: ArgumentHelp("Write the HTML report to this file (replaced if it exists).", valueName: "FILE"))
        var html: String?
        @Flag(help: "Print the report's figures as JSON on standard output.")
        var json = false
        @Argument(help: "The run (default: the newest).")
        var runID: Int64?

        func validate() throws {
            if html == nil && !json { throw ValidationError("give --html FILE, --json, or both") }
            if html?.isEmpty == true { throw ValidationError("--html needs a file name") }
        }

        func run() async throws {
            try await runMapped {
                let journal = try await openForReading(global, journalOptions)
                let report = try await RunReport.load(journal, run: try await chosenRun(journal, runID))
                if let html {
                    let size = try await report.writeHTML(journal, to: html)
                    FileHandle.standardError.write(Data("inplace: wrote the report of run \(report.run.id) to \(html) (\(size) bytes)\n".utf8))
                }
                if json { try printJSON(report) }
            }
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run failed steps of a run again, through the same checks, then finish the run.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var journalOptions: JournalOptions
        @OptionGroup var lockOptions: LockOptions
        @OptionGroup var metricsOptions: MetricsOptions
        @Flag(help: "Replay every failed step of the run.")
        var failed = false
        @Option(help: "Replay this one step.")
        var event: Int64?
        @Flag(help: "Print the summary as JSON on standard output.")
        var json = false
        @Argument(help: "The run.")
        var runID: Int64

        func validate() throws {
            if failed == (event != nil) { throw ValidationError("give exactly one of --failed and --event ID") }
        }

        func run() async throws {
            try await runMapped {
                let config = try global.load()
                let client = ClickHouseClient(endpoint: config.clickHouseEndpoint)
                let layout = try await localLayout(client, writing: true)
                let journal = try Journal(path: journalOptions.path(layout))
                let run = try await journal.resumableRun(runID)
                let chosen: [JournalEvent]
                if let event {
                    chosen = try await journal.event(event).map { [$0] }?.filter { $0.runID == run.id } ?? []
                } else {
                    chosen = try await journal.events(run.id, state: .failed)
                }
                guard !chosen.isEmpty else {
                    throw JournalError(.notFound, event.map { "run \(runID) has no step \($0)" } ?? "run \(runID) has no failed step")
                }
                if let superseded = chosen.first(where: { $0.state == .superseded }) {
                    // Its table was planned again: the new plan's steps replaced it, and running
                    // it would attach or drop beside them.
                    throw JournalError(.notFound, "step \(superseded.id) was superseded when its table was planned again; replay the new plan's steps instead (inplace journal show \(runID) --table '\(superseded.database).\(superseded.table)')")
                }
                for step in chosen where step.state != .done {
                    try await journal.transition(step.id, to: .pending, detail: "replay requested")
                }
                try await resumeRun(run, config: config, client: client, layout: layout, waitLock: lockOptions.duration,
                                    command: "journal replay", metrics: metricsOptions.metrics, journal: journal,
                                    json: json)
            }
        }
    }
}

extension EventState: ExpressibleByArgument {}

/// The run `runID` names, or the newest.
func chosenRun(_ journal: Journal, _ runID: Int64?) async throws -> JournalRun {
    let runs = try await journal.runs()
    guard let run = runID.flatMap({ id in runs.first { $0.id == id } }) ?? (runID == nil ? runs.last : nil) else {
        throw JournalError(.notFound, runID.map { "the journal has no run \($0)" } ?? "the journal has no run yet")
    }
    return run
}

/// `journal list`, `show` and `report` read while a restore may be writing: no lock, read-only.
func openForReading(_ global: GlobalOptions, _ options: JournalOptions) async throws -> Journal {
    if let path = options.journal { return try Journal(path: path, readOnly: true) }
    let config = try global.load()
    let layout = try await localLayout(ClickHouseClient(endpoint: config.clickHouseEndpoint))
    return try Journal(path: options.path(layout), readOnly: true)
}
