/// The schema comparison: a live table takes the backup's parts in place only when it has the
/// backup's columns and the same storage definition, since a part's layout follows the table's
/// keys: a table recreated with another ORDER BY or PARTITION BY would take parts sorted or split
/// another way, and another engine (or engine parameter: `ReplacingMergeTree(ver)` against
/// `ReplacingMergeTree`) merges the same rows into other results.
///
/// Both sides are read the same way from the text ClickHouse formatted (the backup's `query` is
/// `create_table_query` at backup time), so equal DDL reads equal whatever the server:
/// 1. Tokenize the statement (quotes, backticks and parentheses kept whole or counted, so
///    `DEFAULT 'ORDER BY x'` or a column named `ORDER` never starts a clause).
/// 2. Take the storage definition after the top-level ENGINE: the engine with its parameters,
///    then the clauses PARTITION BY, PRIMARY KEY, ORDER BY, SAMPLE BY, TTL, SETTINGS, COMMENT.
/// 3. Normalize each key to its list of expressions: `a`, `(a)` and `tuple(a)` are one key (the
///    engine gives them the same partition ids and sort order, measured on 26.9); a quoted name
///    that needs no quotes loses them; `MergeTree()` is `MergeTree`; a missing PRIMARY KEY is
///    the sorting key, and a missing ORDER BY the primary key.
/// 4. Compare engine, partition key, sorting key, primary key and sampling key.
///
/// Not compared: SETTINGS and TTL. Neither changes what a part holds or how its rows are sorted
/// and partitioned, so the backup's parts are correct under either (a part carries its own index
/// granularity; TTL only decides what later merges delete or move), and servers add settings of
/// their own (`index_granularity = 8192`), which would refuse equal tables. COMMENT is text.
///
/// Not normalized: expressions that mean the same but are written differently (`a % 4` against
/// `modulo(a, 4)`; ClickHouse keeps each as written): such a table is refused, the safe side.
extension Planner {
    /// What differs between the backup's table and the live one, as the subject of a refusal
    /// ("its columns differ from the backup's (...)"), or nil when they are the same.
    static func schemaDifference(backup: String, live: String) -> String? {
        if backup == live { return nil }
        if let columns = columnDifference(backup: backup, live: live) {
            return "its columns differ from the backup's (\(columns))"
        }
        let wanted = CreateQuery.storage(backup), have = CreateQuery.storage(live)
        if wanted == nil && have == nil { return nil }  // no storage definition on either side (views)
        guard let wanted, let have else {
            return "its storage definition (ENGINE ...) could not be read to compare with the backup's"
        }
        let differences = StorageKey.allCases.compactMap { key -> (name: String, text: String)? in
            let (b, l) = (wanted.render(key), have.render(key))
            return b == l ? nil : (key.title, "\(key.title): the backup has `\(b)`, the table has `\(l)`")
        }
        guard !differences.isEmpty else { return nil }
        let names = differences.map(\.name)
        let subject = names.count == 1 ? names[0] + " differs"
            : names.dropLast().joined(separator: ", ") + " and " + names[names.count - 1] + " differ"
        return "its \(subject) from the backup's (\(differences.map(\.text).joined(separator: "; ")))"
    }

    /// The first difference between the two column lists, or nil.
    private static func columnDifference(backup: String, live: String) -> String? {
        guard let wanted = CreateQuery.columns(backup), let have = CreateQuery.columns(live) else {
            return "the column lists could not be read to compare"
        }
        if wanted == have { return nil }
        for index in 0..<max(wanted.count, have.count) {
            let b = index < wanted.count ? wanted[index].description : "nothing"
            let l = index < have.count ? have[index].description : "nothing"
            if b != l { return "column \(index + 1): backup has `\(b)`, the table has `\(l)`" }
        }
        return "columns differ"
    }
}

/// The parts of a storage definition the plan compares.
enum StorageKey: CaseIterable {
    case engine, partitionKey, sortingKey, primaryKey, samplingKey

