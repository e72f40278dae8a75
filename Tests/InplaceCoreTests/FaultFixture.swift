import Foundation
import Testing

@testable import InplaceCore

private func q(_ name: String) -> String { ClickHouseSQL.identifier(name) }

/// One remote backup per suite: table `t` of six parts of about 3.3 MB each (SHA-256 digests:
/// deterministic, so a part inserted again has the backup's content hash, and incompressible,
/// so downloads take long enough for a fault to land mid-way), uploaded to S3 and removed
/// locally so that every restore downloads through the proxy.
actor FaultBackup {
    static let shared = FaultBackup()
    /// Its own database for the suite that kills the ClickHouse server.
    static let forRestart = FaultBackup()

    static let parts = 6
    static let partRows = 100_000
    /// Parts the rebuilt live table shares with the backup (the rest are downloaded).
    static let kept = 2

    struct Made: Sendable {
        let db: String
        let name: String
        let s3Path: String
        /// hash_of_all_files of the backup's parts, sorted.
        let hashes: [String]
    }

    private var made: Made?

    func make(bed: TestBed, ch: ClickHouseClient, config: String) async throws -> Made {
        if let made { return made }
        let db = TestBed.uniqueName("it_fault")
        try await ch.execute("CREATE DATABASE \(q(db))")
        try await Self.createTable(ch, db)
        for index in 0..<Self.parts { try await Self.insert(ch, db, index: index, rows: Self.partRows) }
        let name = TestBed.uniqueName("fault")
        let s3Path = "it/\(TestBed.uniqueName("fault"))"
        for command in [["create", "--config", config, "--tables", "\(db).*", name], ["upload", "--config", config, name]] {
            let result = try await CLI.run(command, environment: ["S3_PATH": s3Path])
            guard result.status == 0 else {
                throw FaultProxy.Failure(description: "inplace \(command[0]) failed (\(result.status)): \(result.stderr)")
            }
        }
        let layout = LocalBackupLayout(disks: try await ClickHouseCatalog(client: ch).disks())
        try FileManager.default.removeItem(atPath: layout.folder(name))
        let backup = RemoteBackupSource(name: name, store: RemoteBackupStore(s3: try bed.s3(), path: s3Path))
        let hashes = try await backup.tableMetadata(database: db, table: "t").hash_of_all_files?.values.sorted() ?? []
        guard hashes.count == Self.parts else {
            throw FaultProxy.Failure(description: "the backup holds \(hashes.count) parts, not \(Self.parts)")
        }
        let made = Made(db: db, name: name, s3Path: s3Path, hashes: hashes)
        self.made = made
        return made
    }

    /// Merges are off for good (a 1-byte merge budget): `SYSTEM STOP MERGES` does not survive a
    /// server restart and the restore starts merges again when it finishes; merged parts would
    /// hide what the part comparisons check.
    static func createTable(_ ch: ClickHouseClient, _ db: String) async throws {
        try await ch.execute("""
            CREATE TABLE \(q(db)).t (id UInt64, h FixedString(32)) ENGINE = MergeTree ORDER BY id
            SETTINGS max_bytes_to_merge_at_max_space_in_pool = 1, max_bytes_to_merge_at_min_space_in_pool = 1
            """)
        try await ch.execute("SYSTEM STOP MERGES \(q(db)).t")
    }

    static func insert(_ ch: ClickHouseClient, _ db: String, index: Int, rows: Int) async throws {
        let base = index * 10_000_000
        try await ch.execute("INSERT INTO \(q(db)).t SELECT number + \(base), SHA256(toString(number + \(base))) FROM numbers(\(rows))")
    }
}

/// One fault test's world: the suite's backup, the live table rebuilt as the backup's first two
/// parts plus a part the backup lacks (a restore drops one part and downloads four), a proxy in
/// front of S3, and a journal of its own.
struct FaultRun {
    let bed: TestBed
    let ch: ClickHouseClient
    let config: String
    let backup: FaultBackup.Made
    let proxy: FaultProxy
    let folder: TemporaryFolder
    /// `<default disk>/backup/.inplace-staging/`, where downloads are staged.
    let stagingRoot: String
    /// The live part the backup lacks (the restore's one drop).
    let extraHash: String

