import Foundation

/// Table selection as clickhouse-backup does it: comma-separated shell globs matched against
/// `database.table` (with `/` and `\` read as `_` on both sides), and `clickhouse.skip_tables`
/// excluded the same way.
public struct TablePattern: Sendable {
    public let patterns: [String]
    /// One table by its exact names (no glob: names may hold `*`, `?` or `[`).
    private var exact: (database: String, table: String)?

    /// `nil` or empty text selects every table.
    public init(_ text: String?) {
        patterns = (text ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
    }

    public init(patterns: [String]) { self.patterns = patterns }

    /// Selects exactly this table.
    public static func exactly(database: String, table: String) -> TablePattern {
        var pattern = TablePattern(patterns: ["\(database).\(table)"])
        pattern.exact = (database, table)
        return pattern
    }

    public var selectsEverything: Bool { patterns.isEmpty }

    public func matches(database: String, table: String) -> Bool {
        if let exact { return exact.database == database && exact.table == table }
        return patterns.isEmpty || patterns.contains { Self.glob($0, "\(database).\(table)") }
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
