/// `inplace verify`'s result: one line per table for people, and a stable JSON document for
/// programs (README.md, "verify --json"). Every key is always present; absent values are null.
public struct VerifyReport: Sendable, Encodable {
    public struct Table: Sendable, Encodable {
        public enum Status: String, Sendable, Encodable {
            case equal
            case different
            /// Schema only, or an engine that keeps no parts.
            case notCompared = "not_compared"
        }

        public struct Parts: Sendable, Encodable, Equatable {
            public var backup: Int
            public var live: Int
        }

        public var database: String
        public var table: String
        public var status: Status = .notCompared
        /// Why the table was not compared, or nil.
        public var reason: String?
        /// `hash_of_all_files` or `checksums`; nil when no parts were compared.
        public var identity: String?
        public var parts: Parts?
        public var differenceCount = 0
        /// The first differences (at most 100), in a stable order.
        public var differences: [TableDifference] = []

        /// True when equal, false when different, nil when not compared.
        public var equal: Bool? { status == .notCompared ? nil : status == .equal }

        init(database: String, table: String) {
            self.database = database
            self.table = table
        }

        enum CodingKeys: String, CodingKey {
            case database, table, status, equal, reason, identity, parts, differences
            case differenceCount = "difference_count"
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(database, forKey: .database)
            try container.encode(table, forKey: .table)
            try container.encode(status, forKey: .status)
            try container.encode(equal, forKey: .equal)
            try container.encode(reason, forKey: .reason)
            try container.encode(identity, forKey: .identity)
            try container.encode(parts, forKey: .parts)
            try container.encode(differenceCount, forKey: .differenceCount)
            try container.encode(differences, forKey: .differences)
        }
    }

    public struct Totals: Sendable, Encodable, Equatable {
        public var tables: Int
        public var equal: Int
        public var different: Int
        public var notCompared: Int

        enum CodingKeys: String, CodingKey {
            case tables, equal, different
            case notCompared = "not_compared"
        }
    }

    public var backup: String
    public var source: BackupLocation
    public var tables: [Table]

    /// True when no selected table differs (tables not compared do not count).
    public var equal: Bool { !tables.contains { $0.status == .different } }

    public var totals: Totals {
        Totals(tables: tables.count, equal: tables.count { $0.status == .equal },
               different: tables.count { $0.status == .different }, notCompared: tables.count { $0.status == .notCompared })
    }

    enum CodingKeys: String, CodingKey {
        case backup, source, equal, tables, totals
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(backup, forKey: .backup)
        try container.encode(source, forKey: .source)
        try container.encode(equal, forKey: .equal)
        try container.encode(tables, forKey: .tables)
        try container.encode(totals, forKey: .totals)
    }

    /// One line per table: `equal`, `not compared: why`, or the first differences; then totals.
    public var text: String {
        var lines = ["verify backup \(backup) (\(source.rawValue)) against the live tables"]
        for table in tables {
            let name = "  \(table.database).\(table.table): "
            switch table.status {
            case .equal:
                lines.append(name + "equal (\(table.parts?.live ?? 0) part(s))")
            case .notCompared:
                lines.append(name + "not compared: \(table.reason ?? "")")
            case .different:
                let shown = table.differences.prefix(3).map(\.description).joined(separator: "; ")
                let more = table.differenceCount > 3 ? "; and \(table.differenceCount - 3) more (--json lists up to 100)" : ""
                lines.append(name + "DIFFERS (\(table.differenceCount)): " + shown + more)
            }
        }
        let totals = totals
        lines.append("\(totals.equal) table(s) equal, \(totals.different) differ, \(totals.notCompared) not compared")
        return lines.joined(separator: "\n")
    }
}