    static func start(_ shared: FaultBackup = .shared) async throws -> FaultRun {
        let bed = try TestBed.load()
        let ch = try bed.clickHouse()
        let config = TestBed.envFile.replacingOccurrences(of: "/env", with: "/config.yml")
        let backup = try await shared.make(bed: bed, ch: ch, config: config)
        try await ch.execute("DROP TABLE IF EXISTS \(q(backup.db)).t SYNC")
        try await FaultBackup.createTable(ch, backup.db)
        for index in 0..<FaultBackup.kept {
            try await FaultBackup.insert(ch, backup.db, index: index, rows: FaultBackup.partRows)
        }
        try await FaultBackup.insert(ch, backup.db, index: 9, rows: 1000)
        guard let disk = try await ClickHouseCatalog(client: ch).disks().first(where: { $0.name == "default" }) else {
            throw FaultProxy.Failure(description: "the server has no default disk")
        }
        let extra = try await ClickHouseCatalog(client: ch).parts(of: [(backup.db, "t")]).map(\.hash)
            .filter { !backup.hashes.contains($0) }
        guard extra.count == 1 else {
            throw FaultProxy.Failure(description: "the live table should hold one part the backup lacks, not \(extra.count)")
        }
        return FaultRun(bed: bed, ch: ch, config: config, backup: backup,
                        proxy: try FaultProxy(upstream: try bed.value("S3_ENDPOINT")), folder: try TemporaryFolder(),
                        stagingRoot: disk.path + "backup/.inplace-staging/", extraHash: extra[0])
    }

    func finish() {
        proxy.stop()
        folder.remove()
    }

    var journal: String { folder.path("journal.sqlite") }

    /// Short retries (one retry of a step, 1 s pause at most) keep failing runs short.
    func environment(concurrency: Int = 4) -> [String: String] {
        ["S3_PATH": backup.s3Path, "S3_ENDPOINT": proxy.endpoint, "RETRIES_ON_FAILURE": "1", "RETRIES_PAUSE": "1s",
         "DOWNLOAD_CONCURRENCY": String(concurrency)]
    }

    /// GETs of the backup's part archives: listings, metadata and HEADs pass.
    var partDownloads: FaultProxy.Filter {
        FaultProxy.Filter(pathPrefix: "/\(bed.values["S3_BUCKET"] ?? "")/\(backup.s3Path)/\(backup.name)/shadow/")
    }

    var restoreArguments: [String] {
        ["restore", "--config", config, "--journal", journal, "--from", "remote", "--json", backup.name]
    }

    func restore(concurrency: Int = 4) async throws -> CLI.Result {
        try await CLI.run(restoreArguments, environment: environment(concurrency: concurrency))
    }

    func resume() async throws -> CLI.Result {
        try await CLI.run(["resume", "--config", config, "--journal", journal, "--json"], environment: environment())
    }

    func replayFailed() async throws -> CLI.Result {
        try await CLI.run(["journal", "replay", "1", "--failed", "--config", config, "--journal", journal, "--json"],
                    environment: environment())
    }

    /// Replays the failed steps once the fault is gone: it must succeed and leave the table equal
    /// to the backup.
    func replayToBackup(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let replayed = try await replayFailed()
        #expect(replayed.status == 0, "\(replayed.stdout) \(replayed.stderr)", sourceLocation: sourceLocation)
        #expect(try await differences() == [], sourceLocation: sourceLocation)
    }

    func summary(_ result: CLI.Result) -> RestoreSummary? {
        try? JSONDecoder().decode(RestoreSummary.self, from: Data(result.stdout.utf8))
    }

    func events() async throws -> [JournalEvent] {
        try await Journal(path: journal, readOnly: true).events(1)
    }

    private func liveParts() async throws -> [ClickHouseCatalog.Part] {
        try await ClickHouseCatalog(client: ch).parts(of: [(backup.db, "t")])
    }

    /// Differences between the live table and the backup: parts as a multiset of content hashes,
    /// rows counted with no id twice. Empty when equal.
    func differences() async throws -> [String] {
        var problems: [String] = []
        let live = try await liveParts().map(\.hash).sorted()
        if live != backup.hashes { problems.append("parts \(live) instead of \(backup.hashes)") }
        let rows = FaultBackup.parts * FaultBackup.partRows
        let counts = try await ch.execute("SELECT count(), uniqExact(id) FROM \(q(backup.db)).t")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        if counts != "\(rows)\t\(rows)" { problems.append("count and distinct ids \(counts), expected \(rows) each") }
        return problems + (try await leftovers())
    }

