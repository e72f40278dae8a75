import Foundation
import Testing

@testable import InplaceCore

/// Backups laid out by hand the way clickhouse-backup writes them, and backups that are wrong in
/// every way the backups issue names, read through the same sources a restore uses.
@Suite("Backups made by clickhouse-backup, and bad backups", .enabled(if: TestBed.shouldRun))
struct BackupCompatibilityTests {
    let bed: TestBed
    let ch: ClickHouseClient

    init() throws {
        bed = try TestBed.load()
        ch = try bed.clickHouse()
    }

    /// Real parts from the engine: a fresh table's active part folders.
    private func realParts() async throws -> (SampleDatabase, [ClickHouseCatalog.Part]) {
        let sample = try await SampleDatabase.make(ch, prefix: "it_compat", tables: ["t"])
        return (sample, try await sample.parts("t"))
    }

    private func tarOfParts(_ parts: [ClickHouseCatalog.Part], leadingSlash: Bool) throws -> [UInt8] {
        var tar = TarBuilder()
        for part in parts {
            for relative in FileSystem.files(under: part.path) {
                tar.add((leadingSlash ? "/" : "") + part.name + "/" + relative, try FileSystem.readFile(part.path + relative))
            }
        }
        return tar.finished()
    }

    private func metadataJSON(_ name: String, database: String, extra: String = "") -> [UInt8] {
        Array("""
            {
            \t"backup_name": "\(name)",
            \t"disks": {"default": "/var/lib/clickhouse/"},
            \t"disk_types": {"default": "local"},
            \t"version": "2.6.30",
            \t"creation_date": "2026-11-20T10:00:00.123456789+01:00",
            \t"tags": "regular",
            \t"metadata_size": 1000,
            \t"tables": [{"database": "\(database)", "table": "t"}],
            \t"functions": [],
            \t"data_format": "tar"\(extra)
            }
            """.utf8)
    }

    @Test("per-part archives are found by encoded part name, on their own disk only, the first one winning")
    func perPartArchiveIndex() {
        let archives = ["default_all_1_1_0.tar", "default_202401%2D02_3_3_0.tar.zstd", "default_all_1_1_0.tar.gz",
                        "hot_all_1_1_0.tar", "default_7.tar", "default_noextension"]
        let index = RemoteBackupSource.perPartArchives(archives, disk: "default")
        #expect(index[Substring(BackupNames.encode("all_1_1_0"))] == "default_all_1_1_0.tar")
        #expect(index[Substring(BackupNames.encode("202401-02_3_3_0"))] == "default_202401%2D02_3_3_0.tar.zstd")
        #expect(index["7"] == "default_7.tar")
        #expect(index.count == 3)
        #expect(RemoteBackupSource.perPartArchives(archives, disk: "hot") == ["all_1_1_0": "hot_all_1_1_0.tar"])
    }