    var title: String {
        switch self {
        case .engine: "engine"
        case .partitionKey: "partition key (PARTITION BY)"
        case .sortingKey: "sorting key (ORDER BY)"
        case .primaryKey: "primary key (PRIMARY KEY)"
        case .samplingKey: "sampling key (SAMPLE BY)"
        }
    }
}

extension CreateQuery {
    /// A table's storage definition, normalized for comparison (see `Planner.schemaDifference`).
    struct Storage: Equatable {
        /// The engine's name and its parameters' tokens (none for `Name` and `Name()`).
        var engine: String
        var engineArguments: [String]
        /// Each key as its list of expressions, each expression as normalized tokens.
        var partitionKey: [[String]]
        var sortingKey: [[String]]
        var primaryKey: [[String]]
        var samplingKey: [[String]]

        func render(_ key: StorageKey) -> String {
            switch key {
            case .engine: engineArguments.isEmpty ? engine : engine + "(" + CreateQuery.render(engineArguments) + ")"
            case .partitionKey: Self.render(partitionKey, empty: "none")
            case .sortingKey: Self.render(sortingKey, empty: "tuple()")
            case .primaryKey: Self.render(primaryKey, empty: "tuple()")
            case .samplingKey: Self.render(samplingKey, empty: "none")
            }
        }

        private static func render(_ list: [[String]], empty: String) -> String {
            list.isEmpty ? empty : list.map(CreateQuery.render).joined(separator: ", ")
        }
    }

    /// Clauses of a storage definition, by their first keyword and second (`nil`: none).
    private static let clauses: [(first: String, second: String?)] = [
        ("PARTITION", "BY"), ("PRIMARY", "KEY"), ("ORDER", "BY"), ("SAMPLE", "BY"), ("TTL", nil), ("SETTINGS", nil),
        ("COMMENT", nil),
    ]
    /// Words after which an expression goes on, so the next word cannot start a clause.
    private static let continuing: Set<String> = [
        "AND", "OR", "NOT", "IS", "IN", "LIKE", "ILIKE", "BETWEEN", "INTERVAL", "AS", "CASE", "WHEN", "THEN", "ELSE",
        "GLOBAL",
    ]

    /// The storage definition after the top-level ENGINE, or nil when there is none.
    static func storage(_ query: String) -> Storage? {
        let raw = tokenize(query)
        // The first ENGINE at depth 0 after the column list; read before names lose their
        // quotes, so a table named `ENGINE` is not taken for it.
        var level = 0, opened = false
        var start: Int?
        for (index, token) in raw.enumerated() {
            if token == "(" { level += 1; opened = true } else if token == ")" { level -= 1 }
            if level == 0 && opened && token.uppercased() == "ENGINE" { start = index + 1; break }
        }
        let tokens = raw.map(normalized)
        guard var index = start else { return nil }
        if index < tokens.count && tokens[index] == "=" { index += 1 }
        guard index < tokens.count else { return nil }
        let engine = tokens[index]
        index += 1
        var arguments: [String] = []
        if index < tokens.count && tokens[index] == "(", let close = closing(tokens, index) {
            arguments = Array(tokens[(index + 1)..<close])
            index = close + 1
        }
        let found = split(tokens[index...])
        let primary = found["PRIMARY"].map(keyList), sorting = found["ORDER"].map(keyList)
        return Storage(engine: engine, engineArguments: arguments, partitionKey: keyList(found["PARTITION"] ?? []),
                       sortingKey: sorting ?? primary ?? [], primaryKey: primary ?? sorting ?? [],
                       samplingKey: keyList(found["SAMPLE"] ?? []))
    }

