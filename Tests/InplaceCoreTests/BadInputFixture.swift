import Foundation
import Testing

@testable import InplaceCore

private func q(_ name: String) -> String { ClickHouseSQL.identifier(name) }

/// A live table with three parts (two in 2024-01, one in 2024-02), a backup of it made by
/// `inplace create` (kept local, or uploaded to S3 and removed locally), and the live table changed
/// after the backup: the backup's first part dropped (the restore downloads it) and, optionally,
/// an extra part inserted (the restore drops it). Tests damage the backup, run the real binary's
/// `inplace restore`, and check what the live table holds after.
struct BadInputFixture {
    let ch: ClickHouseClient
    let database: String
    let table: String
    let name: String
    let env: [String: String]
    let config: String
    let layout: LocalBackupLayout
    let store: RemoteBackupStore
    let folder: TemporaryFolder
    let secrets: [String]
    /// The table's parts when the backup was made.
    let backupParts: [ClickHouseCatalog.Part]

    static func make(_ prefix: String, database: String? = nil, table: String = "t") async throws -> BadInputFixture {
        let bed = try TestBed.load()
        let ch = try bed.clickHouse()
        let sample = SampleDatabase(ch: ch, name: database ?? TestBed.uniqueName(prefix))
        try await ch.execute("CREATE DATABASE \(q(sample.name))")
        try await sample.addTable(table)
        let name = TestBed.uniqueName(prefix)
        let path = "it/\(TestBed.uniqueName(prefix))"
        let pattern = TablePattern(patterns: ["\(sample.name).\(table)"])
        _ = try await BackupCreator(client: ch).create(.init(name: name, tables: pattern))
        return BadInputFixture(
            ch: ch, database: sample.name, table: table, name: name, env: ["S3_PATH": path],
            config: TestBed.envFile.replacingOccurrences(of: "/env", with: "/config.yml"),
            layout: LocalBackupLayout(disks: try await ClickHouseCatalog(client: ch).disks()),
            store: RemoteBackupStore(s3: try bed.s3(), path: path), folder: try TemporaryFolder(),
            secrets: [bed.clickHousePassword, bed.s3SecretKey],
            backupParts: try await sample.parts(table))
    }

    /// The part the restore has to download.
    var missingPart: ClickHouseCatalog.Part { backupParts[0] }

    /// Uploads the backup (one tar archive per part) and removes the local copy.
    func upload() async throws {
        _ = try await BackupUploader(store: store, layout: layout).upload(.init(name: name, compression: .tar, concurrency: 2))
        try FileManager.default.removeItem(atPath: layout.folder(name))
    }

    /// Changes the live table after the backup: drops the backup's first part, and with
    /// `extraPart` inserts rows the backup lacks.
    func change(extraPart: Bool) async throws {
        try await ch.execute("ALTER TABLE \(qualified) DROP PART \(ClickHouseSQL.string(missingPart.name))")
        if extraPart { try await SampleDatabase(ch: ch, name: database).insert(table, month: "2024-03", rows: 30, seed: 7) }
    }

    var qualified: String { ClickHouseSQL.qualified(database, table) }

    /// The live table's active parts as a multiset of (partition, content hash), sorted.
    func live() async throws -> [String] {
        try await ClickHouseCatalog(client: ch).parts(of: [(database, table)]).map { "\($0.partitionID)/\($0.hash)" }.sorted()
    }

    var backupIdentities: [String] { backupParts.map { "\($0.partitionID)/\($0.hash)" }.sorted() }

    /// `inplace restore` through the built binary, with a journal of its own; no secret in what
    /// it prints, on any path.
    func restore(_ arguments: [String] = []) async throws -> CLI.Result {
        let result = try await CLI.run(["restore", "--config", config, "--journal", folder.path("journal.sqlite")] + arguments + [name],
                                 environment: env)
        for secret in secrets where !secret.isEmpty { #expect(!result.all.contains(secret), "a secret in the output") }
        return result
    }

    /// `inplace journal replay 1 --failed` on the fixture's journal.
    func replayFailed() async throws -> CLI.Result {
        try await CLI.run(["journal", "replay", "--config", config, "--journal", folder.path("journal.sqlite"), "1", "--failed"],
                          environment: env)
    }

    // Local backup files.
    var metadataFile: String { layout.metadataFile(name) }
    var tableFile: String { layout.tableMetadataFile(name, database: database, table: table) }
    func partFolder(_ part: String) -> String {
        (layout.shadowFolder(name, disk: "default", database: database, table: table) ?? "/nonexistent") + "/" + part
    }

    // Remote backup objects.
    var archiveKey: String {
        store.shadowPrefix(name, database: database, table: table) + "default_" + BackupNames.encode(missingPart.name) + ".tar"
    }

    /// What a restore left that it should not: staging folders, folders in the table's detached/.
    func leftovers() async throws -> [String] {
        var found: [String] = []
        for disk in try await ClickHouseCatalog(client: ch).disks() {
            let staging = disk.path + "backup/.inplace-staging"
            found += ((try? FileManager.default.contentsOfDirectory(atPath: staging)) ?? [])
                .filter { $0.hasPrefix(RestoreRunner.stagingPrefix(journal: folder.path("journal.sqlite"), run: 1)) }
        }
        for live in try await ClickHouseCatalog(client: ch).tables() where live.database == database && live.name == table {
            for path in live.dataPaths {
                found += ((try? FileManager.default.contentsOfDirectory(atPath: path + "detached")) ?? []).map { "detached/\($0)" }
            }
        }
        return found
    }

    func cleanup() async {
        try? FileManager.default.removeItem(atPath: layout.folder(name))
        folder.remove()
        _ = try? await ch.execute("DROP DATABASE IF EXISTS \(q(database)) SYNC")
    }
}

/// JSON files of a backup edited as a tool or a person might damage them.
enum BackupEdit {
    static func json(_ bytes: [UInt8]) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] ?? [:]
    }

    static func bytes(_ object: [String: Any]) throws -> [UInt8] {
        [UInt8](try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }

    /// Rewrites a local file (a new inode: the live part's hard links to it are left alone).
    static func local(_ path: String, _ change: (inout [String: Any]) -> Void) throws {
        var object = try json(FileSystem.readFile(path))
        change(&object)
        try FileSystem.writeDurably(bytes(object), to: path)
    }

    static func remote(_ store: RemoteBackupStore, _ key: String, _ change: (inout [String: Any]) -> Void) async throws {
        var object = try json(await store.s3.getBytes(key))
        change(&object)
        try await store.s3.put(key, bytes: bytes(object))
    }

    /// Removes what run 1 of `journal` moved to the quarantine folder (parts that failed their check).
    static func removeQuarantined(_ layout: LocalBackupLayout, journal: String) {
        let quarantine = layout.defaultDiskPath + "backup/.inplace-quarantine/"
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: quarantine)) ?? []
        where entry.hasPrefix(RestoreRunner.stagingPrefix(journal: journal, run: 1)) {
            try? FileManager.default.removeItem(atPath: quarantine + entry)
        }
    }

    /// Flips one byte in the middle of a file, writing a new file so that hard links to the old
    /// one (the live part's, for a local backup) keep their bytes.
    static func flipByte(_ path: String) throws {
        var bytes = try FileSystem.readFile(path)
        bytes[bytes.count / 2] ^= 0xFF
        try FileSystem.writeDurably(bytes, to: path)
    }
}
