import Foundation
import Testing

@testable import InplaceCore

private func q(_ name: String) -> String { ClickHouseSQL.identifier(name) }

/// Who owns what a restore writes, on the test bed, where ClickHouse runs as the unprivileged
/// user tools/setup makes (inplace-ch) with its data owned by it, as a packaged server runs as
/// `clickhouse`: `inplace` run as root gives what it writes to that user; run as that user, it
/// works; run as anyone else (`nobody`), it is refused before anything changes. Real processes,
/// switched to the other users with setpriv.
@Suite("File ownership on the test bed: root, the server's user, another user", .enabled(if: TestBed.shouldRun), .serialized)
struct OwnershipTests {
    let bed: TestBed
    let ch: ClickHouseClient
    let config: String

    init() throws { (bed, ch, config) = try TestBed.clients() }

    /// A table of 6 parts in 2 partitions, backed up (as root), then changed: 2 parts dropped, 1
    /// inserted. `owner` is the owner of the server's default disk folder.
    struct Fixture {
        let db: String
        let name: String
        let env: [String: String]
        let atBackup: String
        let owner: FileOwner
        let layout: LocalBackupLayout
    }

    private func fixture(_ prefix: String) async throws -> Fixture {
        let disks = try await ClickHouseCatalog(client: ch).disks()
        let layout = LocalBackupLayout(disks: disks)
        let owner = try FileOwner.of(layout.defaultDiskPath)
        try #require(geteuid() == 0 && owner.uid != 0,
                     "the tests run as root against a server that runs as another user: start the test bed as root (tools/testbed up)")
        let db = TestBed.uniqueName(prefix)
        try await ch.execute("CREATE DATABASE \(q(db))")
        try await ch.execute("CREATE TABLE \(q(db)).t (d Date, id UInt64, s String) ENGINE = MergeTree PARTITION BY toYYYYMM(d) ORDER BY id")
        try await ch.execute("SYSTEM STOP MERGES \(q(db)).t")
        for index in 0..<6 {
            try await ch.execute("INSERT INTO \(q(db)).t SELECT toDate('2024-0\(1 + index % 2)-01'), number + \(index * 1000), toString(number) FROM numbers(\(50 + index))")
        }
        let atBackup = try await contents(db)
        let name = TestBed.uniqueName(prefix)
        let env = ["S3_PATH": "it/\(TestBed.uniqueName(prefix))"]
        let created = try await CLI.run(["create", "--config", config, "--tables", "\(db).*", name], environment: env)
        try #require(created.status == 0, "\(created.all)")
        try await change(db)
        return Fixture(db: db, name: name, env: env, atBackup: atBackup, owner: owner, layout: layout)
    }

    private func change(_ db: String) async throws {
        for part in try await ClickHouseCatalog(client: ch).parts(of: [(db, "t")]).map(\.name).prefix(2) {
            try await ch.execute("ALTER TABLE \(q(db)).t DROP PART \(ClickHouseSQL.string(part))")
        }
        try await ch.execute("INSERT INTO \(q(db)).t SELECT toDate('2024-03-01'), number + 90000, 'new' FROM numbers(7)")
    }

    private func contents(_ db: String) async throws -> String {
        try await ch.execute("SELECT _partition_id, count(), sum(cityHash64(*)) FROM \(q(db)).t GROUP BY 1 ORDER BY 1")
    }

    /// Every file and folder at (or, `recursive`, under) `path` that is not `owner`'s (uid and gid).
    private func notOwned(_ path: String, by owner: FileOwner, recursive: Bool = true) -> [String] {
        var paths = [path]
        if recursive, let enumerator = FileManager.default.enumerator(atPath: path) {
            while let relative = enumerator.nextObject() as? String { paths.append(path + "/" + relative) }
        }
        return paths.filter { entry in
            var info = stat()
            return lstat(entry, &info) != 0 || info.st_uid != owner.uid || info.st_gid != owner.gid
        }
    }

    /// What the restore of the fixture's table wrote that is not `owner`'s: its active parts, its
    /// detached/, its lock file, the staging root; and the backup `inplace create` wrote. The
    /// locks folder itself only: other tables' lock files are not this restore's.
    private func writtenNotOwned(_ f: Fixture) async throws -> [String] {
        var paths = try await ClickHouseCatalog(client: ch).parts(of: [(f.db, "t")]).map(\.path)
        let table = try #require(try await ClickHouseCatalog(client: ch).tables().first { $0.database == f.db && $0.name == "t" })
        paths += table.dataPaths.map { ($0.hasSuffix("/") ? $0 : $0 + "/") + "detached" }
        let locks = TableLocks(layout: f.layout)
        paths.append(locks.path(database: f.db, table: "t"))
        if FileSystem.exists(f.layout.folder(f.name)) { paths.append(f.layout.folder(f.name)) }
        // The staging root and locks folder themselves: what is inside them belongs to other
        // tests' runs going on beside this one (some of which fill staging up on purpose).
        let staging = f.layout.root + ".inplace-staging"
        return paths.flatMap { notOwned($0, by: f.owner) } + notOwned(locks.folder, by: f.owner, recursive: false)
            + (FileSystem.exists(staging) ? notOwned(staging, by: f.owner, recursive: false) : [])
    }

    /// A fresh folder (journal, config copy) owned by `uid`, so that a process running as that
    /// user can use it.
    private func folder(for uid: uid_t, gid: gid_t) throws -> TemporaryFolder {
        let folder = try TemporaryFolder()
        let copy = folder.path("config.yml")
        try FileManager.default.copyItem(atPath: config, toPath: copy)
        #expect(chown(folder.url.path, uid, gid) == 0 && chown(copy, uid, gid) == 0)
        return folder
    }

    /// The `inplace` binary run as another user (setpriv: no other groups), to its end.
    private func runAs(uid: uid_t, gid: gid_t, _ arguments: [String], environment: [String: String]) async throws -> CLI.Result {
        let process = CLI.process(arguments, environment: environment)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = ["--reuid=\(uid)", "--regid=\(gid)", "--clear-groups", CLI.binary] + arguments
        return try await CLI.run(process)
    }

    @Test("run as root, a restore leaves everything it wrote the server's user's, from a local backup and from S3")
    func rootGivesToTheServer() async throws {
        let f = try await fixture("own_root")
        defer { try? FileManager.default.removeItem(atPath: f.layout.folder(f.name)) }
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let journal = folder.path("journal.sqlite")
        // The backup inplace create wrote as root is the server's, as clickhouse-backup leaves it.
        #expect(notOwned(f.layout.folder(f.name), by: f.owner) == [])

        let local = try await CLI.run(["restore", "--config", config, "--journal", journal, "--json", f.name], environment: f.env)
        #expect(local.status == 0, "\(local.all)")
        #expect(try await contents(f.db) == f.atBackup, "rows per partition and their checksum")
        let strayLocal = try await writtenNotOwned(f)
        #expect(strayLocal == [], "local restore: \(strayLocal)")

        // From S3: the parts are extracted from archives (not hard-linked) and given all the same.
        #expect(try await CLI.run(["upload", "--config", config, f.name], environment: f.env).status == 0)
        try FileManager.default.removeItem(atPath: f.layout.folder(f.name))
        try await change(f.db)
        #expect(try await contents(f.db) != f.atBackup)
        let remote = try await CLI.run(["restore", "--config", config, "--journal", journal, "--from", "remote", "--json", f.name],
                                       environment: f.env)
        #expect(remote.status == 0, "\(remote.all)")
        let summary = try JSONDecoder().decode(RestoreSummary.self, from: Data(remote.stdout.utf8))
        #expect(summary.bytesDownloaded > 0, "the remote restore downloaded its parts")
        #expect(try await contents(f.db) == f.atBackup, "rows per partition and their checksum")
        let strayRemote = try await writtenNotOwned(f)
        #expect(strayRemote == [], "remote restore: \(strayRemote)")
    }

    @Test("run as the server's user, a restore works, after a root run made the journal and the table's lock file")
    func serverUserRestores() async throws {
        let f = try await fixture("own_user")
        defer { try? FileManager.default.removeItem(atPath: f.layout.folder(f.name)) }
        let folder = try folder(for: f.owner.uid, gid: f.owner.gid)
        defer { folder.remove() }
        let journal = folder.path("journal.sqlite")
        let asRoot = try await CLI.run(["restore", "--config", config, "--journal", journal, f.name], environment: f.env)
        #expect(asRoot.status == 0, "\(asRoot.all)")
        // The journal root made in the user's folder, and the lock file, are the user's.
        #expect(notOwned(journal, by: f.owner) == [] && notOwned(journal + ".lock", by: f.owner) == [])
        #expect(notOwned(TableLocks(layout: f.layout).path(database: f.db, table: "t"), by: f.owner) == [])

        try await change(f.db)
        let asUser = try await runAs(uid: f.owner.uid, gid: f.owner.gid,
                                     ["restore", "--config", folder.path("config.yml"), "--journal", journal, "--json", f.name],
                                     environment: f.env)
        #expect(asUser.status == 0, "\(asUser.all)")
        let summary = try? JSONDecoder().decode(RestoreSummary.self, from: Data(asUser.stdout.utf8))
        #expect(summary?.state == .done && summary?.run == 2, "\(asUser.stdout)")
        #expect(try await contents(f.db) == f.atBackup, "rows per partition and their checksum")
        #expect(try await writtenNotOwned(f) == [])
    }

    @Test("run as another user (nobody), restore and create are refused before anything changes, saying who must run them")
    func otherUserRefused() async throws {
        let f = try await fixture("own_nobody")
        defer { try? FileManager.default.removeItem(atPath: f.layout.folder(f.name)) }
        let nobody = (uid: uid_t(65534), gid: gid_t(65534))
        let folder = try folder(for: nobody.uid, gid: nobody.gid)
        defer { folder.remove() }
        let journal = folder.path("journal.sqlite")
        let before = try await contents(f.db)
        let partsBefore = try await ClickHouseCatalog(client: ch).parts(of: [(f.db, "t")]).map(\.name)
        let owner = "\(f.owner.userName) (uid \(f.owner.uid))"

        let restore = try await runAs(uid: nobody.uid, gid: nobody.gid,
                                      ["restore", "--config", folder.path("config.yml"), "--journal", journal, f.name],
                                      environment: f.env)
        #expect(restore.status == 17, "\(restore.all)")
        #expect(restore.stderr.contains("\(f.layout.defaultDiskPath) is owned by \(owner)"), "\(restore.stderr)")
        #expect(restore.stderr.contains("inplace runs as nobody (uid 65534)"), "\(restore.stderr)")
        #expect(restore.stderr.contains("Nothing was changed; run inplace as root or as \(f.owner.userName)"), "\(restore.stderr)")
        #expect(!restore.all.contains(bed.clickHousePassword))
        #expect(try await contents(f.db) == before)
        #expect(try await ClickHouseCatalog(client: ch).parts(of: [(f.db, "t")]).map(\.name) == partsBefore)
        #expect(!FileSystem.exists(journal), "refused before the journal was opened")

        let other = TestBed.uniqueName("own_nobody")
        let create = try await runAs(uid: nobody.uid, gid: nobody.gid,
                                     ["create", "--config", folder.path("config.yml"), "--tables", "\(f.db).*", other],
                                     environment: f.env)
        #expect(create.status == 17, "\(create.all)")
        #expect(create.stderr.contains("run inplace as root or as \(f.owner.userName)"), "\(create.stderr)")
        #expect(!FileSystem.exists(f.layout.folder(other)))
    }
}
