import Foundation
import Logging

/// Marks of where a restore's time goes, at debug level (`--log-level debug`), one line each:
/// `timing PHASE at UNIX_SECONDS`. tools/bench-restore reads them into its breakdown.
public enum RestoreTiming {
    private static let logger = Logger(label: "inplace.timing")

    public static func mark(_ phase: @autoclosure () -> String) {
        guard logger.logLevel <= .debug else { return }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let seconds = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
        logger.debug("timing \(phase()) at \(String(format: "%.6f", seconds))")
    }
}
