import Foundation
import Logging

/// Counts what a run has done and reports it while it runs: a live line on a terminal (standard
/// error), otherwise a log line every few seconds; throughput and ETA from bytes downloaded.
actor RestoreProgress {
    private var stepsTotal = 0
    private var stepsDone = 0
    private var bytesTotal: Int64 = 0
    private var bytesDone: Int64 = 0
    private var tablesTotal = 0
    private var tablesDone = 0
    private let started = ContinuousClock.now
    private let logger: Logger
    private let live = isatty(STDERR_FILENO) == 1

    init(logger: Logger) { self.logger = logger }

    func add(steps: Int, bytes: Int64, tables: Int = 0) {
        stepsTotal += steps
        bytesTotal += bytes
        tablesTotal += tables
    }

    func done(steps: Int = 1, bytes: Int64 = 0) {
        stepsDone += steps
        bytesDone += bytes
    }

    func tableDone() { tablesDone += 1 }

    /// Reports every `interval` until cancelled.
    func report(every interval: Duration) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: live ? .milliseconds(500) : interval)
            if Task.isCancelled { break }
            emit()
        }
        if live { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    private func emit() {
        let elapsed = ContinuousClock.now - started
        let seconds = max(0.001, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        let rate = Double(bytesDone) / seconds
        let eta = rate > 0 && bytesTotal > bytesDone ? " ETA \(Int(Double(bytesTotal - bytesDone) / rate))s" : ""
        let line = "tables \(tablesDone)/\(tablesTotal), steps \(stepsDone)/\(stepsTotal), \(PlanReport.bytes(bytesDone)) of \(PlanReport.bytes(bytesTotal)), \(PlanReport.bytes(Int64(rate)))/s\(eta)"
        if live {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
        } else {
            logger.info("progress: \(line)")
        }
    }
}
