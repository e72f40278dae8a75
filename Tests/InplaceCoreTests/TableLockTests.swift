import Foundation
import Testing

@testable import InplaceCore

/// Another process holding a table's lock, as a second inplace would: a shell opens the lock
/// file itself (its own open file description), takes the lock with util-linux `flock` on that
/// descriptor, writes a holder line in inplace's format, then becomes `sleep SECONDS` (which
/// inherits the descriptor, so the lock lives exactly as long as the process).
final class ShellLockHolder {
    let process = Process()
    let journal: String

    init(path: String, seconds: Int, journal: String = "/var/lib/other/journal.sqlite") throws {
        self.journal = journal
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        let script = """
            exec 9<>"$1" || exit 2
            flock -n 9 || exit 3
            printf '{"journal":"%s","run":41,"pid":%d,"host":"%s","started_at":"%s","command":"restore"}\\n' \
                "$2" $$ "$(uname -n)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >&9
            exec sleep "$3"
            """
        process.arguments = ["-c", script, "sh", path, journal, String(seconds)]
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }

    /// Waits until the lock file names this process and it has become `sleep` (then it holds the
    /// lock through the inherited descriptor alone); false after 30 s or if it ended.
    func waitUntilHeld(_ locks: TableLocks, database: String, table: String) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline && process.isRunning {
            if locks.recordedHolder(database: database, table: table)?.pid == pid {
                try await Task.sleep(for: .milliseconds(300))
                return process.isRunning
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    func killAndWait() {
        kill(pid, SIGKILL)
        process.waitUntilExit()
    }
}

private func holder(_ run: Int64 = 7, journal: String = "/srv/journals/a.sqlite") -> TableLockHolder {
    TableLockHolder(journal: journal, run: run, command: "restore")
}

private func mode(_ path: String) -> mode_t {
    var info = stat()
    return lstat(path, &info) == 0 ? info.st_mode & 0o7777 : 0
}

@Suite("Table locks: one holder per table, whatever the journal")
struct TableLockTests {
    @Test("SHA-256 gives the standard's check values (lock names rest on it)")
    func sha256CheckValues() {
        #expect(SHA256.hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test("a lock is taken, records its holder as one JSON line, and is free again once released")
    func acquireAndRelease() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let locks = TableLocks(folder: folder.path("backup/.inplace-locks"))
        let handle = try await locks.acquire(database: "db", table: "t", holder: holder())
        #expect(handle.isHeld)
        let text = try String(contentsOfFile: handle.path, encoding: .utf8)
        #expect(text.hasSuffix("}\n"))
        #expect(text.split(separator: "\n").count == 1)
        let recorded = try #require(locks.recordedHolder(database: "db", table: "t"))
        #expect(recorded.journal == "/srv/journals/a.sqlite")
        #expect(recorded.run == 7)
        #expect(recorded.pid == getpid())
        #expect(recorded.host == TableLockHolder.hostName())
        #expect(recorded.database == "db" && recorded.table == "t")
        #expect(text.contains("\"started_at\":\"\(recorded.startedAt)\""))

        handle.release()
        #expect(!handle.isHeld)
        handle.release()  // twice is harmless
        // The record stays as the last holder's: the next one is told who changed the table before it.
        let again = try await locks.acquire(database: "db", table: "t", holder: holder(8))
        #expect(again.previous?.run == 7 && again.previous?.journal == "/srv/journals/a.sqlite")
        #expect(locks.recordedHolder(database: "db", table: "t")?.run == 8)
        again.release()
    }

    @Test("a second acquisition in the same process is refused, naming the holder and --wait-lock")
    func secondAcquireRefused() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let locks = TableLocks(folder: folder.path("locks"))
        let first = try await locks.acquire(database: "shop", table: "orders", holder: holder())
        defer { first.release() }
        let recorded = try #require(locks.recordedHolder(database: "shop", table: "orders"))
        let error = await #expect(throws: TableLockError.self) {
            try await locks.acquire(database: "shop", table: "orders", holder: holder(9, journal: "/other.sqlite"))
        }
        #expect(error?.kind == .held)
        #expect(error?.holder?.run == 7)
        let message = error?.message ?? ""
        for expected in ["`shop`.`orders` is locked", "restore run 7 of journal /srv/journals/a.sqlite",
                         "pid \(getpid())", "on host \(TableLockHolder.hostName())",
                         "started \(recorded.startedAt)",
                         "--wait-lock SECONDS", first.path] {
            #expect(message.contains(expected), "\(expected) missing from: \(message)")
        }
        #expect(locks.recordedHolder(database: "shop", table: "orders")?.run == 7, "the refused try left the file alone")
        // Another table is not affected.
        let other = try await locks.acquire(database: "shop", table: "items", holder: holder())
        other.release()
    }

