import CSQLite
import Foundation
import InplaceCore
import Testing

@Suite("SQLite connection on real files")
struct SQLiteTests {
    @Test("opens in WAL mode and reads back every bound type")
    func roundTripsTypes() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let db = try SQLiteConnection(path: folder.path("t.sqlite"))
        #expect(try db.queryScalarText("PRAGMA journal_mode") == "wal")
        try db.execute("CREATE TABLE t (i INTEGER, u INTEGER, r REAL, s TEXT, b BLOB, n TEXT)")
        let big = UInt64.max - 5
        try db.run("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", Int64.min, big, 2.5, "naïve ' \" \n", [UInt8]([0, 1, 255]),
                   Optional<String>.none)
        let rows = try db.query("SELECT i, u, r, s, b, n FROM t") { row in
            (row.int64(0), row.uint64(1), row.double(2), row.string(3), row.blob(4), row.isNull(5))
        }
        #expect(rows.count == 1)
        #expect(rows[0].0 == Int64.min)
        #expect(rows[0].1 == big)
        #expect(rows[0].2 == 2.5)
        #expect(rows[0].3 == "naïve ' \" \n")
        #expect(rows[0].4 == [0, 1, 255])
        #expect(rows[0].5)
    }

    @Test("a transaction that throws is rolled back")
    func rollsBack() throws {
        struct Boom: Error {}
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let db = try SQLiteConnection(path: folder.path("t.sqlite"))
        try db.execute("CREATE TABLE t (x INTEGER)")
        try db.transaction { try db.run("INSERT INTO t VALUES (1)") }
        #expect(throws: Boom.self) {
            try db.transaction {
                try db.run("INSERT INTO t VALUES (2)")
                throw Boom()
            }
        }
        #expect(try db.queryScalarInt("SELECT count(*) FROM t") == 1)
        #expect(!db.isInTransaction)
    }

    @Test("errors carry the SQL, the extended code and SQLite's message")
    func errorsCarrySQL() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let db = try SQLiteConnection(path: folder.path("t.sqlite"))
        try db.execute("CREATE TABLE t (x INTEGER PRIMARY KEY)")
        try db.run("INSERT INTO t VALUES (?)", 1)
        do {
            try db.run("INSERT INTO t VALUES (?)", 1)
            Issue.record("a duplicate key was accepted")
        } catch {
            #expect(error.code == 1555)  // SQLITE_CONSTRAINT_PRIMARYKEY
            #expect(error.sql == "INSERT INTO t VALUES (?)")
            #expect(error.description.contains("UNIQUE constraint failed"))
        }
        #expect(throws: SQLiteError.self) { try db.execute("SELEC nonsense") }
        do {
            _ = try db.prepare("SELECT * FROM missing_table")
        } catch {
            #expect(error.sql == "SELECT * FROM missing_table")
            #expect(error.message.contains("no such table"))
        }
    }

    @Test("a wrong number of bindings is refused before running")
    func bindingCountChecked() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let db = try SQLiteConnection(path: folder.path("t.sqlite"))
        try db.execute("CREATE TABLE t (a, b)")
        #expect(throws: SQLiteError.self) { try db.run("INSERT INTO t VALUES (?, ?)", 1) }
        #expect(try db.queryScalarInt("SELECT count(*) FROM t") == 0)
    }

    @Test("a second writer gets SQLITE_BUSY after the busy timeout, not a corrupt file")
    func secondWriterIsBusy() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let first = try SQLiteConnection(path: folder.path("t.sqlite"))
        let second = try SQLiteConnection(path: folder.path("t.sqlite"), busyTimeout: .milliseconds(100))
        try first.execute("CREATE TABLE t (x)")
        try first.execute("BEGIN IMMEDIATE")
        let started = ContinuousClock.now
        do {
            try second.execute("BEGIN IMMEDIATE")
            Issue.record("two writers held the lock at once")
        } catch let error as SQLiteError {
            #expect(error.isBusy)
            #expect(ContinuousClock.now - started >= .milliseconds(90))
        }
        try first.execute("COMMIT")
        try second.transaction { try second.run("INSERT INTO t VALUES (1)") }
        #expect(try first.queryScalarInt("SELECT count(*) FROM t") == 1)
    }

    @Test("a file that is not a database fails at open with a clear error")
    func notADatabase() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path("junk.sqlite")
        try Data(repeating: 0x41, count: 8192).write(to: URL(fileURLWithPath: path))
        do {
            _ = try SQLiteConnection(path: path)
            Issue.record("a junk file opened as a database")
        } catch {
            #expect(error.primaryCode == SQLITE_NOTADB)
            #expect(error.description.contains("not a database"))
        }
    }

    @Test("a committed row survives closing and reopening")
    func durableAcrossReopen() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        do {
            let db = try SQLiteConnection(path: folder.path("t.sqlite"))
            try db.execute("CREATE TABLE t (x TEXT)")
            try db.transaction { try db.run("INSERT INTO t VALUES (?)", "kept") }
        }
        let reopened = try SQLiteConnection(path: folder.path("t.sqlite"), readOnly: true)
        #expect(try reopened.queryScalarText("SELECT x FROM t") == "kept")
    }
}
