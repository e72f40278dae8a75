import CSQLite
import Foundation

/// One connection to a SQLite database file.
///
/// The connection owns its `sqlite3*` handle and is deliberately not `Sendable`: keep it confined
/// to one thread or one actor (the journal actor, later). Every C return code is checked and
/// turned into a `SQLiteError` that carries the SQL.
public final class SQLiteConnection {
    public enum JournalMode: String, Sendable {
        case wal = "WAL"
        case delete = "DELETE"
    }

    public enum Synchronous: String, Sendable {
        case off = "OFF"
        case normal = "NORMAL"
        case full = "FULL"
    }

    public enum TransactionKind: String, Sendable {
        case deferred = "DEFERRED"
        /// Takes the write lock at BEGIN, so a busy database fails at BEGIN rather than mid-way.
        case immediate = "IMMEDIATE"
        case exclusive = "EXCLUSIVE"

        var beginSQL: String { "BEGIN \(rawValue)" }
    }

    public let path: String
    let handle: OpaquePointer
    private var statementCache: [String: SQLiteStatement] = [:]

    /// Opens (and by default creates) the database at `path`.
    /// - Parameters:
    ///   - busyTimeout: how long a statement waits for another connection's lock before failing
    ///     with SQLITE_BUSY.
    ///   - journalMode: `.wal` by default: readers never block the writer, and a crash loses
    ///     nothing that was committed.
    public init(
        path: String,
        readOnly: Bool = false,
        create: Bool = true,
        busyTimeout: Duration = .seconds(5),
        journalMode: JournalMode = .wal,
        synchronous: Synchronous = .normal
    ) throws(SQLiteError) {
        var flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE
        if readOnly {
            flags |= SQLITE_OPEN_READONLY
        } else {
            flags |= SQLITE_OPEN_READWRITE
            if create { flags |= SQLITE_OPEN_CREATE }
        }
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            if let db { sqlite3_close_v2(db) }
            throw SQLiteError(code: rc, message: "cannot open \(path): \(message)", sql: nil)
        }
        self.path = path
        self.handle = db
        sqlite3_extended_result_codes(db, 1)
        let ms = busyTimeout.components.seconds * 1000 + busyTimeout.components.attoseconds / 1_000_000_000_000_000
        try check(sqlite3_busy_timeout(db, Int32(clamping: ms)), sql: nil)
        if !readOnly {
            // Reading the answer matters: a file that is not a database fails here, clearly.
            let mode = try queryScalarText("PRAGMA journal_mode=\(journalMode.rawValue)")
            if mode?.uppercased() != journalMode.rawValue {
                throw SQLiteError(
                    code: SQLITE_ERROR,
                    message: "could not set journal_mode=\(journalMode.rawValue) on \(path) (got \(mode ?? "nothing"))",
                    sql: "PRAGMA journal_mode")
            }
        }
        try execute("PRAGMA synchronous=\(synchronous.rawValue)")
        try execute("PRAGMA foreign_keys=ON")
    }

    deinit {
        statementCache.removeAll()
        sqlite3_close_v2(handle)
    }

    /// Runs one or more statements that return no rows (DDL, PRAGMA, migrations).
    public func execute(_ sql: String) throws(SQLiteError) {
        var errorMessage: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &errorMessage)
        if rc != SQLITE_OK {
            let message = errorMessage.map { String(cString: $0) } ?? lastErrorMessage
            sqlite3_free(errorMessage)
            throw SQLiteError(code: sqlite3_extended_errcode(handle), message: message, sql: sql)
        }
    }

    /// Compiles a statement. Prefer `cached(_:)` for statements run many times.
    public func prepare(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard rc == SQLITE_OK, let statement else {
            throw SQLiteError(code: rc, message: lastErrorMessage, sql: sql)
        }
        return SQLiteStatement(connection: self, handle: statement, sql: sql)
    }

    /// A prepared statement kept for the life of the connection, reset and ready to bind.
    public func cached(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        if let statement = statementCache[sql] {
            statement.reset()
            return statement
        }
        let statement = try prepare(sql)
        statementCache[sql] = statement
        return statement
    }

    /// Runs a statement that returns no rows, with positional bindings.
    public func run(_ sql: String, _ bindings: any SQLiteBindable...) throws(SQLiteError) {
        try run(sql, bindings: bindings)
    }

    public func run(_ sql: String, bindings: [any SQLiteBindable]) throws(SQLiteError) {
        let statement = try cached(sql)
        defer { statement.reset() }
        try statement.bind(bindings)
        while try statement.step() {}
    }

    /// Runs a query and maps each row; the row is valid only inside `transform`.
    public func query<T>(
        _ sql: String, _ bindings: any SQLiteBindable...,
        transform: (SQLiteRow) throws -> T
    ) throws -> [T] {
        try query(sql, bindings: bindings, transform: transform)
    }

    public func query<T>(
        _ sql: String, bindings: [any SQLiteBindable],
        transform: (SQLiteRow) throws -> T
    ) throws -> [T] {
        let statement = try cached(sql)
        defer { statement.reset() }
        try statement.bind(bindings)
        var rows: [T] = []
        while try statement.step() {
            rows.append(try transform(SQLiteRow(statement: statement)))
        }
        return rows
    }

    /// The first column of the first row as text, or nil when there is no row or it is NULL.
    public func queryScalarText(_ sql: String, _ bindings: any SQLiteBindable...) throws(SQLiteError) -> String? {
        let statement = try cached(sql)
        defer { statement.reset() }
        try statement.bind(bindings)
        guard try statement.step() else { return nil }
        return statement.string(at: 0)
    }

    /// The first column of the first row as an integer, or nil when there is no row or it is NULL.
    public func queryScalarInt(_ sql: String, _ bindings: any SQLiteBindable...) throws(SQLiteError) -> Int64? {
        let statement = try cached(sql)
        defer { statement.reset() }
        try statement.bind(bindings)
        guard try statement.step() else { return nil }
        return statement.isNull(at: 0) ? nil : statement.int64(at: 0)
    }

    /// Runs `body` in a transaction: committed when it returns, rolled back when it throws.
    public func transaction<T>(_ kind: TransactionKind = .immediate, _ body: () throws -> T) throws -> T {
        // Cached statements: a journal begins and commits thousands of these.
        try run(kind.beginSQL)
        do {
            let result = try body()
            try run("COMMIT")
            return result
        } catch {
            if sqlite3_get_autocommit(handle) == 0 {
                try? execute("ROLLBACK")
            }
            throw error
        }
    }

    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }
    public var changes: Int { Int(sqlite3_changes64(handle)) }
    public var isInTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    var lastErrorMessage: String { String(cString: sqlite3_errmsg(handle)) }

    func check(_ rc: Int32, sql: String?) throws(SQLiteError) {
        guard rc == SQLITE_OK else {
            throw SQLiteError(code: sqlite3_extended_errcode(handle), message: lastErrorMessage, sql: sql)
        }
    }
}

@available(*, unavailable)
extension SQLiteConnection: Sendable {}
