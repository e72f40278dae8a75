/// Reads what the plan compares out of a CREATE TABLE statement: the columns (name and type, in
/// order) and the engine. Both sides of a comparison (the backup's `query` and the live
/// `system.tables.create_table_query`) are texts ClickHouse formatted, so comparing what this
/// reads from each compares the schemas.
public enum CreateQuery {
    public struct Column: Sendable, Equatable, Codable, CustomStringConvertible {
        public var name: String
        public var type: String
        public var description: String { "\(name) \(type)" }
    }

    /// Words that end a column's type in a column declaration.
    private static let typeEnders: Set<String> = [
        "DEFAULT", "MATERIALIZED", "ALIAS", "EPHEMERAL", "CODEC", "TTL", "COMMENT", "NULL", "NOT", "PRIMARY",
        "SETTINGS", "STATISTICS",
    ]
    /// Entries of the column list that are not columns.
    private static let nonColumns: Set<String> = ["INDEX", "PROJECTION", "CONSTRAINT", "PRIMARY"]

    /// The engine's name (`ReplicatedMergeTree`, `MergeTree`, `View`...), or nil.
    public static func engine(_ query: String) -> String? {
        // ClickHouse writes the clause as " ENGINE = Name": when it appears exactly once, read the
        // name straight after it (a million-part plan reads ten thousand of these).
        let marker = " ENGINE = "
        if let found = query.range(of: marker), query.range(of: marker, range: found.upperBound..<query.endIndex) == nil {
            let name = query[found.upperBound...].prefix { $0.isLetter || $0.isNumber || $0 == "_" }
            if !name.isEmpty { return String(name) }
        }
        let tokens = tokenize(query)
        for index in tokens.indices where tokens[index].uppercased() == "ENGINE" && depth(tokens, before: index) == 0 {
            var next = index + 1
            if next < tokens.count && tokens[next] == "=" { next += 1 }
            return next < tokens.count ? tokens[next] : nil
        }
        let upper = query.uppercased()
        if upper.contains("MATERIALIZED VIEW") { return "MaterializedView" }
        if upper.hasPrefix("CREATE VIEW") || upper.contains(" VIEW ") { return "View" }
        if upper.contains("DICTIONARY") { return "Dictionary" }
        return nil
    }

    /// The columns, in order; nil when the statement has no column list.
    public static func columns(_ query: String) -> [Column]? {
        let tokens = tokenize(query)
        guard let open = tokens.firstIndex(of: "("), !tokens[..<open].contains(where: { $0.uppercased() == "AS" })
        else { return nil }
        var columns: [Column] = []
        var entry: [String] = []
        var level = 0
        for token in tokens[(open + 1)...] {
            if token == "(" { level += 1 }
            if token == ")" {
                if level == 0 {
                    if let column = column(entry) { columns.append(column) }
                    return columns
                }
                level -= 1
            }
            if token == "," && level == 0 {
                if let column = column(entry) { columns.append(column) }
                entry = []
            } else {
                entry.append(token)
            }
        }
        return nil
    }

    private static func column(_ entry: [String]) -> Column? {
        guard let first = entry.first, !nonColumns.contains(first.uppercased()) || first.hasPrefix("`") else { return nil }
        var type: [String] = []
        var level = 0
        for token in entry.dropFirst() {
            if level == 0 && typeEnders.contains(token.uppercased()) { break }
            if token == "(" { level += 1 }
            if token == ")" { level -= 1 }
            type.append(token)
        }
        return Column(name: unquote(first), type: joinType(type))
    }

    /// Joins type tokens back into ClickHouse's spelling: `Decimal(10, 2)`, `Map(String, UInt64)`.
    private static func joinType(_ tokens: [String]) -> String {
        var out = ""
        for (index, token) in tokens.enumerated() {
            if index > 0 {
                let previous = tokens[index - 1]
                if token == "," || token == ")" || token == "(" || previous == "(" || previous == "," {
                    // no space
                } else {
                    out += " "
                }
            }
            out += token
            if token == "," { out += " " }
        }
        return out
    }

    static func unquote(_ name: String) -> String {
        guard name.count >= 2, let first = name.first, first == "`" || first == "\"", name.last == first else { return name }
        var out = ""
        var escaped = false
        var previousWasQuote = false
        for character in name.dropFirst().dropLast() {
            if character == first && !escaped {
                // A doubled quote stands for one.
                if previousWasQuote { previousWasQuote = false; continue }
                previousWasQuote = true
                out.append(character)
                continue
            }
            previousWasQuote = false
            if escaped {
                out.append(character == "n" ? "\n" : character == "t" ? "\t" : character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else {
                out.append(character)
            }
        }
        return out
    }

    private static func depth(_ tokens: [String], before end: Int) -> Int {
        var level = 0
        for token in tokens[..<end] {
            if token == "(" { level += 1 } else if token == ")" { level -= 1 }
        }
        return level
    }

    /// Splits SQL into identifiers/words, quoted names and strings (kept whole, with quotes),
    /// numbers and single punctuation characters.
    static func tokenize(_ sql: String) -> [String] {
        var tokens: [String] = []
        let characters = Array(sql)
        var index = 0
        while index < characters.count {
            let character = characters[index]
            if character.isWhitespace {
                index += 1
            } else if character == "`" || character == "\"" || character == "'" {
                var end = index + 1
                while end < characters.count {
                    if characters[end] == "\\" { end += 2; continue }
                    if characters[end] == character {
                        if end + 1 < characters.count && characters[end + 1] == character { end += 2; continue }
                        break
                    }
                    end += 1
                }
                tokens.append(String(characters[index...min(end, characters.count - 1)]))
                index = end + 1
            } else if character.isLetter || character.isNumber || character == "_" || character == "." {
                var end = index
                while end < characters.count,
                      characters[end].isLetter || characters[end].isNumber || characters[end] == "_" || characters[end] == "."
                {
                    end += 1
                }
                tokens.append(String(characters[index..<end]))
                index = end
            } else {
                tokens.append(String(character))
                index += 1
            }
        }
        return tokens
    }
}
