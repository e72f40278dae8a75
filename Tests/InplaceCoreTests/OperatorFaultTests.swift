import Foundation
import Testing

@testable import InplaceCore

/// A running `inplace` whose output goes to files (nothing blocks on a full pipe), optionally
/// under a given umask, that a test can freeze (SIGSTOP) at a known point and let go (SIGCONT).
///
/// Freezing stands in for "a restore is busy right now": the test bed cannot make a real restore
/// last long enough for a second command to meet it every time.
final class RunningCLI {
    let process: Process
    let folder: TemporaryFolder

    init(_ arguments: [String], environment: [String: String], umask: String? = nil) throws {
        folder = try TemporaryFolder()
        process = CLI.process(arguments, environment: environment)
        if let umask {
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "umask \(umask) && exec \"$0\" \"$@\"", CLI.binary] + arguments
        }
        FileManager.default.createFile(atPath: folder.path("out"), contents: nil)
        FileManager.default.createFile(atPath: folder.path("err"), contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: folder.url.appendingPathComponent("out"))
        process.standardError = try FileHandle(forWritingTo: folder.url.appendingPathComponent("err"))
        try process.run()
    }

    var pid: pid_t { process.processIdentifier }

    /// Waits (polling every millisecond) until `path` exists; false when the process ended first
    /// or 60 s passed.
    func waitFor(_ path: String) -> Bool {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if FileSystem.exists(path) { return true }
            if !process.isRunning { return false }
            usleep(1000)
        }
        return false
    }

    func freeze() { kill(pid, SIGSTOP) }
    func thaw() { kill(pid, SIGCONT) }

    func finish() -> CLI.Result {
        process.waitUntilExit()
        defer { folder.remove() }
        let read = { (name: String) in (try? String(contentsOfFile: self.folder.path(name), encoding: .utf8)) ?? "" }
        return CLI.Result(status: process.terminationStatus, stdout: read("out"), stderr: read("err"))
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on (just released by the kernel).
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestBed.Missing(description: "socket() failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
        }
    }
    guard bound else { throw TestBed.Missing(description: "bind() failed") }
    return Int(UInt16(bigEndian: address.sin_port))
}

func fileBytes(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }

func mode(_ path: String) -> mode_t? {
    var info = stat()
    return lstat(path, &info) == 0 ? info.st_mode & 0o7777 : nil
}

private func q(_ name: String) -> String { ClickHouseSQL.identifier(name) }

// MARK: - Server

@Suite("Operator faults: the server", .enabled(if: TestBed.shouldRun))
struct ServerFaultTests {
    let config = TestBed.envFile.replacingOccurrences(of: "/env", with: "/config.yml")

    @Test("a wrong ClickHouse password: exit 4, 'authentication failed' naming the setting, the password nowhere, no journal")
    func wrongPassword() async throws {
        let password = "Wr0ng-\(UUID().uuidString)"
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let journal = folder.path("journal.sqlite")
        for command in [["list", "local"], ["plan", "any"], ["restore", "--journal", journal, "any"]] {
            let result = try await CLI.run(command + ["--config", config], environment: ["CLICKHOUSE_PASSWORD": password])
            #expect(result.status == 4, "\(command): \(result.stderr)")
            #expect(result.stderr.contains("authentication failed"), "\(result.stderr)")
            #expect(result.stderr.contains("clickhouse.password"))
            #expect(!result.all.contains(password))
        }
        #expect(!FileSystem.exists(journal))
    }

    @Test("an unreachable ClickHouse: exit 4 naming host:port and the settings to check")
    func unreachable() async throws {
        let port = try freeLoopbackPort()
        let started = ContinuousClock.now
        let result = try await CLI.run(["plan", "any", "--config", config],
                                 environment: ["CLICKHOUSE_HTTP_PORT": String(port)])
        #expect(result.status == 4, "\(result.stderr)")
        #expect(result.stderr.contains("127.0.0.1:\(port)"), "\(result.stderr)")
        #expect(result.stderr.contains("clickhouse.host") && result.stderr.contains("clickhouse.http_port"))
        #expect(ContinuousClock.now - started < .seconds(60), "an unreachable server is reported, not waited on for ever")
    }
}

