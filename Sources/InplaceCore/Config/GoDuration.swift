/// Durations written the way Go's `time.ParseDuration` reads them (clickhouse-backup's config):
/// a sequence of decimal numbers with units, such as `30m`, `1h30m`, `1.5h`, `500ms`, `90s`.
public enum GoDuration {
    private static let units: [(String, Double)] = [
        ("ns", 1e-9), ("us", 1e-6), ("µs", 1e-6), ("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600),
    ]

    public static func parse(_ text: String) -> Duration? {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        if rest == "0" { return .zero }
        guard !rest.isEmpty else { return nil }
        var seconds = 0.0
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            let unitText = rest.prefix { !$0.isNumber && $0 != "." }
            // Longest unit first ("ms" before "m").
            guard let unit = units.filter({ unitText == $0.0 }).first else { return nil }
            rest = rest.dropFirst(unitText.count)
            seconds += value * unit.1
        }
        return .milliseconds(Int64((seconds * 1000).rounded()))
    }

    /// `1h30m0s` style text for display.
    public static func format(_ duration: Duration) -> String {
        var seconds = duration.components.seconds
        let hours = seconds / 3600
        seconds %= 3600
        let minutes = seconds / 60
        seconds %= 60
        var text = ""
        if hours > 0 { text += "\(hours)h" }
        if minutes > 0 || hours > 0 { text += "\(minutes)m" }
        return text + "\(seconds)s"
    }
}

import Foundation
