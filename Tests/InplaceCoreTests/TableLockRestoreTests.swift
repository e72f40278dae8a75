import Foundation
import Testing

@testable import InplaceCore

private func q(_ name: String) -> String { ClickHouseSQL.identifier(name) }

/// Two restores of one table, real processes on the test bed: the table lock (TableLock.swift)
/// lets one change it at a time, whatever their journals.
@Suite("Table locks on the test bed: one restore per table at a time", .enabled(if: TestBed.shouldRun), .serialized)
struct TableLockRestoreTests {
    let bed: TestBed
    let ch: ClickHouseClient
    let config: String

    init() throws {
        bed = try TestBed.load()
        ch = try bed.clickHouse()
        config = TestBed.envFile.replacingOccurrences(of: "/env", with: "/config.yml")
    }

    /// A table of 6 parts of about 16 MB (incompressible: downloads take seconds), backed up to
    /// S3, then 3 of its parts dropped: a restore downloads 3 parts.
    struct Fixture {
        let db: String
        let name: String
        let env: [String: String]
        let locks: TableLocks
        let folder: TemporaryFolder
        let atBackup: String
        /// In front of the test bed's S3, slowed (8 MB/s per response) so that a restore takes
        /// seconds: long enough for a second process to meet its lock.
        let proxy: FaultProxy
    }

    private func fixture(_ prefix: String) async throws -> Fixture {
        let db = TestBed.uniqueName(prefix)
        try await ch.execute("CREATE DATABASE \(q(db))")
        try await ch.execute("""
            CREATE TABLE \(q(db)).big (id UInt64, s String) ENGINE = MergeTree ORDER BY id
            SETTINGS max_bytes_to_merge_at_max_space_in_pool = 1, max_bytes_to_merge_at_min_space_in_pool = 1
            """)
        try await ch.execute("SYSTEM STOP MERGES \(q(db)).big")
        for index in 0..<6 {
            try await ch.execute("INSERT INTO \(q(db)).big SELECT number + \(index * 100_000), randomString(800) FROM numbers(20000)")
        }
        let atBackup = try await contents(db)
        let name = TestBed.uniqueName(prefix)
        let env = ["S3_PATH": "it/\(TestBed.uniqueName(prefix))"]
        #expect(try await CLI.run(["create", "--config", config, "--tables", "\(db).*", name], environment: env).status == 0)
        #expect(try await CLI.run(["upload", "--config", config, name], environment: env).status == 0)
        let layout = LocalBackupLayout(disks: try await ClickHouseCatalog(client: ch).disks())
        try FileManager.default.removeItem(atPath: layout.folder(name))
        for part in try await ClickHouseCatalog(client: ch).parts(of: [(db, "big")]).map(\.name).prefix(3) {
            try await ch.execute("ALTER TABLE \(q(db)).big DROP PART \(ClickHouseSQL.string(part))")
        }
        let proxy = try FaultProxy(upstream: try bed.value("S3_ENDPOINT"))
        try await proxy.set(.slow(bytesPerSecond: 8 << 20))
        return Fixture(db: db, name: name, env: env.merging(["S3_ENDPOINT": proxy.endpoint]) { $1 },
                       locks: TableLocks(layout: layout), folder: try TemporaryFolder(), atBackup: atBackup, proxy: proxy)
    }

    private func contents(_ db: String) async throws -> String {
        try await ch.execute("SELECT _partition_id, count(), uniqExact(id), sum(cityHash64(id, s)) FROM \(q(db)).big GROUP BY 1 ORDER BY 1")
    }

    private func restore(_ f: Fixture, journal: String, _ extra: [String] = []) -> Task<CLI.Result, any Error> {
        let arguments = ["restore", "--config", config, "--journal", f.folder.path(journal), "--concurrency", "1", "--json"]
            + extra + [f.name]
        let env = f.env
        return Task { try await CLI.run(arguments, environment: env) }
    }