    /// After a run that failed: the parts both sides had are still there, every live part is one
    /// of the backup's or the live part the backup lacks (nothing half-written attached, no id
    /// twice), and that part is still there unless every attach is done (a live part is dropped
    /// only once the backup's parts are all in); nothing is left in detached/ or staging.
    func problemsAfterFailure(mounts: Set<String> = []) async throws -> [String] {
        var problems: [String] = []
        let live = try await liveParts().map(\.hash)
        var wanted = backup.hashes + [extraHash]
        for hash in live {
            if let index = wanted.firstIndex(of: hash) { wanted.remove(at: index) } else {
                problems.append("live part \(hash) is not one of the backup's")
            }
        }
        let attachesLeft = try await events().contains { $0.kind == .attachPart && $0.state != .done }
        if attachesLeft && !live.contains(extraHash) {
            problems.append("the live part the backup lacks was dropped before the backup's parts were all attached")
        }
        let keptRows = FaultBackup.kept * FaultBackup.partRows
        let counts = try await ch.execute("SELECT count() = uniqExact(id), countIf(id < \(FaultBackup.kept * 10_000_000)) FROM \(q(backup.db)).t")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        if counts != "1\t\(keptRows)" { problems.append("rows: ids unique and kept rows: \(counts), expected 1 and \(keptRows)") }
        // The run ended: no step is left as begun.
        for event in try await events() where event.state == .started {
            problems.append("\(event.kind.rawValue) \(event.part ?? "") is still started")
        }
        return problems + (try await leftovers(mounts: mounts))
    }

    /// This run's staging folders (but `mounts`, checked apart), and what is in the table's
    /// detached/ folders apart from parts whose download is done when `allowDownloaded` (those
    /// wait for their attach, legitimately).
    func leftovers(allowDownloaded: Bool = false, mounts: Set<String> = []) async throws -> [String] {
        var found = ((try? FileManager.default.contentsOfDirectory(atPath: stagingRoot)) ?? [])
            .filter { $0.hasPrefix(stagingPrefix) && !mounts.contains($0) }.map { "staging/\($0)" }
        let downloaded = allowDownloaded
            ? Set(try await events().filter { $0.kind == .downloadPart && $0.state == .done }.compactMap(\.part)) : []
        for table in try await ClickHouseCatalog(client: ch).tables() where table.database == backup.db {
            for path in table.dataPaths {
                let folder = (path.hasSuffix("/") ? path : path + "/") + "detached"
                found += ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [])
                    .filter { !downloaded.contains($0) }.map { "\(table.name)/detached/\($0)" }
            }
        }
        return found
    }

    /// Staging folders of this run are named with this prefix and the event's id.
    var stagingPrefix: String { RestoreRunner.stagingPrefix(journal: journal, run: 1) }
}

/// A command running in the background, its output going to files.
struct BackgroundCommand {
    let process: Process
    let stdout: String
    let stderr: String

    init(_ arguments: [String], environment: [String: String], folder: TemporaryFolder) throws {
        process = CLI.process(arguments, environment: environment)
        let tag = UUID().uuidString
        stdout = folder.path("out-\(tag)")
        stderr = folder.path("err-\(tag)")
        FileManager.default.createFile(atPath: stdout, contents: nil)
        FileManager.default.createFile(atPath: stderr, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdout))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderr))
        try process.run()
    }

    /// Waits for the exit; SIGKILLs the process (and fails) after `timeout`.
    func wait(timeout: Duration) async throws -> CLI.Result {
        let ended = try await waitUntil(timeout) { !process.isRunning }
        if !ended {
            kill(process.processIdentifier, SIGKILL)
            Issue.record("\(process.arguments ?? []) did not end within \(timeout)")
        }
        process.waitUntilExit()
        return CLI.Result(status: process.terminationStatus,
                          stdout: (try? String(contentsOfFile: stdout, encoding: .utf8)) ?? "",
                          stderr: (try? String(contentsOfFile: stderr, encoding: .utf8)) ?? "")
    }
}

/// Polls `condition`; false when `timeout` passed first.
func waitUntil(_ timeout: Duration, every interval: Duration = .milliseconds(50),
               _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: interval)
    }
    return try await condition()
}

/// Runs a program (not `inplace`) to its end.
func runProgram(_ path: String, _ arguments: [String]) throws -> CLI.Result {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    return try CLI.runToEnd(process)
}
