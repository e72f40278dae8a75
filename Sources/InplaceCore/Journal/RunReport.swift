import Foundation

/// `inplace journal report`: what a run did and what restoring in place saved, from the journal
/// alone (no ClickHouse, no backup).
///
/// 1. Aggregate queries give the figures per table: steps by state, finished downloads and drops
///    (parts, bytes), and from the table's plan (its `plan-table` detail, summed by SQLite's JSON
///    functions) the parts kept and re-sequenced. A full restore would have fetched every part of
///    the backup for the table: kept + re-sequenced + to download; saved = that - downloaded.
/// 2. Each table is a lane of the timeline, drawn step by step when it has at most `barLimit`
///    steps and the run's step-by-step lanes stay within `barBudget` bars (smallest lanes
///    first); the other lanes are drawn as merged spans (`TimelineDrawing`).
/// 3. The steps, each from its first `started` to its last end state, are read `pageSize` at a
///    time and fed to the drawing; nothing holds every step of the run.
/// 4. The HTML is one file: inline CSS and SVG, no script, nothing fetched (`RunReport+HTML`).
public struct RunReport: Sendable, Encodable {
    public static let barLimit = 2_000
    public static let barBudget = 6_000
    public static let pageSize = 5_000
    /// Failed steps listed with their errors (the count of all is in `steps.failed`).
    public static let failedListed = 100

    public struct StepCounts: Sendable, Encodable, Equatable {
        public var total = 0, pending = 0, started = 0, done = 0, failed = 0, interrupted = 0, superseded = 0

        static func + (a: StepCounts, b: StepCounts) -> StepCounts {
            StepCounts(total: a.total + b.total, pending: a.pending + b.pending, started: a.started + b.started,
                       done: a.done + b.done, failed: a.failed + b.failed, interrupted: a.interrupted + b.interrupted,
                       superseded: a.superseded + b.superseded)
        }
    }

    /// Parts and bytes of a table (or the run): what in place kept, moved and fetched, against a
    /// full restore.
    public struct Savings: Sendable, Encodable, Equatable {
        public var keptParts = 0
        public var keptBytes: Int64 = 0
        public var resequencedParts = 0
        public var resequencedBytes: Int64 = 0
        public var plannedDownloadParts = 0
        public var plannedDownloadBytes: Int64 = 0
        /// Finished download steps (of every plan of the table, when it was planned again).
        public var downloadedParts = 0
        public var downloadedBytes: Int64 = 0
        public var droppedParts = 0
        public var droppedBytes: Int64 = 0

        /// Every part of the backup for the table: what a full restore would have fetched.
        public var backupParts: Int { keptParts + resequencedParts + plannedDownloadParts }
        public var backupBytes: Int64 { keptBytes + resequencedBytes + plannedDownloadBytes }
        public var savedBytes: Int64 { backupBytes - downloadedBytes }

        static func + (a: Savings, b: Savings) -> Savings {
            Savings(keptParts: a.keptParts + b.keptParts, keptBytes: a.keptBytes + b.keptBytes,
                    resequencedParts: a.resequencedParts + b.resequencedParts,
                    resequencedBytes: a.resequencedBytes + b.resequencedBytes,
                    plannedDownloadParts: a.plannedDownloadParts + b.plannedDownloadParts,
                    plannedDownloadBytes: a.plannedDownloadBytes + b.plannedDownloadBytes,
                    downloadedParts: a.downloadedParts + b.downloadedParts,
                    downloadedBytes: a.downloadedBytes + b.downloadedBytes,
                    droppedParts: a.droppedParts + b.droppedParts, droppedBytes: a.droppedBytes + b.droppedBytes)
        }

        enum CodingKeys: String, CodingKey {
            case keptParts = "kept_parts", keptBytes = "kept_bytes", resequencedParts = "resequenced_parts"
            case resequencedBytes = "resequenced_bytes", plannedDownloadParts = "planned_download_parts"
            case plannedDownloadBytes = "planned_download_bytes", downloadedParts = "downloaded_parts"
            case downloadedBytes = "downloaded_bytes", droppedParts = "dropped_parts", droppedBytes = "dropped_bytes"
            case backupParts = "full_restore_parts", backupBytes = "full_restore_bytes", savedBytes = "saved_bytes"
        }

        public func encode(to encoder: any Encoder) throws {
            var values = encoder.container(keyedBy: CodingKeys.self)
            let fields: [(CodingKeys, Int64)] = [
                (.keptParts, Int64(keptParts)), (.keptBytes, keptBytes), (.resequencedParts, Int64(resequencedParts)),
                (.resequencedBytes, resequencedBytes), (.plannedDownloadParts, Int64(plannedDownloadParts)),
                (.plannedDownloadBytes, plannedDownloadBytes), (.downloadedParts, Int64(downloadedParts)),
                (.downloadedBytes, downloadedBytes), (.droppedParts, Int64(droppedParts)), (.droppedBytes, droppedBytes),
                (.backupParts, Int64(backupParts)), (.backupBytes, backupBytes), (.savedBytes, savedBytes),
            ]
            for (key, value) in fields { try values.encode(value, forKey: key) }
        }
    }