    /// The holder of the table's lock once a run of `journal` holds it.
    private func holder(_ f: Fixture, journal: String) async throws -> TableLockHolder {
        for _ in 0..<600 {
            if let holder = f.locks.recordedHolder(database: f.db, table: "big"),
               holder.journal == f.folder.path(journal), holder.releasedAt == nil {
                return holder
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestBed.Missing(description: "no run of \(journal) took the lock within 30 s")
    }

    @Test("two restores of one backup at once: with another journal the second refuses the table naming the first run, with the same journal it is refused whole; the table ends equal to the backup, and the replay of the refused table changes nothing")
    func secondRestoreRefused() async throws {
        let f = try await fixture("lock_two")
        defer {
            f.folder.remove()
            f.proxy.stop()
        }
        let first = restore(f, journal: "a.sqlite")
        let held = try await holder(f, journal: "a.sqlite")
        let second = try await restore(f, journal: "b.sqlite").value
        #expect(second.status == 12, "\(second.all)")
        #expect(second.all.contains("is locked by restore run 1 of journal \(f.folder.path("a.sqlite"))"), "\(second.all)")
        #expect(second.all.contains("pid \(held.pid)") && second.all.contains("--wait-lock"), "\(second.all)")
        let same = try await restore(f, journal: "a.sqlite").value
        #expect(same.status == 14 && same.all.contains("another inplace process is using the journal"), "\(same.all)")

        let done = try await first.value
        #expect(done.status == 0, "\(done.all)")
        #expect(try await contents(f.db) == f.atBackup)
        // The refused table, replayed once the first run is done, is planned again: nothing to fetch.
        let replay = try await CLI.run(["journal", "replay", "--config", config, "--journal", f.folder.path("b.sqlite"), "1", "--failed", "--json"],
                                       environment: f.env)
        #expect(replay.status == 0, "\(replay.all)")
        let summary = try JSONDecoder().decode(RestoreSummary.self, from: Data(replay.stdout.utf8))
        #expect(summary.bytesDownloaded == 0)
        #expect(try await contents(f.db) == f.atBackup, "rows per partition, distinct ids and checksum")
        _ = try? await ch.execute("DROP DATABASE \(q(f.db)) SYNC")
    }

    @Test("the lock's holder killed with SIGKILL mid-restore: a new run takes the lock at once; the killed run resumed afterwards plans the table again and changes nothing")
    func holderKilled() async throws {
        let f = try await fixture("lock_kill")
        defer {
            f.folder.remove()
            f.proxy.stop()
        }
        let first = restore(f, journal: "a.sqlite")
        let held = try await holder(f, journal: "a.sqlite")
        try await Task.sleep(for: .milliseconds(300))
        kill(held.pid, SIGKILL)
        let killed = try await first.value
        #expect(killed.status == 137 || killed.status == 9, "\(killed.all)")

        let other = try await restore(f, journal: "b.sqlite").value
        #expect(other.status == 0, "\(other.all)")
        #expect(try await contents(f.db) == f.atBackup)
        let resumed = try await CLI.run(["resume", "--config", config, "--journal", f.folder.path("a.sqlite")], environment: f.env)
        #expect(resumed.status == 0, "\(resumed.all)")
        #expect(resumed.all.contains("another run changed the table since this run planned it"), "\(resumed.all)")
        #expect(try await contents(f.db) == f.atBackup, "no row twice after both runs")
        _ = try? await ch.execute("DROP DATABASE \(q(f.db)) SYNC")
    }

    @Test("--wait-lock 30: the second restore waits for the first, then finds nothing left to do")
    func waitsForTheLock() async throws {
        let f = try await fixture("lock_wait")
        defer {
            f.folder.remove()
            f.proxy.stop()
        }
        let first = restore(f, journal: "a.sqlite")
        _ = try await holder(f, journal: "a.sqlite")
        let second = try await restore(f, journal: "b.sqlite", ["--wait-lock", "30"]).value
        #expect(second.status == 0, "\(second.all)")
        let summary = try JSONDecoder().decode(RestoreSummary.self, from: Data(second.stdout.utf8))
        #expect(summary.bytesDownloaded == 0, "the table was planned again once the lock was free: nothing to fetch")
        #expect(try await first.value.status == 0)
        #expect(try await contents(f.db) == f.atBackup)
        _ = try? await ch.execute("DROP DATABASE \(q(f.db)) SYNC")
    }
}