    /// The clauses of `tokens`, by first keyword, each the tokens after its keywords. A keyword
    /// starts a clause only at depth 0, once, after a clause that has some tokens, and not after
    /// an operator: ClickHouse writes a column named ORDER or TTL without quotes
    /// (`PARTITION BY ORDER ORDER BY TTL`, measured on 26.9).
    private static func split(_ tokens: ArraySlice<String>) -> [String: [String]] {
        var found: [String: [String]] = [:]
        var current: String?
        var level = 0
        var index = tokens.startIndex
        while index < tokens.endIndex {
            let token = tokens[index]
            let upper = token.uppercased()
            if level == 0, let clause = clauses.first(where: { $0.first == upper }), found[upper] == nil,
               clause.second == nil || (index + 1 < tokens.endIndex && tokens[index + 1].uppercased() == clause.second),
               current.map({ found[$0]?.isEmpty == false }) ?? true, !continues(tokens, before: index)
            {
                current = upper
                found[upper] = []
                index += clause.second == nil ? 1 : 2
                continue
            }
            if token == "(" { level += 1 } else if token == ")" { level -= 1 }
            if let current { found[current, default: []].append(token) }
            index += 1
        }
        return found
    }

    private static func continues(_ tokens: ArraySlice<String>, before index: Int) -> Bool {
        guard index > tokens.startIndex else { return false }
        let previous = tokens[index - 1]
        if continuing.contains(previous.uppercased()) { return true }
        // An operator (`+`, `=`, `,`, `(`...) before it; `)` and `]` end an expression.
        guard previous.count == 1, let character = previous.first else { return false }
        return !(character.isLetter || character.isNumber || character == "_" || character == ")" || character == "]")
    }

    /// A key as its list of expressions: `a`, `(a)` and `tuple(a)` give [a]; `(a, b)` and
    /// `tuple(a, b)` give [a, b]; `tuple()` and nothing give [].
    static func keyList(_ tokens: [String]) -> [[String]] {
        var inner = tokens[...]
        if inner.first == "tuple", inner.count >= 3, inner[inner.startIndex + 1] == "(",
           closing(tokens, inner.startIndex + 1) == inner.endIndex - 1
        {
            inner = inner.dropFirst(2).dropLast()
        } else if inner.first == "(", closing(tokens, inner.startIndex) == inner.endIndex - 1 {
            inner = inner.dropFirst().dropLast()
        }
        var list: [[String]] = []
        var element: [String] = []
        var level = 0
        for token in inner {
            if token == "(" { level += 1 } else if token == ")" { level -= 1 }
            if token == "," && level == 0 {
                list.append(unwrapped(element))
                element = []
            } else {
                element.append(token)
            }
        }
        if !element.isEmpty || !list.isEmpty { list.append(unwrapped(element)) }
        return list
    }

    /// An expression without the parentheses that enclose all of it: `((a))` is `a`, but
    /// `(a, b)` stays a tuple.
    private static func unwrapped(_ tokens: [String]) -> [String] {
        var tokens = tokens
        while tokens.first == "(", closing(tokens, 0) == tokens.count - 1 {
            let inner = Array(tokens.dropFirst().dropLast())
            if keyList(inner).count > 1 { break }
            tokens = inner
        }
        return tokens
    }

    /// The index of the `)` closing the `(` at `open`, or nil.
    private static func closing(_ tokens: [String], _ open: Int) -> Int? {
        var level = 0
        for index in open..<tokens.count {
            if tokens[index] == "(" { level += 1 } else if tokens[index] == ")" { level -= 1 }
            if level == 0 { return index }
        }
        return nil
    }

    /// A name in backticks or double quotes as ClickHouse writes it: bare when it needs no
    /// quotes, else in backticks. Other tokens as they are.
    static func normalized(_ token: String) -> String {
        guard let first = token.first, first == "`" || first == "\"" else { return token }
        let name = unquote(token)
        let plain = name.first.map { $0 == "_" || ($0.isASCII && $0.isLetter) } == true
            && name.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
        if plain { return name }
        return "`" + name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "`", with: "\\`") + "`"
    }

    /// Tokens joined back into readable SQL: `modulo(a, 4)`, `a % 4`.
    static func render(_ tokens: [String]) -> String {
        var out = ""
        for (index, token) in tokens.enumerated() {
            if index > 0 {
                let previous = tokens[index - 1]
                let wordBefore = previous.first.map { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "`" } == true
                if !(token == "," || token == ")" || previous == "(" || (token == "(" && wordBefore)) { out += " " }
            }
            out += token
        }
        return out
    }
}