/// Debian's clickhouse-server 18.16 (tools/setup installs it), started by the test with its own
/// config, data folder and loopback port.
@Suite("Operator faults: a genuine server older than supported")
struct OldServerTests {
    static var binaryPresent: Bool {
        ["/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"].contains { FileManager.default.isExecutableFile(atPath: $0) }
    }

    @Test("plan and restore against ClickHouse 18.16 exit 5 naming the version and the minimum; nothing is created on it",
          .enabled(if: TestBed.isCI || binaryPresent))
    func refusesOldServer() async throws {
        guard Self.binaryPresent else {
            throw TestBed.Missing(description: "clickhouse-server (Debian's 18.16) is not installed: run tools/setup")
        }
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let server = folder.path("server")
        let port = try freeLoopbackPort()
        let password = "OldPassw0rd-\(UUID().uuidString.prefix(8))"
        let script = TestBed.repositoryRoot.appendingPathComponent("tools/old-clickhouse").path
        let start = try CLI.runTool(script, ["start", server, String(port), "inplace", password])
        defer { _ = try? CLI.runTool(script, ["stop", server]) }
        #expect(start.status == 0, "\(start.stderr)")
        try """
            general:
              remote_storage: none
            clickhouse:
              host: 127.0.0.1
              http_port: \(port)
              username: inplace
              password: \(password)
            """.write(toFile: folder.path("config.yml"), atomically: true, encoding: .utf8)
        let before = try FileSystem.files(under: server + "/data").sorted()
        let journal = folder.path("journal.sqlite")
        for command in [["plan", "any"], ["restore", "--journal", journal, "any"], ["list", "local"]] {
            let result = try await CLI.run(command + ["--config", folder.path("config.yml")])
            #expect(result.status == 5, "\(command): \(result.stderr)")
            #expect(result.stderr.contains("18.16"), "\(result.stderr)")
            #expect(result.stderr.contains(ClickHouseVersion.minimumSupported.text))
            #expect(result.stderr.contains("Nothing was changed"))
            #expect(!result.all.contains(password))
        }
        #expect(!FileSystem.exists(journal))
        // No database, table or file appeared on the server (its own logs are outside data/).
        let after = try FileSystem.files(under: server + "/data").sorted()
        #expect(after.filter { !$0.hasPrefix("status") } == before.filter { !$0.hasPrefix("status") })
        let databases = try CLI.runTool("/usr/bin/curl", ["-s", "-u", "inplace:\(password)",
                                                          "http://127.0.0.1:\(port)/?query=SELECT%20name%20FROM%20system.databases%20ORDER%20BY%20name"])
        #expect(databases.stdout == "default\nsystem\n")
    }
}

extension CLI {
    /// Runs another program (a test tool), capturing its output.
    static func runTool(_ path: String, _ arguments: [String]) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        return try CLI.runToEnd(process)
    }
}

// MARK: - Configuration

@Suite("Operator faults: the configuration")
struct ConfigFaultTests {
    private func run(_ yaml: String, _ arguments: [String], environment: [String: String] = [:]) async throws -> CLI.Result {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        try yaml.write(toFile: folder.path("c.yml"), atomically: true, encoding: .utf8)
        return try await CLI.run(arguments + ["--config", folder.path("c.yml")], environment: environment)
    }

    @Test("malformed YAML: exit 3 with the line and column, the broken line (holding a password) not quoted")
    func malformedYAML() async throws {
        let secret = "Secr3tOnTheBadLine"
        let result = try await run("clickhouse:\n  host: localhost\n  password: \(secret): [x\n", ["plan", "any"])
        #expect(result.status == 3)
        #expect(result.stderr.contains("not valid YAML") && result.stderr.contains("line 3"), "\(result.stderr)")
        #expect(!result.all.contains(secret))
        #expect(!result.all.contains("password:"))
    }