    @Test("a clickhouse-backup remote backup (no current_parts, checksums only, several parts per archive, leading /) reads right")
    func handMadeBackup() async throws {
        let (sample, parts) = try await realParts()
        let store = RemoteBackupStore(s3: try bed.s3(), path: "it/\(TestBed.uniqueName("compat"))")
        let name = "shard0-full-20261120"
        let db = sample.name
        let shadow = store.shadowPrefix(name, database: db, table: "t")
        // Two archives: the first holds two parts, the second one; entries start with "/".
        try await store.s3.put(shadow + "default_1.tar", bytes: try tarOfParts(Array(parts.prefix(2)), leadingSlash: true))
        try await store.s3.put(shadow + "default_2.tar", bytes: try tarOfParts(Array(parts.suffix(1)), leadingSlash: true))
        var checksums: [String] = []
        for part in parts {
            checksums.append("\"\(part.name)\": \(CRC64.checksum(try FileSystem.readFile(part.path + "checksums.txt")))")
        }
        let tableJSON = """
            {
             "table": "t",
             "database": "\(db)",
             "parts": {"default": [\(parts.map { "{\"name\": \"\($0.name)\"}" }.joined(separator: ", "))]},
             "query": "CREATE TABLE \(db).t (d Date, id UInt64, s String) ENGINE = MergeTree PARTITION BY toYYYYMM(d) ORDER BY id",
             "size": {"default": 1234},
             "files": {"default": ["default_1.tar", "default_2.tar"]},
             "metadata_only": false,
             "checksums": {\(checksums.joined(separator: ", "))}
            }
            """
        try await store.s3.put(store.tableMetadataKey(name, database: db, table: "t"), bytes: Array(tableJSON.utf8))
        try await store.s3.put(store.metadataKey(name), bytes: metadataJSON(name, database: db))

        let source = RemoteBackupSource(name: name, store: store)
        let metadata = try await source.metadata()
        #expect(metadata.creationDate != nil)
        let table = try await source.tableMetadata(database: db, table: "t")
        #expect(table.current_parts == nil)
        #expect(table.hash_of_all_files == nil)
        for part in parts {
            #expect(table.checksums?[part.name] == CRC64.checksum(try FileSystem.readFile(part.path + "checksums.txt")))
        }
        let target = try TemporaryFolder()
        defer { target.remove() }
        for part in parts {
            let fetched = try await source.fetchPart(database: db, table: "t", disk: "default", part: part.name,
                                                     into: target.url.path)
            #expect(differingFiles(fetched.folder, part.path) == [], "\(part.name)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: target.url.path).sorted() == parts.map(\.name).sorted())
        await sample.drop()
    }

    @Test("an incremental backup's required parts come from its required_backup")
    func requiredChain() async throws {
        let (sample, parts) = try await realParts()
        let store = RemoteBackupStore(s3: try bed.s3(), path: "it/\(TestBed.uniqueName("chain"))")
        let db = sample.name
        let base = "base", increment = "increment"
        let part = parts[0]
        // The base holds the data; the increment lists the part as required.
        try await store.s3.put(store.shadowPrefix(base, database: db, table: "t") + "default_\(part.name).tar",
                               bytes: try tarOfParts([part], leadingSlash: false))
        for (name, required) in [(base, false), (increment, true)] {
            let json = """
                {"table": "t", "database": "\(db)", "query": "CREATE TABLE x", "metadata_only": false,
                 "parts": {"default": [{"name": "\(part.name)"\(required ? ", \"required\": true" : "")}]},
                 "files": {"default": [\(required ? "" : "\"default_\(part.name).tar\"")]}}
                """
            try await store.s3.put(store.tableMetadataKey(name, database: db, table: "t"), bytes: Array(json.utf8))
            try await store.s3.put(store.metadataKey(name), bytes: metadataJSON(
                name, database: db, extra: required ? ",\n\t\"required_backup\": \"\(base)\"" : ""))
        }
        let target = try TemporaryFolder()
        defer { target.remove() }
        let fetched = try await RemoteBackupSource(name: increment, store: store)
            .fetchPart(database: db, table: "t", disk: "default", part: part.name, into: target.url.path)
        #expect(fetched.fromBackup == base)
        #expect(differingFiles(fetched.folder, part.path) == [])

        // With the base gone, the chain is reported, not half-read.
        try await store.s3.delete(store.metadataKey(base))
        try await store.s3.delete(store.tableMetadataKey(base, database: db, table: "t"))
        try await store.s3.delete(store.shadowPrefix(base, database: db, table: "t") + "default_\(part.name).tar")
        let again = try TemporaryFolder()
        defer { again.remove() }
        do {
            _ = try await RemoteBackupSource(name: increment, store: store)
                .fetchPart(database: db, table: "t", disk: "default", part: part.name, into: again.url.path)
            Issue.record("a missing required_backup was not noticed")
        } catch let error as BackupError {
            #expect(error.kind == .missingData)
            #expect(error.message.contains("required_backup"))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: again.url.path).isEmpty)
        await sample.drop()
    }

    @Test("a required_backup chain that loops is refused, not followed for ever")
    func requiredLoop() async throws {
        let store = RemoteBackupStore(s3: try bed.s3(), path: "it/\(TestBed.uniqueName("loop"))")
        for (name, base) in [("a", "b"), ("b", "a")] {
            let json = """
                {"table": "t", "database": "D", "query": "q", "parts": {"default": [{"name": "all_1_1_0", "required": true}]}}
                """
            try await store.s3.put(store.tableMetadataKey(name, database: "D", table: "t"), bytes: Array(json.utf8))
            try await store.s3.put(store.metadataKey(name), bytes: metadataJSON(
                name, database: "D", extra: ",\n\t\"required_backup\": \"\(base)\""))
        }
        let target = try TemporaryFolder()
        defer { target.remove() }
        do {
            _ = try await RemoteBackupSource(name: "a", store: store)
                .fetchPart(database: "D", table: "t", disk: "default", part: "all_1_1_0", into: target.url.path)
            Issue.record("a looping chain was followed")
        } catch let error as BackupError {
            #expect(error.message.contains("a -> b -> a"), "\(error)")
        }
    }

    struct Broken: Sendable, CustomStringConvertible {
        let description: String
        let metadata: String?
        let table: String?
        let archive: [UInt8]?
        let part: String
        let expect: @Sendable (any Error) -> Bool
    }

    static let broken: [Broken] = [
        Broken(description: "metadata.json that is not JSON", metadata: "{not json", table: nil, archive: nil,
               part: "all_1_1_0") { ($0 as? BackupError)?.kind == .invalidMetadata },
        Broken(description: "an embedded backup", metadata: #"{"backup_name":"x","tags":"embedded","creation_date":"2026-01-01T00:00:00Z"}"#,
               table: nil, archive: nil, part: "all_1_1_0") { ($0 as? BackupError)?.kind == .embedded },
        Broken(description: "a missing table JSON", metadata: nil, table: nil, archive: nil, part: "all_1_1_0") {
            ($0 as? BackupError)?.kind == .missingData
        },
        Broken(description: "a table JSON that is not JSON", metadata: nil, table: "[[[", archive: nil, part: "all_1_1_0") {
            ($0 as? BackupError)?.kind == .invalidMetadata
        },
        Broken(description: "a part name that leaves its folder", metadata: nil,
               table: #"{"table":"t","database":"D","query":"q","parts":{"default":[{"name":"../../etc_1_1_0"}]},"files":{"default":["default_1.tar"]}}"#,
               archive: nil, part: "../../etc_1_1_0") { ($0 as? BackupError)?.kind == .invalidPartName },
        Broken(description: "a missing archive", metadata: nil,
               table: #"{"table":"t","database":"D","query":"q","parts":{"default":[{"name":"all_1_1_0"}]},"files":{"default":["default_all_1_1_0.tar"]}}"#,
               archive: nil, part: "all_1_1_0") { ($0 as? BackupError)?.kind == .missingData },
        Broken(description: "an archive with .. entries", metadata: nil,
               table: #"{"table":"t","database":"D","query":"q","parts":{"default":[{"name":"all_1_1_0"}]},"files":{"default":["default_all_1_1_0.tar"]}}"#,
               archive: {
                   var tar = TarBuilder()
                   tar.add("all_1_1_0/../../../escaped", [1, 2])
                   return tar.finished()
               }(), part: "all_1_1_0") { ($0 as? ArchiveError)?.kind == .unsafePath },
        Broken(description: "a truncated archive", metadata: nil,
               table: #"{"table":"t","database":"D","query":"q","parts":{"default":[{"name":"all_1_1_0"}]},"files":{"default":["default_all_1_1_0.tar"]}}"#,
               archive: {
                   var tar = TarBuilder()
                   tar.add("all_1_1_0/data.bin", [UInt8](repeating: 9, count: 100_000))
                   return Array(tar.finished().prefix(30_000))
               }(), part: "all_1_1_0") { ($0 as? ArchiveError)?.kind == .corrupt },
        Broken(description: "parts on an object-storage disk",
               metadata: #"{"backup_name":"x","disk_types":{"s3disk":"s3"},"creation_date":"2026-01-01T00:00:00Z","tags":"regular","data_format":"tar"}"#,
               table: #"{"table":"t","database":"D","query":"q","parts":{"s3disk":[{"name":"all_1_1_0"}]},"files":{"s3disk":["s3disk_all_1_1_0.tar"]}}"#,
               archive: nil, part: "all_1_1_0") {
            ($0 as? BackupError)?.kind == .unsupportedDisk && "\($0)".contains("not supported yet")
        },
    ]

    @Test("a bad backup is refused with a clear error and nothing is written outside the target", arguments: broken)
    func refusesBrokenBackups(bad: Broken) async throws {
        let store = RemoteBackupStore(s3: try bed.s3(), path: "it/\(TestBed.uniqueName("broken"))")
        let name = "bad"
        let db = "D"
        let disk = bad.table?.contains("s3disk") == true ? "s3disk" : "default"
        try await store.s3.put(store.metadataKey(name), bytes: Array((bad.metadata ?? String(decoding: metadataJSON(name, database: db), as: UTF8.self)).utf8))
        if let table = bad.table {
            try await store.s3.put(store.tableMetadataKey(name, database: db, table: "t"), bytes: Array(table.utf8))
        }
        if let archive = bad.archive {
            try await store.s3.put(store.shadowPrefix(name, database: db, table: "t") + "default_all_1_1_0.tar", bytes: archive)
        }
        let stage = try TemporaryFolder()
        defer { stage.remove() }
        let target = stage.path("target")
        try FileSystem.makeFolders(target)
        do {
            let source = RemoteBackupSource(name: name, store: store)
            _ = try await source.metadata()
            _ = try await source.fetchPart(database: db, table: "t", disk: disk, part: bad.part, into: target)
            Issue.record("\(bad) was accepted")
        } catch {
            #expect(bad.expect(error), "\(bad): \(error)")
            #expect(!"\(error)".isEmpty)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: stage.url.path) == ["target"])
        #expect(!FileSystem.exists(stage.path("escaped")))
    }

    @Test("a missing backup and a half-uploaded one are told apart")
    func missingAndIncomplete() async throws {
        let store = RemoteBackupStore(s3: try bed.s3(), path: "it/\(TestBed.uniqueName("missing"))")
        do {
            _ = try await RemoteBackupSource(name: "nothing", store: store).metadata()
            Issue.record("a missing backup was found")
        } catch let error as BackupError {
            #expect(error.kind == .notFound)
        }
        try await store.s3.put(store.key("half", "shadow/D/t/default_all_1_1_0.tar"), bytes: [1])
        do {
            _ = try await RemoteBackupSource(name: "half", store: store).metadata()
            Issue.record("a half-uploaded backup was taken as complete")
        } catch let error as BackupError {
            #expect(error.kind == .incomplete)
        }
        let listed = try await BackupLister.remote(store)
        #expect(listed.map(\.name) == ["half"])
        #expect(listed.first?.state.hasPrefix("incomplete") == true)
    }
}
