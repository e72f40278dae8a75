/// Quoting for names and values spliced into ClickHouse SQL. Names come from backup metadata and
/// may hold any character (backticks, quotes, semicolons, newlines): they are always quoted.
public enum ClickHouseSQL {
    /// `db`.`table` style quoting: backtick-delimited, with backslash and backtick escaped.
    public static func identifier(_ name: String) -> String {
        "`" + escape(name, quote: "`") + "`"
    }

    /// `db`.`table`, each part quoted.
    public static func qualified(_ database: String, _ table: String) -> String {
        identifier(database) + "." + identifier(table)
    }

    /// A single-quoted string literal with backslash, quote and control characters escaped.
    public static func string(_ value: String) -> String {
        "'" + escape(value, quote: "'") + "'"
    }

    private static func escape(_ text: String, quote: Unicode.Scalar) -> String {
        // Scalars, not Characters: a quote followed by a combining mark is one Character and
        // would slip past a comparison with "'".
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case quote: out += "\\" + String(quote)
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\0": out += "\\0"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
