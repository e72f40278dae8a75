import Foundation
import Testing

@testable import InplaceCore

private func q(_ name: String) -> String { ClickHouseSQL.identifier(name) }

/// A database with MergeTree tables whose parts are known, made on the test bed's engine.
struct SampleDatabase {
    let ch: ClickHouseClient
    let name: String

    static func make(_ ch: ClickHouseClient, prefix: String = "it_bk", tables: [String] = ["events", "users"])
        async throws -> SampleDatabase
    {
        let sample = SampleDatabase(ch: ch, name: TestBed.uniqueName(prefix))
        try await ch.execute("CREATE DATABASE \(q(sample.name))")
        for table in tables { try await sample.addTable(table) }
        return sample
    }

    func addTable(_ table: String) async throws {
        try await ch.execute("""
            CREATE TABLE \(q(name)).\(q(table)) (d Date, id UInt64, s String)
            ENGINE = MergeTree PARTITION BY toYYYYMM(d) ORDER BY id
            """)
        try await ch.execute("SYSTEM STOP MERGES \(q(name)).\(q(table))")
        try await insert(table, month: "2024-01", rows: 100, seed: 1)
        try await insert(table, month: "2024-01", rows: 50, seed: 2)
        try await insert(table, month: "2024-02", rows: 70, seed: 3)
    }

    func insert(_ table: String, month: String, rows: Int, seed: Int) async throws {
        try await ch.execute("""
            INSERT INTO \(q(name)).\(q(table))
            SELECT toDate('\(month)-01') + number % 28, number + \(seed * 1_000_000), toString(cityHash64(number, \(seed)))
            FROM numbers(\(rows))
            """)
    }

    func parts(_ table: String) async throws -> [ClickHouseCatalog.Part] {
        try await ClickHouseCatalog(client: ch).parts(of: [(name, table)])
    }

    func drop() async {
        _ = try? await ch.execute("DROP DATABASE IF EXISTS \(q(name)) SYNC")
    }
}

/// The files of a folder, relative path -> bytes. `metadata_version.txt` is left out: ClickHouse
/// writes it beside a live part, and FREEZE (so every backup, clickhouse-backup's too) does not
/// copy it; a part attached without it reads as metadata version 0.
func folderContents(_ folder: String) -> [String: [UInt8]] {
    var result: [String: [UInt8]] = [:]
    for relative in FileSystem.files(under: folder) where relative != "metadata_version.txt" {
        result[relative] = (try? FileSystem.readFile(folder + "/" + relative)) ?? []
    }
    return result
}

/// Names the files that differ between two part folders (empty when they are identical), so a
/// failure reads as a list of names rather than kilobytes of bytes.
func differingFiles(_ a: String, _ b: String) -> [String] {
    let left = folderContents(a)
    let right = folderContents(b)
    guard !left.isEmpty || !right.isEmpty else { return ["(both folders empty)"] }
    return Set(left.keys).union(right.keys).filter { left[$0] != right[$0] }.sorted()
}

@Suite("Backups on the test bed: create, read, upload", .enabled(if: TestBed.shouldRun))
struct BackupIntegrationTests {
    let bed: TestBed
    let ch: ClickHouseClient

    init() throws {
        bed = try TestBed.load()
        ch = try bed.clickHouse()
    }

    private func layout() async throws -> LocalBackupLayout {
        LocalBackupLayout(disks: try await ClickHouseCatalog(client: ch).disks())
    }

    private func removeBackup(_ name: String) async throws {
        try? FileManager.default.removeItem(atPath: try await layout().folder(name))
    }