    /// How a table's lane is drawn.
    public enum Drawing: String, Sendable, Encodable {
        /// One bar per step.
        case bars
        /// Merged spans, failed and interrupted steps still one by one (see `TimelineDrawing`).
        case merged
    }

    public struct Table: Sendable, Encodable {
        public var database: String
        public var table: String
        public var steps = StepCounts()
        public var savings = Savings()
        /// Why the table was left alone, when its plan refused it.
        public var refused: String?
        public var timeline = Drawing.bars

        var key: TableKey { TableKey(database, table) }
    }

    public struct FailedStep: Sendable, Encodable {
        public var id: Int64
        public var kind: EventKind
        public var database: String
        public var table: String
        public var part: String?
        public var attempts: Int
        public var error: String?
    }

    /// One step on the timeline: seconds since 1970 from its first `started` to its last end state.
    public struct Step: Sendable {
        public var id: Int64
        public var table: TableKey
        public var kind: EventKind
        public var state: EventState
        public var part: String?
        public var attempts: Int
        public var error: String?
        public var began: Double
        public var ended: Double?
    }

    public var run: JournalRun
    /// The run's first and last transition.
    public var firstAt: String?
    public var lastAt: String?
    public var seconds: Double
    public var steps: StepCounts
    public var savings: Savings
    public var tables: [Table]
    public var failedSteps: [FailedStep]

    enum CodingKeys: String, CodingKey {
        case run, seconds, steps, savings, tables
        case firstAt = "first_at", lastAt = "last_at", failedSteps = "failed_steps"
    }

    /// The figures of `run` (aggregate queries only; the steps are read by `writeHTML`).
    public static func load(_ journal: Journal, run: JournalRun) async throws -> RunReport {
        let plans = try await journal.reportPlans(run.id)
        var tables = try await journal.reportTables(run.id)
        for index in tables.indices {
            guard let plan = plans[tables[index].key] else { continue }
            let finished = tables[index].savings
            tables[index].savings = plan.savings
            tables[index].savings.downloadedParts = finished.downloadedParts
            tables[index].savings.downloadedBytes = finished.downloadedBytes
            tables[index].savings.droppedParts = finished.droppedParts
            tables[index].savings.droppedBytes = finished.droppedBytes
            tables[index].refused = plan.refused
        }
        // The smallest lanes are drawn bar by bar first, while the budget lasts.
        var budget = barBudget
        for index in tables.indices.sorted(by: { tables[$0].steps.total < tables[$1].steps.total }) {
            let steps = tables[index].steps.total
            if steps <= barLimit && steps <= budget {
                budget -= steps
            } else {
                tables[index].timeline = .merged
            }
        }
        let window = try await journal.reportWindow(run.id)
        let seconds = zip(window.first.flatMap(parseDate), window.last.flatMap(parseDate))
            .map { $1.timeIntervalSince($0) } ?? 0
        let failed = try await journal.failedEvents(run.id, limit: failedListed).map {
            FailedStep(id: $0.id, kind: $0.kind, database: $0.database, table: $0.table, part: $0.part,
                       attempts: $0.attempts, error: $0.lastError)
        }
        return RunReport(run: run, firstAt: window.first, lastAt: window.last, seconds: seconds,
                         steps: tables.map(\.steps).reduce(StepCounts(), +),
                         savings: tables.map(\.savings).reduce(Savings(), +), tables: tables, failedSteps: failed)
    }

    /// Writes the HTML report to `path` (durably: a temporary file renamed over it), reading the
    /// run's steps a page at a time; returns the file's size in bytes.
    @discardableResult
    public func writeHTML(_ journal: Journal, to path: String) async throws -> Int {
        var drawing = TimelineDrawing(report: self)
        var after: Int64 = 0
        while true {
            let page = try await journal.reportSteps(run.id, after: after, limit: Self.pageSize)
            for step in page { drawing.add(step) }
            guard let last = page.last, page.count == Self.pageSize else { break }
            after = last.id
        }
        let bytes = Array(html(timeline: drawing.svg()).utf8)
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        do {
            try FileSystem.writeDurably(bytes, to: absolute, mode: 0o600)
        } catch {
            throw RunReportError(message: "cannot write the report to \(absolute): \(error.message); pass --html a path in a folder you can write to")
        }
        return bytes.count
    }
}

private func zip<A, B>(_ a: A?, _ b: B?) -> (A, B)? {
    guard let a, let b else { return nil }
    return (a, b)
}

/// The report could not be written.
public struct RunReportError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}