    @Test("an unknown general.remote_storage: exit 3 naming the key and the values allowed")
    func unknownRemoteStorage() async throws {
        let result = try await run("general:\n  remote_storage: dropbox\n", ["list", "remote"])
        #expect(result.status == 3)
        #expect(result.stderr.contains("general.remote_storage") && result.stderr.contains("'dropbox'"), "\(result.stderr)")
        #expect(result.stderr.contains("use s3 or none"))
    }

    @Test("remote storage s3 without a bucket: exit 3 naming s3.bucket and S3_BUCKET")
    func missingBucket() async throws {
        let result = try await run("general:\n  remote_storage: s3\ns3:\n  access_key: a\n  secret_key: b\n", ["list", "remote"])
        #expect(result.status == 3)
        #expect(result.stderr.contains("s3.bucket") && result.stderr.contains("S3_BUCKET"), "\(result.stderr)")
    }

    @Test("a wrong S3 secret: exit 6, the 403 explained with the settings to check, the secret nowhere",
          .enabled(if: TestBed.shouldRun))
    func wrongS3Secret() async throws {
        let secret = "Wr0ngS3cret-\(UUID().uuidString)"
        let config = TestBed.envFile.replacingOccurrences(of: "/env", with: "/config.yml")
        for command in [["list", "remote"], ["plan", "--from", "remote", "any"]] {
            let result = try await CLI.run(command + ["--config", config], environment: ["S3_SECRET_KEY": secret])
            #expect(result.status == 6, "\(command): \(result.stderr)")
            #expect(result.stderr.contains("HTTP 403") && result.stderr.contains("s3.secret_key"), "\(result.stderr)")
            #expect(!result.all.contains(secret))
        }
    }
}

// MARK: - Journal, process title, permissions

/// A database with a backup on S3 and changes since: each test restores it through the binary.
struct RemoteRestoreFixture {
    let scenario: RestoreScenario
    let name: String
    let env: [String: String]
    let config: String
    let store: RemoteBackupStore
    let disk: String

    static func make(_ prefix: String) async throws -> RemoteRestoreFixture {
        let bed = try TestBed.load()
        let ch = try bed.clickHouse()
        let scenario = RestoreScenario(ch: ch, db: TestBed.uniqueName(prefix))
        try await scenario.original()
        let name = TestBed.uniqueName(prefix)
        let env = ["S3_PATH": "it/\(TestBed.uniqueName(prefix))"]
        let config = TestBed.envFile.replacingOccurrences(of: "/env", with: "/config.yml")
        let created = try await CLI.run(["create", "--config", config, "--tables", "\(scenario.db).*", name], environment: env)
        #expect(created.status == 0, "\(created.stderr)")
        #expect(try await CLI.run(["upload", "--config", config, name], environment: env).status == 0)
        let layout = LocalBackupLayout(disks: try await ClickHouseCatalog(client: ch).disks())
        try FileManager.default.removeItem(atPath: layout.folder(name))
        try await scenario.changed()
        return RemoteRestoreFixture(scenario: scenario, name: name, env: env, config: config,
                                    store: RemoteBackupStore(s3: try bed.s3(), path: env["S3_PATH"]!), disk: layout.root)
    }

    func restoreArguments(journal: String) -> [String] {
        ["restore", "--config", config, "--journal", journal, "--from", "remote", name]
    }

    /// Starts the restore and freezes it as soon as it holds its journal (lock taken, WAL open).
    func startFrozenRestore(journal: String, environment: [String: String] = [:], umask: String? = nil) throws -> RunningCLI {
        let running = try RunningCLI(restoreArguments(journal: journal), environment: env.merging(environment) { $1 },
                                     umask: umask)
        #expect(running.waitFor(journal + "-shm") && running.waitFor(journal + "-wal"), "the restore opened its journal")
        running.freeze()
        #expect(running.process.isRunning, "the restore was still running when frozen")
        return running
    }

