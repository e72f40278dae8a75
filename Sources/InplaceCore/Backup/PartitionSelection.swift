import Foundation

/// `--partitions`, with clickhouse-backup's syntax: the flag may repeat, and each value is
/// `[db.table_glob:]list`, where the list is either
/// - partition ids or shell globs on ids, comma-separated (`202401,202402`, `2024*`, `all`), or
/// - tuples of partition values in parentheses, comma-separated (`('2024-01-15','eu'),('2024-02-01','us')`
///   or `(202401)`), which ClickHouse turns into partition ids with the table's `PARTITION BY`.
///
/// A table a rule's glob does not name is not restricted by that rule; a table named by any rule
/// is restricted to the union of the partitions its rules select. Without rules every partition
/// is selected.
public struct PartitionSelection: Sendable, Equatable, Codable {
    public struct Rule: Sendable, Equatable, Codable {
        /// `db.table` glob (clickhouse-backup's `*.*` when none is given).
        public var tables: String
        /// Partition ids or globs on them.
        public var ids: [String]
        /// Tuples of values, each a list of literal texts (`'2024-01-15'` stays quoted, `202401` not).
        public var tuples: [[String]]
    }

    public var rules: [Rule]
    /// The flags' texts, as given (journaled with a run, shown in plans).
    public var arguments: [String]

    public var isEmpty: Bool { rules.isEmpty }

    public init(_ arguments: [String]) throws(BackupError) {
        self.arguments = arguments
        var rules: [Rule] = []
        for argument in arguments { rules += try Self.parse(argument) }
        self.rules = rules
    }

    /// The rules that name `database.table`; empty when the selection does not restrict it.
    public func rules(database: String, table: String) -> [Rule] {
        rules.filter { $0.tables == "*" || TablePattern.glob($0.tables, "\(database).\(table)") }
    }

    static func parse(_ argument: String) throws(BackupError) -> [Rule] {
        var text = argument.trimmingCharacters(in: .whitespaces)
        var tables = "*.*"
        // `db.table:list`; a `:` inside a value (`('2024-01-01 10:00:00')`) is not a prefix.
        if let colon = text.firstIndex(of: ":"), !text[..<colon].contains(where: { "('\"".contains($0) }) {
            tables = text[..<colon].trimmingCharacters(in: .whitespaces)
            text = text[text.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            guard !tables.isEmpty else { throw invalid(argument, "the table glob before ':' is empty") }
        }
        guard !text.isEmpty else { throw invalid(argument, "it names no partition") }
        if text.hasPrefix("(") {
            let tuples = try tupleList(text, argument: argument)
            return [Rule(tables: tables, ids: [], tuples: tuples)]
        }
        let ids = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard ids.allSatisfy({ !$0.isEmpty }) else { throw invalid(argument, "it has an empty partition id") }
        for id in ids where id.contains(where: { "'\"()".contains($0) }) {
            throw invalid(argument, "'\(id)' is not a partition id; partition values go in parentheses: ('2024-01-15') or ('2024-01-15','eu')")
        }
        return [Rule(tables: tables, ids: ids, tuples: [])]
    }

    /// `(a,b),(c,d)`: values split at top-level commas, quotes respected (a value may hold `,` or `)`).
    private static func tupleList(_ text: String, argument: String) throws(BackupError) -> [[String]] {
        var tuples: [[String]] = []
        var current: [String] = []
        var value = ""
        var depth = 0
        var quote: Character?
        var escaped = false
        for character in text {
            if let open = quote {
                value.append(character)
                if escaped { escaped = false } else if character == "\\" { escaped = true } else if character == open { quote = nil }
                continue
            }
            switch character {
            case "'", "\"":
                quote = character
                value.append(character)
            case "(":
                depth += 1
                if depth > 1 { value.append(character) }
            case ")":
                guard depth > 0 else { throw invalid(argument, "a ')' has no '('") }
                depth -= 1
                if depth > 0 {
                    value.append(character)
                } else {
                    current.append(value.trimmingCharacters(in: .whitespaces))
                    value = ""
                    guard current.allSatisfy({ !$0.isEmpty }) else { throw invalid(argument, "a tuple has an empty value") }
                    tuples.append(current)
                    current = []
                }
            case "," where depth == 1:
                current.append(value.trimmingCharacters(in: .whitespaces))
                value = ""
            case "," where depth == 0:
                continue
            case " ", "\t" where depth == 0:
                continue
            default:
                guard depth > 0 else { throw invalid(argument, "'\(character)' is outside the parentheses; write tuples as (v1,v2),(v3,v4)") }
                value.append(character)
            }
        }
        guard quote == nil else { throw invalid(argument, "a quoted value is not closed") }
        guard depth == 0 else { throw invalid(argument, "a '(' is not closed") }
        return tuples
    }

    private static func invalid(_ argument: String, _ why: String) -> BackupError {
        BackupError(.invalidArgument, "--partitions '\(argument)': \(why)")
    }
}

/// The partitions of one table that a restore or a backup covers: exact ids and globs on ids.
public struct PartitionFilter: Sendable, Equatable, Codable, CustomStringConvertible {
    public var ids: Set<String>
    public var globs: [String]

    public init(ids: Set<String>, globs: [String] = []) {
        self.ids = ids
        self.globs = globs
    }

    public func matches(_ partitionID: String) -> Bool {
        ids.contains(partitionID) || globs.contains { fnmatch($0, partitionID, 0) == 0 }
    }