    @Test("create, then read back: every part byte-identical, hashes equal to system.parts, current_parts right")
    func createAndReadBack() async throws {
        let sample = try await SampleDatabase.make(ch)
        let name = TestBed.uniqueName("bk")
        let summary = try await BackupCreator(client: ch).create(.init(name: name, tables: TablePattern("\(sample.name).*")))
        #expect(summary.tables == 2)
        #expect(summary.parts == 6)
        let source = LocalBackupSource(name: name, layout: try await layout())
        let metadata = try await source.metadata()
        #expect(Set(metadata.tables ?? []) == [.init(database: sample.name, table: "events"),
                                                .init(database: sample.name, table: "users")])
        #expect(metadata.tags == "regular")
        #expect(metadata.databases?.map(\.name) == [sample.name])
        for table in ["events", "users"] {
            let target = try TemporaryFolder()
            defer { target.remove() }
            let live = try await sample.parts(table)
            let tableMetadata = try await source.tableMetadata(database: sample.name, table: table)
            #expect(tableMetadata.parts?["default"]?.map(\.name).sorted() == live.map(\.name).sorted())
            #expect(tableMetadata.current_parts?["default"]?.map(\.name).sorted() == live.map(\.name).sorted())
            #expect(tableMetadata.metadata_only == false)
            #expect(tableMetadata.query.contains("MergeTree"))
            for part in live {
                #expect(tableMetadata.hash_of_all_files?[part.name] == part.hash)
                #expect(tableMetadata.current_hash_of_all_files?[part.name] == part.hash)
                #expect(tableMetadata.checksums?[part.name]
                        == CRC64.checksum(try FileSystem.readFile(part.path + "checksums.txt")))
                let fetched = try await source.fetchPart(database: sample.name, table: table, disk: "default",
                                                         part: part.name, into: target.url.path)
                #expect(fetched.linked, "a local backup on the same file system is hard-linked")
                #expect(differingFiles(fetched.folder, part.path) == [], "\(table) \(part.name)")
            }
        }
        // The backup's metadata lists every table, so a second create with the name is refused.
        await #expect(throws: BackupError.self) {
            try await BackupCreator(client: ch).create(.init(name: name, tables: TablePattern("\(sample.name).*")))
        }
        try await removeBackup(name)
        await sample.drop()
    }

    @Test("current_parts of a later backup holds the parts inserted since an earlier one")
    func currentPartsTrackInserts() async throws {
        let sample = try await SampleDatabase.make(ch, tables: ["t"])
        let first = TestBed.uniqueName("bk1")
        let second = TestBed.uniqueName("bk2")
        _ = try await BackupCreator(client: ch).create(.init(name: first, tables: TablePattern("\(sample.name).t")))
        let before = Set(try await sample.parts("t").map(\.name))
        try await sample.insert("t", month: "2024-03", rows: 10, seed: 9)
        let after = try await sample.parts("t")
        _ = try await BackupCreator(client: ch).create(.init(name: second, tables: TablePattern("\(sample.name).t")))
        let layout = try await layout()
        let one = try await LocalBackupSource(name: first, layout: layout).tableMetadata(database: sample.name, table: "t")
        let two = try await LocalBackupSource(name: second, layout: layout).tableMetadata(database: sample.name, table: "t")
        #expect(Set(one.current_parts?["default"]?.map(\.name) ?? []) == before)
        #expect(Set(two.current_parts?["default"]?.map(\.name) ?? []) == Set(after.map(\.name)))
        #expect(after.count == before.count + 1)
        for part in after { #expect(two.current_hash_of_all_files?[part.name] == part.hash) }
        try await removeBackup(first)
        try await removeBackup(second)
        await sample.drop()
    }

    @Test("--schema writes table definitions only")
    func schemaOnly() async throws {
        let sample = try await SampleDatabase.make(ch, tables: ["t"])
        let name = TestBed.uniqueName("bks")
        let summary = try await BackupCreator(client: ch).create(.init(name: name, tables: TablePattern("\(sample.name).t"),
                                                                        schemaOnly: true))
        #expect(summary.parts == 0)
        let table = try await LocalBackupSource(name: name, layout: try await layout())
            .tableMetadata(database: sample.name, table: "t")
        #expect(table.metadata_only == true)
        #expect((table.parts ?? [:]).isEmpty)
        #expect(table.current_parts?["default"]?.count == 3)
        #expect(!FileSystem.exists(try await layout().defaultDiskPath + "backup/\(name)/shadow"))
        try await removeBackup(name)
        await sample.drop()
    }

    @Test("a table pattern that matches nothing is refused and leaves no backup behind")
    func patternMatchingNothing() async throws {
        let name = TestBed.uniqueName("bkn")
        do {
            _ = try await BackupCreator(client: ch).create(.init(name: name, tables: TablePattern("no_such_db_x.*")))
            Issue.record("an empty pattern made a backup")
        } catch let error as BackupError {
            #expect(error.kind == .noTablesMatched)
        }
        #expect(!FileSystem.exists(try await layout().folder(name)))
    }

    @Test("odd database and table names are encoded as clickhouse-backup encodes them and read back")
    func oddNames() async throws {
        let database = "it-db.x ü " + String(UInt32.random(in: 0...UInt32.max))
        let table = "events v2-ü"
        try await ch.execute("CREATE DATABASE \(q(database))")
        let sample = SampleDatabase(ch: ch, name: database)
        try await sample.addTable(table)
        let name = TestBed.uniqueName("bko")
        _ = try await BackupCreator(client: ch).create(.init(name: name, tables: TablePattern("\(database).*")))
        let layout = try await layout()
        let jsonPath = layout.folder(name) + "/metadata/" + BackupNames.encode(database) + "/" + BackupNames.encode(table) + ".json"
        #expect(jsonPath.contains("it%2Ddb%2Ex%20%C3%BC%20"))
        #expect(jsonPath.hasSuffix("/events%20v2%2D%C3%BC.json"))
        #expect(FileSystem.exists(jsonPath))
        let source = LocalBackupSource(name: name, layout: layout)
        #expect(try await source.tables() == [.init(database: database, table: table)])
        let metadata = try await source.tableMetadata(database: database, table: table)
        #expect(metadata.database == database && metadata.table == table)

        // And through S3.
        let store = RemoteBackupStore(s3: try bed.s3(), path: "it/\(TestBed.uniqueName("odd"))")
        _ = try await BackupUploader(store: store, layout: layout).upload(.init(name: name, compression: .gzip, concurrency: 2))
        let remote = RemoteBackupSource(name: name, store: store)
        #expect(try await remote.tables() == [.init(database: database, table: table)])
        let target = try TemporaryFolder()
        defer { target.remove() }
        let liveParts = try await sample.parts(table)
        #expect(liveParts.count == 3)
        for part in liveParts {
            let fetched = try await remote.fetchPart(database: database, table: table, disk: "default", part: part.name,
                                                     into: target.url.path)
            #expect(differingFiles(fetched.folder, part.path) == [])
        }
        try await removeBackup(name)
        await sample.drop()
    }

    @Test("upload with each compression, then read back from S3: identical",
          arguments: ["tar", "gzip", "zstd", "lz4", "none"])
    func uploadAndReadBack(format: String) async throws {
        let sample = try await SampleDatabase.make(ch, tables: ["t"])
        let name = TestBed.uniqueName("bku")
        _ = try await BackupCreator(client: ch).create(.init(name: name, tables: TablePattern("\(sample.name).t")))
        let layout = try await layout()
        let store = RemoteBackupStore(s3: try bed.s3(), path: "it/\(TestBed.uniqueName(format))")
        let compression = try InplaceConfig.compression(named: format, file: nil)
        let uploader = BackupUploader(store: store, layout: layout)
        let summary = try await uploader.upload(.init(name: name, compression: compression, concurrency: 3))
        #expect(summary.objectsUploaded >= 3)

        let remote = RemoteBackupSource(name: name, store: store)
        let metadata = try await remote.metadata()
        #expect(metadata.data_format == (compression?.rawValue ?? "directory"))
        let table = try await remote.tableMetadata(database: sample.name, table: "t")
        if let compression {
            #expect(table.files?["default"]?.count == 3)
            #expect(table.files?["default"]?.allSatisfy { $0.hasSuffix("." + compression.fileExtension) } == true)
        }
        let target = try TemporaryFolder()
        defer { target.remove() }
        let local = LocalBackupSource(name: name, layout: layout)
        let localTable = try await local.tableMetadata(database: sample.name, table: "t")
        for part in localTable.parts?["default"] ?? [] {
            let fetched = try await remote.fetchPart(database: sample.name, table: "t", disk: "default", part: part.name,
                                                     into: target.url.path)
            let original = layout.shadowFolder(name, disk: "default", database: sample.name, table: "t")! + "/" + part.name
            #expect(differingFiles(fetched.folder, original) == [], "\(format) \(part.name)")
        }
        let listed = try await BackupLister.remote(store)
        #expect(listed.map(\.name) == [name])
        #expect(listed.first?.isComplete == true)

        // A second upload finds it complete; an interrupted one resumes with only what is missing.
        #expect(try await uploader.upload(.init(name: name, compression: compression, concurrency: 3)).alreadyComplete)
        let objects = try await store.s3.listAll(prefix: store.key(name, "shadow/")).objects
        try await store.s3.delete(store.metadataKey(name))
        try await store.s3.delete(objects[0].key)
        #expect(try await BackupLister.remote(store).first?.isComplete == false)
        // Without the upload's marker, the objects might be another backup's: refused.
        await #expect(throws: BackupError.self) {
            try await uploader.upload(.init(name: name, compression: compression, concurrency: 3))
        }
        // An interrupted upload leaves its marker (the local backup's creation date): resumed.
        let localMetadata = try await local.metadata()
        try await store.s3.put(store.key(name, ".inplace-upload"), bytes: Array(localMetadata.creation_date.utf8))
        let resumed = try await uploader.upload(.init(name: name, compression: compression, concurrency: 3))
        #expect(resumed.objectsUploaded == 1)
        #expect(resumed.objectsAlreadyThere == objects.count - 1)
        #expect(try await BackupLister.remote(store).first?.isComplete == true)
        #expect(try await store.s3.exists(store.key(name, ".inplace-upload")) == false)

        // Another local backup of the same name is not taken for the remote one.
        try await removeBackup(name)
        _ = try await BackupCreator(client: ch).create(.init(name: name, tables: TablePattern("\(sample.name).t")))
        do {
            _ = try await uploader.upload(.init(name: name, compression: compression, concurrency: 3))
            Issue.record("an upload over another backup of the same name was taken as complete")
        } catch let error as BackupError {
            #expect(error.kind == .alreadyExists)
        }
        try await removeBackup(name)
        await sample.drop()
    }
}