    /// Differences between the live tables and the backup (empty when equal).
    func differences() async throws -> [String] {
        try await scenario.differences(from: RemoteBackupSource(name: name, store: store))
    }

    func drop() async { _ = try? await scenario.ch.execute("DROP DATABASE IF EXISTS \(q(scenario.db)) SYNC") }
}

@Suite("Operator faults: the journal", .enabled(if: TestBed.shouldRun))
struct JournalFaultTests {
    @Test("a second restore on a journal in use exits 14 saying so; the first is unaffected and completes")
    func secondRestoreRefused() async throws {
        let fixture = try await RemoteRestoreFixture.make("it_jlock")
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let journal = folder.path("journal.sqlite")
        let first = try fixture.startFrozenRestore(journal: journal)
        let second = try await CLI.run(fixture.restoreArguments(journal: journal), environment: fixture.env)
        first.thaw()
        #expect(second.status == 14, "\(second.stderr)")
        #expect(second.stderr.contains("another inplace process is using the journal"))
        let result = first.finish()
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try await fixture.differences() == [])
        let runs = try await Journal(path: journal, readOnly: true).runs()
        #expect(runs.map(\.state) == [.done], "one run only, the first's")
        await fixture.drop()
    }

    @Test("a file that is not a journal (random bytes, another application's SQLite, a newer schema) is refused and left unchanged",
          .enabled(if: TestBed.shouldRun))
    func foreignFilesRefused() async throws {
        let config = TestBed.envFile.replacingOccurrences(of: "/env", with: "/config.yml")
        let folder = try TemporaryFolder()
        defer { folder.remove() }

        let random = folder.path("random.sqlite")
        FileManager.default.createFile(atPath: random, contents: Data((0..<8192).map { _ in UInt8.random(in: 0...255) }))

        let foreign = folder.path("notes.db")
        do {
            let db = try SQLiteConnection(path: foreign, journalMode: .delete)
            try db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT); INSERT INTO notes (text) VALUES ('keep me')")
        }

        let newer = folder.path("newer.sqlite")
        do {
            let journal = try Journal(path: newer)
            _ = try await journal.createRun(backup: "b", source: "local", options: "{}")
        }
        do {
            let db = try SQLiteConnection(path: newer)
            try db.execute("PRAGMA user_version = \(Journal.knownVersion + 7)")
        }

        let cases = [(random, "is not an inplace journal (not a SQLite database)"),
                     (foreign, "is a SQLite database but not an inplace journal"),
                     (newer, "was written by a newer inplace (schema \(Journal.knownVersion + 7)")]
        for (path, message) in cases {
            let before = try #require(fileBytes(path))
            for command in [["resume"], ["journal", "list"], ["journal", "show"], ["journal", "replay", "1", "--failed"]] {
                let result = try await CLI.run(command + ["--config", config, "--journal", path])
                #expect(result.status == 14, "\(command) on \(path): \(result.stderr)")
                #expect(result.stderr.contains(message), "\(command): \(result.stderr)")
            }
            #expect(fileBytes(path) == before, "\(path) is unchanged")
            #expect(!FileSystem.exists(path + "-wal") || path == newer, "no WAL was started beside \(path)")
        }
    }

    @Test("the journal deleted while a restore runs: the restore completes, and the run exits 14 saying its record is lost")
    func journalDeletedMidRun() async throws {
        let fixture = try await RemoteRestoreFixture.make("it_jgone")
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let journal = folder.path("journal.sqlite")
        let running = try fixture.startFrozenRestore(journal: journal)
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: journal + suffix) }
        running.thaw()
        let result = running.finish()
        #expect(result.status == 14, "\(result.stderr)")
        #expect(result.stderr.contains("was deleted or replaced while this process used it"), "\(result.stderr)")
        #expect(result.stdout.contains("done"), "the summary of what was done is still printed")
        #expect(try await fixture.differences() == [], "the restore itself finished consistently")
        await fixture.drop()
    }
}

