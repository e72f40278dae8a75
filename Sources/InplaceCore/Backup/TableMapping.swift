import Foundation

/// clickhouse-backup's `restore_database_mapping` and `restore_table_mapping`
/// (`--restore-database-mapping old:new,...`, `--restore-table-mapping old:new,...`): restore a
/// backup's tables under other names. A table mapping's key is `db.table` or `table` (the full
/// name is looked up first) and its value `table` or `db.table`; the database mapping renames
/// the database of every table it names. Both look at the backup's names.
public struct TableMapping: Sendable, Equatable, Codable {
    public var databases: [String: String]
    public var tables: [String: String]

    public init(databases: [String: String] = [:], tables: [String: String] = [:]) {
        self.databases = databases
        self.tables = tables
    }

    public var isEmpty: Bool { databases.isEmpty && tables.isEmpty }

    /// Reads `old:new,old:new` flag values into `into` (later rules win, as in clickhouse-backup).
    public static func parse(_ values: [String], flag: String, into map: inout [String: String]) throws(BackupError) {
        for value in values {
            let (rules, bad) = self.rules(value)
            if let bad {
                throw BackupError(.invalidArgument, "\(flag) '\(bad)': each rule is source:destination (e.g. db:db_copy), separated by commas")
            }
            for (source, destination) in rules { map[source] = destination }
        }
    }

    /// The `source:destination` rules of `old:new,old:new` (the flags' and the environment's
    /// form), and the first rule that is not one.
    static func rules(_ text: String) -> (rules: [(String, String)], bad: String?) {
        var rules: [(String, String)] = []
        for rule in text.split(separator: ",", omittingEmptySubsequences: true) {
            let sides = rule.split(separator: ":", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard sides.count == 2, !sides[0].isEmpty, !sides[1].isEmpty else { return (rules, String(rule)) }
            rules.append((sides[0], sides[1]))
        }
        return (rules, nil)
    }

    /// Where the backup's `database.table` is restored.
    public func target(database: String, table: String) -> TableKey {
        var key = TableKey(databases[database] ?? database, table)
        if let value = tables["\(database).\(table)"] ?? tables[table] {
            if let dot = value.firstIndex(of: ".") {
                key = TableKey(String(value[..<dot]), String(value[value.index(after: dot)...]))
            } else {
                key.table = value
            }
        }
        return key
    }

    /// The backup's CREATE statement for its new name: the name after CREATE ... TABLE (or VIEW,
    /// DICTIONARY) replaced, and the UUID left out, so that the server gives the table a new one
    /// (the original's may still be in use). nil when the statement's name cannot be found.
    /// The query of a view still names the tables it reads.
    public static func rename(_ query: String, to key: TableKey) -> String? {
        let scalars = Array(query.unicodeScalars)
        var index = 0
        func skipSpace() { while index < scalars.count && CharacterSet.whitespacesAndNewlines.contains(scalars[index]) { index += 1 } }
        func word() -> String? {
            skipSpace()
            let start = index
            while index < scalars.count && (CharacterSet.alphanumerics.contains(scalars[index]) || scalars[index] == "_") { index += 1 }
            return start == index ? nil : String(String.UnicodeScalarView(scalars[start..<index])).uppercased()
        }
        /// An identifier: bare, or in backticks or double quotes (with `\` escapes and doubled quotes).
        func identifier() -> Bool {
            skipSpace()
            guard index < scalars.count else { return false }
            let quote = scalars[index]
            if quote == "`" || quote == "\"" {
                index += 1
                while index < scalars.count {
                    if scalars[index] == "\\" { index += 2; continue }
                    if scalars[index] == quote {
                        if index + 1 < scalars.count && scalars[index + 1] == quote { index += 2; continue }
                        index += 1
                        return true
                    }
                    index += 1
                }
                return false
            }
            return word() != nil
        }
        let leading: Set<String> = ["CREATE", "ATTACH", "OR", "REPLACE", "TEMPORARY", "MATERIALIZED", "LIVE", "WINDOW"]
        let kinds: Set<String> = ["TABLE", "VIEW", "DICTIONARY"]
        var kind: String?
        while kind == nil {
            let mark = index
            guard let next = word() else { return nil }
            if kinds.contains(next) { kind = next } else if !leading.contains(next) { index = mark; return nil }
        }
        let afterKind = index
        if word() == "IF", word() == "NOT", word() == "EXISTS" {} else { index = afterKind }
        skipSpace()
        let nameStart = index
        guard identifier() else { return nil }
        let afterFirst = index
        skipSpace()
        if index < scalars.count && scalars[index] == "." {
            index += 1
            guard identifier() else { return nil }
        } else {
            index = afterFirst
        }
        let nameEnd = index
        // ` UUID '...'` right after the name.
        var uuidEnd = nameEnd
        let afterName = index
        if word() == "UUID" {
            skipSpace()
            if index < scalars.count && scalars[index] == "'" {
                index += 1
                while index < scalars.count && scalars[index] != "'" { index += 1 }
                if index < scalars.count { uuidEnd = index + 1 }
            }
        }
        if uuidEnd == nameEnd { index = afterName }
        var out = String.UnicodeScalarView(scalars[..<nameStart])
        out.append(contentsOf: ClickHouseSQL.qualified(key.database, key.table).unicodeScalars)
        out.append(contentsOf: scalars[uuidEnd...])
        return String(out)
    }
}
