import Synchronization
import Foundation
import Logging

/// `--metrics-file PATH`: a run's progress in node_exporter's textfile-collector format, written
/// atomically (a temporary file in the same folder, then a rename) every `interval` while the run
/// goes on, and once more at its end. The figures come from the journal (`Journal.progress`),
/// so they equal what `journal show --json` counts. Metric names are documented in README.md
/// ("Metrics"); the only label beyond `kind` and `state` is `backup`, one value per file.
public struct RestoreMetrics: Sendable {
    public var path: String
    public var interval: Duration

    public init(path: String, interval: Duration = .seconds(5)) {
        self.path = path
        self.interval = interval
    }

    /// Writes the file for `run` now; `finished` adds the last-success time when the run is done.
    /// `previous`, the progress an earlier write read, saves parsing the plans again (see
    /// `Journal.progress`). Returns what the write cost the run (the time its queries held the
    /// journal, then rendering and writing the file; not the wait for the journal, busy with the
    /// run's own steps meanwhile), and the progress it read.
    @discardableResult
    public func write(
        _ run: Int64, journal: Journal, finished: Bool = false, previous: RunProgress? = nil
    ) async throws -> (cost: Cost, progress: RunProgress?) {
        guard let progress = try await journal.progress(run, previous: previous) else { return (Cost(), nil) }
        let started = ContinuousClock.now, startedCPU = Journal.Meter.threadCPU()
        var lastSuccess = Self.previousSuccess(path, backup: progress.run.backup)
        if finished && progress.run.state == .done { lastSuccess = Date().timeIntervalSince1970 }
        let text = Self.render(progress, now: Date(), lastSuccess: lastSuccess)
        try Self.replace(path, with: Array(text.utf8))
        return (Cost(wall: progress.queryTime + (ContinuousClock.now - started),
                     cpu: progress.queryCPU + (Journal.Meter.threadCPU() - startedCPU)), progress)
    }

    /// What writing the file cost: wall time, and thread CPU time (the figure a loaded machine
    /// does not inflate).
    public struct Cost: Sendable {
        public var wall: Duration = .zero
        public var cpu: Duration = .zero
    }

    /// Writes every `interval` until cancelled (errors are logged once, then retried quietly).
    func keepWriting(_ run: Int64, journal: Journal, logger: Logger, spent: Spent) async {
        var warned = false
        var previous: RunProgress?
        while !Task.isCancelled {
            do {
                let written = try await write(run, journal: journal, previous: previous)
                spent.add(written.cost)
                previous = written.progress
            } catch {
                if !warned { logger.warning("cannot write the metrics file \(path): \(error)") }
                warned = true
            }
            try? await Task.sleep(for: interval)
        }
    }

    /// The cost of writing the file, added up across tasks.
    final class Spent: Sendable {
        private let total = Mutex(Cost())
        func add(_ cost: Cost) {
            total.withLock {
                $0.wall += cost.wall
                $0.cpu += cost.cpu
            }
        }
        var value: Cost { total.withLock { $0 } }
    }

    /// The text, in the exposition format: each family with HELP and TYPE, then its samples.
    public static func render(_ progress: RunProgress, now: Date, lastSuccess: Double?) -> String {
        let backup = "backup=\"\(escape(progress.run.backup))\""
        var out = ""
        func family(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: String)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for sample in samples { out += "\(name){\(backup)\(sample.labels)} \(sample.value)\n" }
        }
        func one(_ name: String, _ type: String, _ help: String, _ value: String) { family(name, type, help, [("", value)]) }

        one("inplace_run_id", "gauge", "The journal's id of the run this file describes.", "\(progress.run.id)")
        family("inplace_run_state", "gauge", "The run's state: 1 for the current one, 0 for the others.",
               [RunState.running, .interrupted, .done, .partlyFailed, .failed, .superseded].map {
                   (",state=\"\($0.rawValue)\"", progress.run.state == $0 ? "1" : "0")
               })
        one("inplace_run_start_timestamp_seconds", "gauge", "When the run began (Unix time).",
            seconds(BackupMetadata.parseDate(progress.run.startedAt)?.timeIntervalSince1970 ?? 0))
        one("inplace_last_update_timestamp_seconds", "gauge", "When this file was written (Unix time).",
            seconds(now.timeIntervalSince1970))
        var steps: [(String, String)] = []
        for kind in EventKind.allCases {
            for state in EventState.allCases {
                steps.append((",kind=\"\(kind.rawValue)\",state=\"\(state.rawValue)\"", "\(progress.count(kind, state))"))
            }
        }
        family("inplace_steps", "gauge", "The run's steps by kind and state.", steps)
        one("inplace_downloaded_bytes_total", "counter", "Bytes of the parts downloaded so far (download-part steps done).",
            "\(progress.bytes(.downloadPart, .done))")
        one("inplace_download_planned_bytes", "gauge", "Bytes of every part the run downloads (superseded plans left out).",
            "\(EventState.allCases.filter { $0 != .superseded }.reduce(Int64(0)) { $0 + progress.bytes(.downloadPart, $1) })")
        one("inplace_kept_parts", "gauge", "Parts kept in place by the tables planned so far: never downloaded.",
            "\(progress.keptParts)")
        one("inplace_kept_bytes", "gauge", "Bytes of the parts kept in place by the tables planned so far.",
            "\(progress.keptBytes)")
        one("inplace_parts_dropped_total", "counter", "Live parts dropped (drop-part steps done).",
            "\(progress.count(.dropPart, .done))")
        one("inplace_parts_attached_total", "counter", "Parts attached (attach-part steps done, re-sequenced ones included).",
            "\(progress.count(.attachPart, .done))")
        one("inplace_parts_resequenced_total", "counter", "Kept parts detached to be attached again in the backup's order (detach-part steps done).",
            "\(progress.count(.detachPart, .done))")
        one("inplace_tables", "gauge", "Tables the run changes.", "\(progress.tables)")
        one("inplace_tables_done", "gauge", "Tables whose every step is done.", "\(progress.tablesDone)")
        if let lastSuccess {
            one("inplace_last_success_timestamp_seconds", "gauge", "When a run of this backup last ended done (Unix time).",
                seconds(lastSuccess))
        }
        return out
    }

    /// The last-success time an earlier write of this file recorded for the same backup: kept
    /// across runs, so that an alert on its age does not fire while a new run is going.
    static func previousSuccess(_ path: String, backup: String) -> Double? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let prefix = "inplace_last_success_timestamp_seconds{backup=\"\(escape(backup))\"} "
        return text.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Double($0.dropFirst(prefix.count)) }
    }

    /// A label value: backslash, double quote and newline escaped.
    static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }

    static func seconds(_ value: Double) -> String { String(format: "%.3f", value) }

    /// Temporary file (not `*.prom`, so the collector never reads it half written), then rename.
    static func replace(_ path: String, with bytes: [UInt8]) throws {
        let folder = (path as NSString).deletingLastPathComponent
        let temporary = (folder.isEmpty ? "." : folder) + "/." + (path as NSString).lastPathComponent + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileSystem.ioError("cannot create \(temporary)") }
        let ok = bytes.withUnsafeBytes { FileSystem.writeAll(fd, $0) }
        close(fd)
        guard ok, rename(temporary, path) == 0 else {
            let error = FileSystem.ioError("cannot write \(path)")
            unlink(temporary)
            throw error
        }
    }
}