    @Test("with wait, the lock is taken once its holder releases it in time")
    func waitSucceedsWhenReleased() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let locks = TableLocks(folder: folder.path("locks"), pollInterval: .milliseconds(50))
        let first = try await locks.acquire(database: "db", table: "t", holder: holder())
        // Released from a thread of its own: under a loaded test run the cooperative pool can
        // be busy for seconds, which is not what this test measures.
        let releaser = Thread {
            usleep(500_000)
            first.release()
        }
        let start = ContinuousClock.now
        releaser.start()
        let second = try await locks.acquire(database: "db", table: "t", holder: holder(2), wait: .seconds(60))
        let waited = ContinuousClock.now - start
        #expect(waited >= .milliseconds(450))
        #expect(waited < .seconds(60), "taken once released, not at the deadline")
        #expect(locks.recordedHolder(database: "db", table: "t")?.run == 2)
        second.release()
    }

    @Test("with wait, a holder that keeps the lock past the deadline gets a refusal saying how long it waited")
    func waitFailsPastDeadline() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let locks = TableLocks(folder: folder.path("locks"), pollInterval: .milliseconds(50))
        let first = try await locks.acquire(database: "db", table: "t", holder: holder())
        defer { first.release() }
        let start = ContinuousClock.now
        let error = await #expect(throws: TableLockError.self) {
            try await locks.acquire(database: "db", table: "t", holder: holder(2), wait: .seconds(1))
        }
        let waited = ContinuousClock.now - start
        #expect(waited >= .milliseconds(950))
        // A bound against hanging, wide enough for a loaded machine (a test run on 2 cores
        // stalled the pool for 5 s).
        #expect(waited < .seconds(30))
        #expect(error?.message.contains("still locked after waiting 1 s by restore run 7") == true, "\(error?.message ?? "")")
    }

    @Test("a lock held by another process is seen with its holder, and released when that process is killed")
    func childProcessHolder() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let locks = TableLocks(folder: folder.path("locks"))
        try await locks.acquire(database: "db", table: "t", holder: holder()).release()
        let child = try ShellLockHolder(path: locks.path(database: "db", table: "t"), seconds: 60)
        defer { if child.process.isRunning { child.killAndWait() } }
        #expect(try await child.waitUntilHeld(locks, database: "db", table: "t"))

        let error = await #expect(throws: TableLockError.self) {
            try await locks.acquire(database: "db", table: "t", holder: holder(), wait: .milliseconds(300))
        }
        #expect(error?.holder?.pid == child.pid)
        #expect(error?.message.contains("restore run 41 of journal /var/lib/other/journal.sqlite, pid \(child.pid)") == true,
                "\(error?.message ?? "")")

        child.killAndWait()
        #expect(child.process.terminationReason == .uncaughtSignal)
        let handle = try await locks.acquire(database: "db", table: "t", holder: holder(5))
        #expect(locks.recordedHolder(database: "db", table: "t")?.run == 5)
        handle.release()
    }

    @Test("odd database and table names map to distinct, safe file names, each its own lock")
    func oddNames() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let locks = TableLocks(folder: folder.path("locks"))
        let long = String(repeating: "x", count: 5000)
        let names: [(String, String)] = [
            ("db", "t"), ("a`b", "t"), ("a/b", "t"), ("a", "b/t"), ("..", ".."), (".", "."), ("", ""), ("a\nb", "t"),
            ("a.b", "c"), ("a", "b.c"), ("-rf", "*"), ("日本", "ü"), ("%2F", "t"), (long, long), (long, long + "y"),
            ("db\u{0}", "t"), ("DB", "t"),
        ]
        let files = names.map { TableLocks.fileName(database: $0.0, table: $0.1) }
        #expect(Set(files).count == names.count)
        for file in files {
            #expect(file.utf8.count <= 128)
            #expect(!file.hasPrefix(".") && !file.hasPrefix("-"))
            #expect(file.utf8.allSatisfy { byte in
                (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                    || byte == 0x5F || byte == 0x2E || byte == 0x2D
            }, "\(file)")
        }
        #expect(files[0].hasPrefix("db.t-"), "a plain name stays readable")
        var handles: [TableLockHandle] = []
        for (database, table) in names {
            handles.append(try await locks.acquire(database: database, table: table, holder: holder()))
        }
        #expect(handles.filter { $0.isHeld }.count == names.count, "no two names share a lock")
        let listed = try FileManager.default.contentsOfDirectory(atPath: locks.folder)
        #expect(listed.count == names.count, "every file is inside the locks folder")
        #expect(locks.recordedHolder(database: "a\nb", table: "t")?.database == "a\nb")
        handles.forEach { $0.release() }
    }

    @Test("10,000 tables locked and released one after another: every file made, fast enough for a restore")
    func tenThousandLocks() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let locks = TableLocks(folder: folder.path("locks"))
        let start = ContinuousClock.now
        for index in 0..<10_000 {
            let handle = try await locks.acquire(database: "db", table: "t\(index)", holder: holder())
            handle.release()
        }
        let elapsed = ContinuousClock.now - start
        print("10,000 table locks taken and released in \(elapsed)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: locks.folder).count == 10_000)
        #expect(elapsed < .seconds(30))
    }

    @Test("under umask 000 the locks folder is 0700 and the lock file 0600")
    func ownerOnlyUnderUmask000() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let locks = TableLocks(folder: folder.path("disk/backup/.inplace-locks"))
        // The umask is the process's: set it only around the one call that creates the files.
        let previous = umask(0)
        let handle: TableLockHandle
        do {
            handle = try await locks.acquire(database: "db", table: "t", holder: holder())
            umask(previous)
        } catch {
            umask(previous)
            throw error
        }
        defer { handle.release() }
        #expect(mode(locks.folder) == 0o700)
        #expect(mode(handle.path) == 0o600)
        #expect(mode(folder.path("disk/backup")) == 0o750, "the backups' folder as inplace create makes it")
    }

    @Test("a file planted at the lock's path that is not a regular file is refused, not followed")
    func plantedLinkRefused() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let locks = TableLocks(folder: folder.path("locks"))
        try await locks.acquire(database: "db", table: "x", holder: holder()).release()
        let target = folder.path("victim")
        try "keep me".write(toFile: target, atomically: true, encoding: .utf8)
        #expect(symlink(target, locks.path(database: "db", table: "t")) == 0)
        let error = await #expect(throws: TableLockError.self) {
            try await locks.acquire(database: "db", table: "t", holder: holder())
        }
        #expect(error?.kind == .io)
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "keep me")
    }
}