@Suite("Operator faults: process title and file permissions", .enabled(if: TestBed.shouldRun))
struct ProcessAndPermissionTests {
    @Test("while a restore runs, its command line holds no secret and it has no child process")
    func processTitle() async throws {
        let bed = try TestBed.load()
        let fixture = try await RemoteRestoreFixture.make("it_title")
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let journal = folder.path("journal.sqlite")
        let running = try fixture.startFrozenRestore(
            journal: journal, environment: ["CLICKHOUSE_PASSWORD": bed.clickHousePassword, "S3_SECRET_KEY": bed.s3SecretKey])
        let cmdline = fileBytes("/proc/\(running.pid)/cmdline") ?? Data()
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(running.pid)/task")) ?? []
        let children = tasks.compactMap { try? String(contentsOfFile: "/proc/\(running.pid)/task/\($0)/children", encoding: .utf8) }
            .joined().trimmingCharacters(in: .whitespacesAndNewlines)
        running.thaw()
        let result = running.finish()
        #expect(result.status == 0, "\(result.stderr)")
        #expect(String(decoding: cmdline, as: UTF8.self).contains("restore"), "the command line was read")
        for secret in [bed.clickHousePassword, bed.s3SecretKey] {
            #expect(cmdline.range(of: Data(secret.utf8)) == nil)
            #expect(!result.all.contains(secret))
        }
        #expect(!tasks.isEmpty)
        #expect(children.isEmpty, "inplace spawns no process (children: \(children))")
        await fixture.drop()
    }

    @Test("the journal, its -wal, -shm and lock, its folder and the staging folders are owner-only whatever the umask",
          arguments: ["022", "000"])
    func ownerOnly(umask: String) async throws {
        let fixture = try await RemoteRestoreFixture.make("it_perm")
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let journal = folder.path("new-folder/journal.sqlite")
        let staging = fixture.disk + ".inplace-staging"
        let watcher = StagingWatcher(root: staging)
        let running = try fixture.startFrozenRestore(journal: journal, umask: umask)
        let journalModes = [journal, journal + "-wal", journal + "-shm", journal + ".lock"].map { ($0, mode($0)) }
        let folderMode = mode(folder.path("new-folder"))
        watcher.start()
        running.thaw()
        let result = running.finish()
        watcher.stop()
        #expect(result.status == 0, "\(result.stderr)")
        for (path, found) in journalModes { #expect(found == 0o600, "\(path): \(found.map { String($0, radix: 8) } ?? "missing")") }
        #expect(folderMode == 0o700)
        let seen = watcher.seen
        #expect(!seen.isEmpty, "staging folders were seen during the downloads")
        for (path, found) in seen { #expect(found == 0o700, "\(path): \(String(found, radix: 8))") }
        #expect(mode(staging) == 0o700)
        await fixture.drop()
    }
}

/// Watches the staging folders of a disk from a thread of its own, recording the mode of every
/// folder seen in them (they live only while a part downloads).
final class StagingWatcher: @unchecked Sendable {
    let root: String
    private let lock = NSLock()
    private var modes: [String: mode_t] = [:]
    private var running = false
    private var thread: Thread?

    init(root: String) { self.root = root }

    var seen: [(String, mode_t)] { lock.withLock { modes.map { ($0.key, $0.value) } } }

    func start() {
        lock.withLock { running = true }
        let thread = Thread { [self] in
            while lock.withLock({ running }) {
                for entry in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] {
                    let path = root + "/" + entry
                    var found = [(path, mode(path))]
                    for inner in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] where inner.hasPrefix(".inplace-fetch-") {
                        found.append((path + "/" + inner, mode(path + "/" + inner)))
                    }
                    lock.withLock {
                        for case let (path, mode?) in found where modes[path] == nil || modes[path] != 0o700 { modes[path] = mode }
                    }
                }
                usleep(300)
            }
        }
        self.thread = thread
        thread.start()
    }

    func stop() {
        lock.withLock { running = false }
        usleep(2000)
    }
}
