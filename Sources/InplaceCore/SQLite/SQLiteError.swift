import CSQLite

/// The one error type of the SQLite boundary: SQLite's (extended) result code, its message,
/// and the SQL that failed, so an operator can see exactly which statement broke.
public struct SQLiteError: Error, CustomStringConvertible, Sendable, Equatable {
    /// SQLite's extended result code (for example 5 SQLITE_BUSY, 2067 SQLITE_CONSTRAINT_UNIQUE).
    public let code: Int32
    /// The message SQLite gave (`sqlite3_errmsg`), or the generic text for the code.
    public let message: String
    /// The statement that failed, when there was one.
    public let sql: String?

    public init(code: Int32, message: String, sql: String?) {
        self.code = code
        self.message = message
        self.sql = sql
    }

    /// The primary result code (the low byte of the extended code).
    public var primaryCode: Int32 { code & 0xFF }

    /// SQLite's name for the primary result code, such as "database is locked".
    public var codeDescription: String { String(cString: sqlite3_errstr(code)) }

    public var isBusy: Bool { primaryCode == SQLITE_BUSY || primaryCode == SQLITE_LOCKED }

    public var description: String {
        var text = "SQLite error \(code) (\(codeDescription)): \(message)"
        if let sql { text += " [SQL: \(sql.count > 500 ? String(sql.prefix(500)) + "..." : sql)]" }
        return text
    }
}
