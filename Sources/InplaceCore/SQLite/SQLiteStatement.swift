import CSQLite

/// A compiled statement. Finalized when released; not `Sendable` (it belongs to its connection).
public final class SQLiteStatement {
    public let sql: String
    let handle: OpaquePointer
    // Keeps the connection (and so the database handle) alive while the statement exists.
    private let connection: SQLiteConnection

    init(connection: SQLiteConnection, handle: OpaquePointer, sql: String) {
        self.connection = connection
        self.handle = handle
        self.sql = sql
    }

    deinit { sqlite3_finalize(handle) }

    /// Binds positional parameters (`?`), starting at 1; clears earlier bindings first.
    public func bind(_ values: [any SQLiteBindable]) throws(SQLiteError) {
        sqlite3_clear_bindings(handle)
        let expected = Int(sqlite3_bind_parameter_count(handle))
        guard values.count == expected else {
            throw SQLiteError(
                code: SQLITE_RANGE, message: "statement takes \(expected) parameters, \(values.count) given", sql: sql)
        }
        for (offset, value) in values.enumerated() {
            try bind(value.sqliteValue, at: Int32(offset + 1))
        }
    }

    public func bind(_ value: SQLiteValue, at index: Int32) throws(SQLiteError) {
        let rc: Int32
        switch value {
        case .null:
            rc = sqlite3_bind_null(handle, index)
        case .integer(let v):
            rc = sqlite3_bind_int64(handle, index, v)
        case .real(let v):
            rc = sqlite3_bind_double(handle, index, v)
        case .text(let v):
            rc = sqlite3_bind_text64(handle, index, v, UInt64(v.utf8.count), inplace_sqlite_transient(), UInt8(SQLITE_UTF8))
        case .blob(let v):
            rc = v.withUnsafeBytes { bytes in
                sqlite3_bind_blob64(handle, index, bytes.baseAddress, UInt64(bytes.count), inplace_sqlite_transient())
            }
        }
        try connection.check(rc, sql: sql)
    }

    /// Advances to the next row: true when a row is available, false when the statement is done.
    public func step() throws(SQLiteError) -> Bool {
        switch sqlite3_step(handle) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let rc:
            throw SQLiteError(code: sqlite3_extended_errcode(connection.handle).nonZero ?? rc,
                              message: connection.lastErrorMessage, sql: sql)
        }
    }

    public func reset() { sqlite3_reset(handle) }

    public var columnCount: Int { Int(sqlite3_column_count(handle)) }
    public func columnName(at index: Int) -> String { String(cString: sqlite3_column_name(handle, Int32(index))) }
    public func isNull(at index: Int) -> Bool { sqlite3_column_type(handle, Int32(index)) == SQLITE_NULL }
    public func int64(at index: Int) -> Int64 { sqlite3_column_int64(handle, Int32(index)) }
    public func uint64(at index: Int) -> UInt64 { UInt64(bitPattern: int64(at: index)) }
    public func int(at index: Int) -> Int { Int(int64(at: index)) }
    public func double(at index: Int) -> Double { sqlite3_column_double(handle, Int32(index)) }

    public func string(at index: Int) -> String? {
        guard let text = sqlite3_column_text(handle, Int32(index)) else { return nil }
        let count = Int(sqlite3_column_bytes(handle, Int32(index)))
        return String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self)
    }

    public func blob(at index: Int) -> [UInt8]? {
        if isNull(at: index) { return nil }
        let count = Int(sqlite3_column_bytes(handle, Int32(index)))
        guard count > 0, let bytes = sqlite3_column_blob(handle, Int32(index)) else { return [] }
        return [UInt8](UnsafeRawBufferPointer(start: bytes, count: count))
    }

    public func value(at index: Int) -> SQLiteValue {
        switch sqlite3_column_type(handle, Int32(index)) {
        case SQLITE_INTEGER: .integer(int64(at: index))
        case SQLITE_FLOAT: .real(double(at: index))
        case SQLITE_TEXT: .text(string(at: index) ?? "")
        case SQLITE_BLOB: .blob(blob(at: index) ?? [])
        default: .null
        }
    }
}

@available(*, unavailable)
extension SQLiteStatement: Sendable {}

/// The current row of a statement, valid only until the next step.
/// Do not keep it: read the columns inside the closure that receives it.
public struct SQLiteRow {
    let statement: SQLiteStatement

    public var count: Int { statement.columnCount }
    public func isNull(_ index: Int) -> Bool { statement.isNull(at: index) }
    public func int64(_ index: Int) -> Int64 { statement.int64(at: index) }
    public func int(_ index: Int) -> Int { statement.int(at: index) }
    public func uint64(_ index: Int) -> UInt64 { statement.uint64(at: index) }
    public func double(_ index: Int) -> Double { statement.double(at: index) }
    public func string(_ index: Int) -> String? { statement.string(at: index) }
    public func blob(_ index: Int) -> [UInt8]? { statement.blob(at: index) }
    public func value(_ index: Int) -> SQLiteValue { statement.value(at: index) }
}

extension Int32 {
    fileprivate var nonZero: Int32? { self == 0 ? nil : self }
}

@available(*, unavailable)
extension SQLiteRow: Sendable {}