@Suite("inplace create and the table locks (test bed)", .enabled(if: TestBed.shouldRun))
struct CreateTableLockTests {
    @Test("create refuses a table locked by another process (exit 16, the holder named, no backup left), and with --wait-lock waits for it")
    func createRefusedThenWaits() async throws {
        let bed = try TestBed.load()
        let ch = try bed.clickHouse()
        let sample = try await SampleDatabase.make(ch, prefix: "it_lock", tables: ["t", "u"])
        let layout = LocalBackupLayout(disks: try await ClickHouseCatalog(client: ch).disks())
        let locks = TableLocks(layout: layout)
        // The file exists (0600) before the shell opens it, as it would after any earlier run.
        try await locks.acquire(database: sample.name, table: "t", holder: holder()).release()
        let path = locks.path(database: sample.name, table: "t")
        let config = TestBed.envFile.replacingOccurrences(of: "/env", with: "/config.yml")
        let arguments = ["create", "--config", config, "--tables", "\(sample.name).*"]
        var made: [String] = []

        let holding = try ShellLockHolder(path: path, seconds: 60)
        #expect(try await holding.waitUntilHeld(locks, database: sample.name, table: "t"))
        let refusedName = TestBed.uniqueName("lock")
        let refused = try await CLI.run(arguments + [refusedName])
        let impatient = try await CLI.run(arguments + ["--wait-lock", "1", refusedName])
        holding.killAndWait()
        #expect(refused.status == 16, "\(refused.stderr)")
        #expect(refused.stderr.contains(
            "`\(sample.name)`.`t` is locked by restore run 41 of journal /var/lib/other/journal.sqlite, pid \(holding.pid)"),
                "\(refused.stderr)")
        #expect(refused.stderr.contains("--wait-lock SECONDS"))
        #expect(impatient.status == 16)
        #expect(impatient.stderr.contains("still locked after waiting 1 s"), "\(impatient.stderr)")
        #expect(!FileSystem.exists(layout.folder(refusedName)), "a refused create leaves no backup behind")
        for table in ["t", "u"] {
            let free = try await locks.acquire(database: sample.name, table: table, holder: holder())
            free.release()
        }

        let briefly = try ShellLockHolder(path: path, seconds: 4)
        #expect(try await briefly.waitUntilHeld(locks, database: sample.name, table: "t"))
        let name = TestBed.uniqueName("lock")
        made.append(name)
        let start = ContinuousClock.now
        let waited = try await CLI.run(arguments + ["--wait-lock", "30", "--json", name])
        let elapsed = ContinuousClock.now - start
        briefly.process.waitUntilExit()
        // Done (exit 0) means it took the lock before the deadline; no upper bound on a loaded machine.
        #expect(waited.status == 0, "\(waited.stderr)")
        #expect(elapsed >= .seconds(1), "it waited for the holder (\(elapsed))")
        let summary = try JSONSerialization.jsonObject(with: Data(waited.stdout.utf8)) as? [String: String]
        #expect(summary?["tables"] == "2")
        #expect(summary?["parts"] == "6")
        #expect(FileSystem.exists(layout.metadataFile(name)))
        let after = try await locks.acquire(database: sample.name, table: "t",
                                            holder: TableLockHolder(journal: nil, run: nil, command: "test"))
        #expect(after.previous?.command?.hasPrefix("create") == true, "create released its locks; its record stays as the last holder's")
        after.release()

        for backup in made { try? FileManager.default.removeItem(atPath: layout.folder(backup)) }
        await sample.drop()
    }
}
