import Foundation

/// Table selection as clickhouse-backup does it: comma-separated shell globs matched against
/// `database.table` (with `/` and `\` read as `_` on both sides), and `clickhouse.skip_tables`
/// excluded the same way.
public struct TablePattern: Sendable {
    public let patterns: [String]

    /// `nil` or empty text selects every table.
    public init(_ text: String?) {
        patterns = (text ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
    }

    public init(patterns: [String]) { self.patterns = patterns }

    public var selectsEverything: Bool { patterns.isEmpty }

    public func matches(database: String, table: String) -> Bool {
        patterns.isEmpty || patterns.contains { Self.glob($0, "\(database).\(table)") }
    }

    /// True when `skip` (clickhouse.skip_tables) excludes the table.
    public static func skipped(database: String, table: String, skip: [String]) -> Bool {
        ClickHouseCatalog.systemDatabases.contains(database) || skip.contains { glob($0, "\(database).\(table)") }
    }

    static func glob(_ pattern: String, _ name: String) -> Bool {
        func clean(_ text: String) -> String {
            text.replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "\\", with: "_")
        }
        return fnmatch(clean(pattern), clean(name), 0) == 0
    }
}