    public var description: String {
        (ids.sorted() + globs).joined(separator: ",")
    }

    /// What the ids part of rules selects, before tuples are evaluated.
    static func literal(_ rules: [PartitionSelection.Rule]) -> PartitionFilter {
        var filter = PartitionFilter(ids: [])
        for id in rules.flatMap(\.ids) {
            if id.contains(where: { "*?[".contains($0) }) { filter.globs.append(id) } else { filter.ids.insert(id) }
        }
        return filter
    }
}

/// Turns a table's `--partitions` rules into a filter: ids as given; each tuple of values into a
/// partition id, computed by ClickHouse's `partitionId()` over the table's `PARTITION BY`
/// expressions, with the values read as the key columns (`('2024-01-15','eu')` for
/// `PARTITION BY (toYYYYMM(d), region)`), or, when that does not fit, as the expressions'
/// results (`(202401,'eu')`, as `system.parts.partition` shows them).
public struct PartitionResolver: Sendable {
    let client: ClickHouseClient

    public init(client: ClickHouseClient) { self.client = client }

    public func filter(_ rules: [PartitionSelection.Rule], createQuery: String, table: String) async throws -> PartitionFilter {
        var filter = PartitionFilter.literal(rules)
        let tuples = rules.flatMap(\.tuples)
        guard !tuples.isEmpty else { return filter }
        guard let key = PartitionKey(createQuery), !key.expressions.isEmpty else {
            // No PARTITION BY: the one partition is `all`, which no value names.
            throw BackupError(.invalidArgument, "--partitions gives partition values for \(table), which has no PARTITION BY (its only partition id is 'all'); name it by id, or narrow the rule with a table glob (db.table:...)")
        }
        for tuple in tuples {
            filter.ids.insert(try await id(of: tuple, key: key, table: table))
        }
        return filter
    }

    private func id(of values: [String], key: PartitionKey, table: String) async throws -> String {
        var failures: [String] = []
        if values.count == key.columns.count {
            let bindings = zip(key.columns, values).map { column, value in
                "CAST(\(Self.literal(value)) AS \(column.type)) AS \(ClickHouseSQL.identifier(column.name))"
            }.joined(separator: ", ")
            let sql = "WITH \(bindings) SELECT partitionId(\(key.expressions.joined(separator: ", ")))"
            do {
                return try await single(sql)
            } catch let error as ClickHouseError {
                failures.append("as values of \(key.columns.map(\.name).joined(separator: ", ")): \(error.message)")
            }
        }
        if values.count == key.expressions.count {
            // The expressions' result types, from the key columns' default values.
            let defaults = key.columns.map {
                "defaultValueOfTypeName(\(ClickHouseSQL.string($0.type))) AS \(ClickHouseSQL.identifier($0.name))"
            }.joined(separator: ", ")
            let typesSQL = "WITH \(defaults) SELECT " + key.expressions.map { "toTypeName(\($0))" }.joined(separator: ", ")
            do {
                let types = try await client.execute(typesSQL).trimmingCharacters(in: .newlines)
                    .split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
                if types.count == values.count {
                    let casts = zip(values, types).map { "CAST(\(Self.literal($0)) AS \($1))" }.joined(separator: ", ")
                    return try await single("SELECT partitionId(\(casts))")
                }
            } catch let error as ClickHouseError {
                failures.append("as results of \(key.expressions.joined(separator: ", ")): \(error.message)")
            }
        }
        let shape = "(" + values.joined(separator: ",") + ")"
        let expected = "\(key.columns.count) value(s) for \(key.columns.map(\.name).joined(separator: ", "))"
            + (key.expressions.count != key.columns.count || key.expressions != key.columns.map { ClickHouseSQL.identifier($0.name) }
                ? " or \(key.expressions.count) for \(key.expressions.joined(separator: ", "))" : "")
        throw BackupError(.invalidArgument, "--partitions \(shape) is not a partition of \(table): PARTITION BY takes \(expected)" + (failures.isEmpty ? "" : "; ClickHouse said: " + failures.joined(separator: "; ")))
    }

    private func single(_ sql: String) async throws -> String {
        try await client.execute(sql).trimmingCharacters(in: .newlines)
    }

    /// A value as a string literal (`'eu'` and `eu` alike), which CAST turns into any type.
    static func literal(_ value: String) -> String {
        var text = value
        if text.count >= 2, let first = text.first, first == "'" || first == "\"", text.last == first {
            text = String(text.dropFirst().dropLast()).replacingOccurrences(of: "\\\(first)", with: String(first))
                .replacingOccurrences(of: "\(first)\(first)", with: String(first))
        }
        return ClickHouseSQL.string(text)
    }
}

/// A table's partition key as its CREATE statement writes it: the expressions of `PARTITION BY`
/// and the columns they read, in order of first use.
struct PartitionKey: Equatable {
    var expressions: [String]
    var columns: [CreateQuery.Column]

    init?(_ createQuery: String) {
        guard let storage = CreateQuery.storage(createQuery), let columns = CreateQuery.columns(createQuery) else {
            return nil
        }
        expressions = storage.partitionKey.map(CreateQuery.render)
        let byName = Dictionary(columns.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var used: [CreateQuery.Column] = []
        for token in storage.partitionKey.joined() {
            let name = CreateQuery.unquote(token)
            if let column = byName[name], !used.contains(column) { used.append(column) }
        }
        self.columns = used
    }
}
