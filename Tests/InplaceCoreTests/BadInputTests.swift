import Foundation
import Synchronization
import Testing

@testable import InplaceCore

@Suite("Bad input: inplace restore against damaged backups loses nothing and says why", .enabled(if: TestBed.shouldRun))
struct BadInputTests {
    enum Where: String, CaseIterable, Sendable, CustomStringConvertible {
        case local, remote
        var description: String { rawValue }
    }

    /// The fixture, changed, with the backup in `location`; `damage` runs on the local backup
    /// before any upload, `damageRemote` on the uploaded objects.
    private func prepared(_ prefix: String, _ location: Where, extraPart: Bool = true,
                          damage: (BadInputFixture) throws -> Void = { _ in },
                          damageRemote: (BadInputFixture) async throws -> Void = { _ in }) async throws -> BadInputFixture {
        let fixture = try await BadInputFixture.make(prefix)
        try damage(fixture)
        if location == .remote {
            try await fixture.upload()
            try await damageRemote(fixture)
        }
        try await fixture.change(extraPart: extraPart)
        return fixture
    }

    /// A refusal: the given exit code, a message with `words` on standard error, and the live
    /// table, its detached/ folder and the staging area exactly as before.
    private func expectRefused(_ fixture: BadInputFixture, _ arguments: [String] = [], status: Int32, _ words: [String],
                               sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let before = try await fixture.live()
        let result = try await fixture.restore(arguments)
        #expect(result.status == status, "\(result.stderr)", sourceLocation: sourceLocation)
        for word in words {
            #expect(result.stderr.contains(word), "no '\(word)' in: \(result.stderr)", sourceLocation: sourceLocation)
        }
        #expect(try await fixture.live() == before, "the live table changed", sourceLocation: sourceLocation)
        #expect(try await fixture.leftovers() == [], sourceLocation: sourceLocation)
    }

    /// A run that went ahead and failed: exit 12, the failure named; not one live part was
    /// dropped (the live part the backup lacks waits for the backup's parts to attach), and the
    /// damaged part is not active.
    private func expectFailedSafely(_ fixture: BadInputFixture, _ words: [String],
                                    sourceLocation: SourceLocation = #_sourceLocation) async throws -> CLI.Result {
        let before = try await fixture.live()
        let result = try await fixture.restore()
        #expect(result.status == 12, "\(result.stderr)", sourceLocation: sourceLocation)
        for word in words {
            #expect(result.all.contains(word), "no '\(word)' in: \(result.all)", sourceLocation: sourceLocation)
        }
        let after = try await fixture.live()
        let damaged = "\(fixture.missingPart.partitionID)/\(fixture.missingPart.hash)"
        #expect(!after.contains(damaged), "the damaged part is active", sourceLocation: sourceLocation)
        for identity in Set(fixture.backupIdentities) where identity != damaged {
            let count = { (parts: [String]) in parts.filter { $0 == identity }.count }
            #expect(count(after) >= min(count(before), count(fixture.backupIdentities)),
                    "live part \(identity), also in the backup, was lost", sourceLocation: sourceLocation)
        }
        #expect(after == before, "a live part was dropped or a part attached", sourceLocation: sourceLocation)
        #expect(result.all.contains("not dropped"), "no word of the withheld drop in: \(result.all)",
                sourceLocation: sourceLocation)
        // Every row still reads: no corrupt part is active.
        _ = try await fixture.ch.execute("SELECT sum(cityHash64(*)) FROM \(fixture.qualified)")
        return result
    }

    // MARK: 1. Missing backup

    @Test("a backup that does not exist exits 7 and changes nothing (--from local, --from remote, and without --from)",
          arguments: [Where.local, Where.remote, nil])
    func missingBackup(location: Where?) async throws {
        let fixture = try await prepared("bad_missing", .local)
        try FileManager.default.removeItem(atPath: fixture.layout.folder(fixture.name))
        // Without --from, a name not found locally is looked for in S3 (configured on the bed).
        let words = location == .local ? ["no local backup named '\(fixture.name)'"] : ["no remote backup named '\(fixture.name)'"]
        try await expectRefused(fixture, location.map { ["--from", $0.rawValue] } ?? [], status: 7, words)
        await fixture.cleanup()
    }

    // MARK: 2. Metadata

    @Test("metadata.json that is not JSON exits 7 and changes nothing", arguments: Where.allCases)
    func metadataNotJSON(location: Where) async throws {
        let fixture = try await prepared("bad_meta", location) { f in
            if location == .local { try FileSystem.writeDurably(Array("{\"backup_name\": ".utf8), to: f.metadataFile) }
        } damageRemote: { f in
            try await f.store.s3.put(f.store.metadataKey(f.name), bytes: Array("{\"backup_name\": ".utf8))
        }
        try await expectRefused(fixture, status: 7, ["metadata.json is not valid backup metadata", "not JSON"])
        await fixture.cleanup()
    }

    @Test("a table's JSON missing, or not JSON, exits 7 and changes nothing",
          arguments: Where.allCases, [false, true])
    func tableJSON(location: Where, present: Bool) async throws {
        let garbage = Array("{\"table\": \"t\", \"parts\": [[[".utf8)
        let fixture = try await prepared("bad_table", location) { f in
            guard location == .local else { return }
            if present {
                try FileSystem.writeDurably(garbage, to: f.tableFile)
            } else {
                try FileManager.default.removeItem(atPath: f.tableFile)
            }
        } damageRemote: { f in
            let key = f.store.tableMetadataKey(f.name, database: f.database, table: f.table)
            if present { try await f.store.s3.put(key, bytes: garbage) } else { try await f.store.s3.delete(key) }
        }
        let words = present ? ["is not valid table metadata"] : ["has no metadata for \(fixture.database).t", "is missing"]
        try await expectRefused(fixture, status: 7, words)
        await fixture.cleanup()
    }

    // MARK: 3. Data missing or truncated

    @Test("a part folder (local) or archive (remote) missing: the table is refused, exit 11, nothing dropped",
          arguments: Where.allCases)
    func dataMissing(location: Where) async throws {
        let fixture = try await prepared("bad_gone", location) { f in
            if location == .local { try FileManager.default.removeItem(atPath: f.partFolder(f.missingPart.name)) }
        } damageRemote: { f in
            try await f.store.s3.delete(f.archiveKey)
        }
        try await expectRefused(fixture, status: 11, ["nothing was changed", "is missing (\(fixture.missingPart.name))",
                                                      "nothing will be dropped from this table"])
        await fixture.cleanup()
    }

    @Test("a truncated archive fails its download, exit 12: the parts shared with the backup stay, the part is not attached")
    func truncatedArchive() async throws {
        let original = Mutex<[UInt8]>([])
        let fixture = try await prepared("bad_trunc", .remote) { _ in } damageRemote: { f in
            try await truncateArchive(f, keeping: original)
        }
        _ = try await expectFailedSafely(fixture, ["download-part", fixture.missingPart.name, "truncated or corrupt archive"])
        #expect(try await fixture.leftovers() == [])
        // The backup repaired, replaying the failed steps (the withheld drop among them) makes
        // the table equal to the backup.
        try await fixture.store.s3.put(fixture.archiveKey, bytes: original.withLock { $0 })
        let replay = try await fixture.replayFailed()
        #expect(replay.status == 0, "\(replay.all)")
        #expect(try await fixture.live() == fixture.backupIdentities)
        await fixture.cleanup()
    }

    // MARK: 4. and 5. Corrupt part files

    @Test("""
        a part file damaged in the backup: checksums.txt changed (ATTACH refuses it, Code 40), count.txt gone \
        (Code 226), a byte of data.bin flipped (ATTACH takes it, CHECK TABLE catches it, it is detached again): \
        exit 12, nothing the backup shares with the table lost
        """, arguments: ["checksums.txt", "-count.txt", "data.bin"], Where.allCases)
    func damagedPartFile(file: String, location: Where) async throws {
        let removed = file.hasPrefix("-")
        let name = removed ? String(file.dropFirst()) : file
        let fixture = try await prepared("bad_file", location) { f in
            let path = f.partFolder(f.missingPart.name) + "/" + name
            if removed { try FileManager.default.removeItem(atPath: path) } else { try BackupEdit.flipByte(path) }
            #expect(differingFiles(f.partFolder(f.missingPart.name), f.missingPart.path) == [name],
                    "the backup's copy changed, the live part's stayed")
        }
        let words = file == "data.bin"
            ? ["CHECK TABLE failed", "the part was detached again", "moved to", ".inplace-quarantine"]
            : [removed ? "NO_FILE_IN_DATA_PART" : "CHECKSUM_DOESNT_MATCH", "moved to", ".inplace-quarantine"]
        let result = try await expectFailedSafely(fixture, ["attach-part", fixture.missingPart.name] + words)
        // The flipped data byte leaves hash_of_all_files as the backup recorded it (the hash
        // covers checksums.txt, not the bytes it describes): the CHECK is what catches it.
        #expect(!result.all.contains("the backup's is"), "the hash check fired: \(result.all)")
        // The damaged part left detached/ for the quarantine folder (owner-only), where an
        // operator can look at it; nothing blocks a replay once the backup is repaired.
        #expect(try await fixture.leftovers() == [])
        let quarantine = fixture.layout.defaultDiskPath + "backup/.inplace-quarantine/"
        let held = (try? FileManager.default.contentsOfDirectory(atPath: quarantine))?.filter {
            $0.hasPrefix(RestoreRunner.stagingPrefix(journal: fixture.folder.path("journal.sqlite"), run: 1))
        } ?? []
        #expect(held.count == 1, "quarantined: \(held)")
        for entry in held { try? FileManager.default.removeItem(atPath: quarantine + entry) }
        await fixture.cleanup()
    }

    // MARK: 6. Unsafe archives

    struct Attack: Sendable, CustomStringConvertible {
        let description: String
        /// Entries (path, type, link target); PART and MARKER are replaced by the part's name
        /// and a name no file has.
        let entries: [(String, TarBuilder.EntryType, String)]
        let words: [String]

        func archive(part: String, marker: String) -> [UInt8] {
            var tar = TarBuilder()
            for (path, type, link) in entries {
                let path = path.replacingOccurrences(of: "PART", with: part).replacingOccurrences(of: "MARKER", with: marker)
                tar.add(path, type == .file ? [1] : [], type: type, link: link)
            }
            return tar.finished()
        }
    }

    static let attacks: [Attack] = [
        Attack(description: "an entry with ..", entries: [("PART/../../../../MARKER", .file, "")],
               words: ["leaves its folder"]),
        Attack(description: "an absolute path elsewhere", entries: [("/tmp/MARKER", .file, "")],
               words: ["which this archive is not expected to hold"]),
        Attack(description: "an absolute path through the part", entries: [("/PART/../../../../tmp/MARKER", .file, "")],
               words: ["leaves its folder"]),
        Attack(description: "a symbolic link out, then a file through it",
               entries: [("PART/checksums.txt", .file, ""), ("PART/out", .symbolicLink, "/tmp"), ("PART/out/MARKER", .file, "")],
               words: ["is a symbolic link"]),
        Attack(description: "a hard link to a file outside", entries: [("PART/checksums.txt", .hardLink, "/etc/passwd")],
               words: ["is a hard link"]),
    ]

    @Test("an unsafe archive is refused (the step fails, exit 12), nothing is written outside staging, the table is unchanged",
          arguments: attacks)
    func unsafeArchive(attack: Attack) async throws {
        let marker = "escaped-\(UUID().uuidString)"
        // No extra live part: the plan only downloads, so an unchanged table is what must remain.
        let fixture = try await prepared("bad_tar", .remote, extraPart: false) { _ in } damageRemote: { f in
            try await f.store.s3.put(f.archiveKey, bytes: attack.archive(part: f.missingPart.name, marker: marker))
        }
        let before = try await fixture.live()
        let result = try await fixture.restore()
        #expect(result.status == 12, "\(result.stderr)")
        for word in attack.words + ["download-part", fixture.missingPart.name] {
            #expect(result.all.contains(word), "no '\(word)' in: \(result.all)")
        }
        #expect(try await fixture.live() == before)
        #expect(try await fixture.leftovers() == [])
        #expect(!FileSystem.exists("/tmp/" + marker))
        let disk = fixture.layout.defaultDiskPath
        let escaped = FileManager.default.enumerator(atPath: disk)?.compactMap { $0 as? String }.filter { $0.contains(marker) }
        #expect(escaped == [], "written under \(disk)")
        await fixture.cleanup()
    }

    // MARK: 7. required_backup and embedded backups

    @Test("a required_backup that does not exist: the table is refused, exit 11, nothing dropped", arguments: Where.allCases)
    func requiredBackupMissing(location: Where) async throws {
        let base = TestBed.uniqueName("no_such_base")
        func markRequired(_ table: inout [String: Any], part: String) {
            var parts = table["parts"] as? [String: [[String: Any]]] ?? [:]
            parts["default"] = (parts["default"] ?? []).map { entry in
                var entry = entry
                if entry["name"] as? String == part { entry["required"] = true }
                return entry
            }
            table["parts"] = parts
        }
        let fixture = try await prepared("bad_req", location) { f in
            guard location == .local else { return }
            try BackupEdit.local(f.metadataFile) { $0["required_backup"] = base }
            try BackupEdit.local(f.tableFile) { markRequired(&$0, part: f.missingPart.name) }
            try FileManager.default.removeItem(atPath: f.partFolder(f.missingPart.name))
        } damageRemote: { f in
            try await BackupEdit.remote(f.store, f.store.metadataKey(f.name)) { $0["required_backup"] = base }
            try await BackupEdit.remote(f.store, f.store.tableMetadataKey(f.name, database: f.database, table: f.table)) {
                markRequired(&$0, part: f.missingPart.name)
            }
            try await f.store.s3.delete(f.archiveKey)
        }
        try await expectRefused(fixture, status: 11, ["nothing was changed", "is missing (\(fixture.missingPart.name))",
                                                      "base backup '\(base)' (required_backup)"])
        await fixture.cleanup()
    }

    @Test("an embedded backup is refused, exit 7, nothing changed", arguments: Where.allCases)
    func embeddedBackup(location: Where) async throws {
        let fixture = try await prepared("bad_emb", location) { f in
            if location == .local { try BackupEdit.local(f.metadataFile) { $0["tags"] = "embedded" } }
        } damageRemote: { f in
            try await BackupEdit.remote(f.store, f.store.metadataKey(f.name)) { $0["tags"] = "embedded" }
        }
        try await expectRefused(fixture, status: 7, ["describes an embedded backup", "regular backups only"])
        await fixture.cleanup()
    }

    // MARK: 8. Names

    @Test("database and table names with backticks, quotes, semicolons, newlines and / restore, in place and created",
          arguments: Where.allCases)
    func oddNamesRestore(location: Where) async throws {
        let database = "it_odd`'\";\n\t\\/.. " + String(UInt32.random(in: 0...UInt32.max))
        let table = "t`'\"; DROP TABLE x;\n/../y"
        let fixture = try await BadInputFixture.make("bad_names", database: database, table: table)
        if location == .remote { try await fixture.upload() }
        try await fixture.change(extraPart: true)
        let inPlace = try await fixture.restore()
        #expect(inPlace.status == 0, "\(inPlace.stderr)")
        #expect(try await fixture.live() == fixture.backupIdentities)
        try await fixture.ch.execute("DROP TABLE \(fixture.qualified) SYNC")
        let created = try await fixture.restore(["--new-run"])
        #expect(created.status == 0, "\(created.stderr)")
        #expect(try await fixture.live() == fixture.backupIdentities)
        #expect(try await fixture.leftovers() == [])
        // The encoded names kept every file inside the backup's folder.
        if location == .local {
            #expect(FileSystem.exists(fixture.tableFile))
            #expect(fixture.tableFile.hasPrefix(fixture.layout.folder(fixture.name) + "/metadata/"))
            #expect(!fixture.tableFile.dropFirst(fixture.layout.folder(fixture.name).count).contains(".."))
        }
        await fixture.cleanup()
    }

    @Test("part names that cannot be folders (/, .., newline) refuse the table, exit 11; nothing is created outside",
          arguments: ["../../../escaped_1_1_0", "202401_1_1_0/../../x", "202401_9_9_0\n", "a/b_1_1_0", ".."])
    func invalidPartName(part: String) async throws {
        let fixture = try await prepared("bad_part", .local) { f in
            try BackupEdit.local(f.tableFile) { table in
                var parts = table["parts"] as? [String: [[String: Any]]] ?? [:]
                parts["default", default: []].append(["name": part])
                table["parts"] = parts
            }
        }
        let target = URL(fileURLWithPath: fixture.partFolder(part)).standardized.path
        let existed = FileSystem.exists(target)
        let backupFiles = FileSystem.files(under: fixture.layout.folder(fixture.name))
        try await expectRefused(fixture, status: 11, ["nothing was changed", "which is not a valid part name"])
        #expect(FileSystem.exists(target) == existed, "\(target) was created")
        #expect(FileSystem.files(under: fixture.layout.folder(fixture.name)) == backupFiles)
        await fixture.cleanup()
    }

    @Test("a table listed under a database name that climbs out (../..) reads no file outside the backup: exit 7")
    func climbingTableName() async throws {
        let fixture = try await prepared("bad_climb", .local) { f in
            try BackupEdit.local(f.metadataFile) { $0["tables"] = [["database": "../../..", "table": "etc/passwd"]] }
        }
        try await expectRefused(fixture, status: 7, ["has no metadata for ../../...etc/passwd", "%2E%2E%2F"])
        await fixture.cleanup()
    }

    // MARK: 9. Schema and patterns

    @Test("a live schema that differs is refused (exit 11) unless --drop-if-schema-changed, which recreates the table")
    func schemaChanged() async throws {
        let fixture = try await prepared("bad_schema", .local)
        try await fixture.ch.execute("ALTER TABLE \(fixture.qualified) ADD COLUMN extra UInt8 DEFAULT 1")
        try await expectRefused(fixture, status: 11, ["nothing was changed", "its columns differ", "--drop-if-schema-changed"])
        let recreated = try await fixture.restore(["--drop-if-schema-changed"])
        #expect(recreated.status == 0, "\(recreated.stderr)")
        #expect(try await fixture.live() == fixture.backupIdentities)
        let columns = try await fixture.ch.execute(
            "SELECT name FROM system.columns WHERE database = {db:String} AND table = 't' ORDER BY position",
            parameters: ["db": fixture.database])
        #expect(columns.split(separator: "\n") == ["d", "id", "s"])
        #expect(try await asideTables(fixture) == [], "the old copy was not dropped after a complete restore")
        await fixture.cleanup()
    }

    /// Cuts the part's archive in half, keeping the whole one in `original` for a later repair.
    private func truncateArchive(_ fixture: BadInputFixture, keeping original: borrowing Mutex<[UInt8]>) async throws {
        let bytes = try await fixture.store.s3.getBytes(fixture.archiveKey)
        original.withLock { $0 = bytes }
        try await fixture.store.s3.put(fixture.archiveKey, bytes: Array(bytes.prefix(bytes.count / 2)))
    }

    @Test("""
        a live part merged after the plan (drops withheld, merges run, then the replay) is never reported \
        dropped: the replay plans the table again and ends equal to the backup, nothing lost or twice
        """)
    func mergedAfterPlan() async throws {
        let original = Mutex<[UInt8]>([])
        let fixture = try await prepared("bad_merged", .remote) { _ in } damageRemote: { f in
            try await truncateArchive(f, keeping: original)
        }
        // A second surplus part, in a partition where a kept part lives: a merge joins them.
        try await SampleDatabase(ch: fixture.ch, name: fixture.database).insert(fixture.table, month: "2024-02", rows: 20, seed: 9)
        let first = try await fixture.restore()
        #expect(first.status == 12 && first.all.contains("not dropped"), "\(first.all)")
        try await fixture.ch.execute("SYSTEM START MERGES \(fixture.qualified)")
        try await fixture.ch.execute("OPTIMIZE TABLE \(fixture.qualified) PARTITION 202402 FINAL")

        try await fixture.store.s3.put(fixture.archiveKey, bytes: original.withLock { $0 })
        let replay = try await fixture.replayFailed()
        // The merged part holds rows of a part to drop and of kept parts: no step can drop it
        // alone, so the table is planned again, the merged part dropped once the backup's
        // parts of its partition are attached again.
        #expect(replay.status == 0, "\(replay.all)")
        #expect(replay.all.contains("planning the table again") && replay.all.contains("was merged into"), "\(replay.all)")
        #expect(try await fixture.live() == fixture.backupIdentities)
        await fixture.cleanup()
    }

    @Test("""
        a table refused in a run that goes on (its schema differs) is planned again when replayed: \
        once its schema is put back, replay restores it
        """)
    func refusedTableReplannedOnReplay() async throws {
        let bed = try TestBed.load()
        let ch = try bed.clickHouse()
        let sample = try await SampleDatabase.make(ch, prefix: "bad_replan", tables: ["a", "b"])
        defer { Task { await sample.drop() } }
        let config = TestBed.envFile.replacingOccurrences(of: "/env", with: "/config.yml")
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let name = TestBed.uniqueName("bad_replan")
        let layout = LocalBackupLayout(disks: try await ClickHouseCatalog(client: ch).disks())
        defer { try? FileManager.default.removeItem(atPath: layout.folder(name)) }
        #expect(try await CLI.run(["create", "--config", config, "--tables", "\(sample.name).*", name]).status == 0)
        let backupHashes = { (table: String) async throws -> [String] in
            try await sample.parts(table).map(\.hash).sorted()
        }
        let wanted = try await backupHashes("b")
        // a gains a part; b loses one and gains a column (refused without --drop-if-schema-changed).
        try await sample.insert("a", month: "2024-03", rows: 10, seed: 8)
        let first = try await sample.parts("b")[0].name
        try await ch.execute("ALTER TABLE \(ClickHouseSQL.identifier(sample.name)).b DROP PART \(ClickHouseSQL.string(first))")
        try await ch.execute("ALTER TABLE \(ClickHouseSQL.identifier(sample.name)).b ADD COLUMN extra UInt8 DEFAULT 1")
        let journal = folder.path("journal.sqlite")
        let restored = try await CLI.run(["restore", "--config", config, "--journal", journal, name])
        #expect(restored.status == 12, "\(restored.all)")
        #expect(restored.all.contains("refused"), "\(restored.all)")

        // Dropping a column is a mutation: it waits for merges, which the sample stopped (and a
        // waiting mutation holds the test bed's whole engine).
        try await ch.execute("SYSTEM START MERGES \(ClickHouseSQL.identifier(sample.name)).b")
        try await ch.execute("ALTER TABLE \(ClickHouseSQL.identifier(sample.name)).b DROP COLUMN extra",
                             settings: ["mutations_sync": "1"])
        let replay = try await CLI.run(["journal", "replay", "--config", config, "--journal", journal, "1", "--failed"])
        #expect(replay.status == 0, "\(replay.all)")
        #expect(replay.all.contains("no longer refused"), "\(replay.all)")
        #expect(try await backupHashes("b") == wanted)
    }

    /// Tables a recreate kept aside in the fixture's database.
    private func asideTables(_ fixture: BadInputFixture) async throws -> [String] {
        try await fixture.ch.execute(
            "SELECT name FROM system.tables WHERE database = {db:String} AND startsWith(name, '.inplace-old-')",
            parameters: ["db": fixture.database]).split(separator: "\n").map(String.init)
    }

    @Test("""
        --drop-if-schema-changed with a truncated archive: the old table waits under another name with \
        every row, exit 12; once the archive is repaired, replay completes the new table and drops the old
        """)
    func recreateKeepsOldTable() async throws {
        let original = Mutex<[UInt8]>([])
        let fixture = try await prepared("bad_recreate", .remote) { _ in } damageRemote: { f in
            try await truncateArchive(f, keeping: original)
        }
        try await fixture.ch.execute("ALTER TABLE \(fixture.qualified) ADD COLUMN extra UInt8 DEFAULT 1")
        let count = { (table: String) async throws -> String in
            try await fixture.ch.execute("SELECT count() FROM \(ClickHouseSQL.qualified(fixture.database, table))")
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let rowsBefore = try await count(fixture.table)
        let result = try await fixture.restore(["--drop-if-schema-changed"])
        #expect(result.status == 12, "\(result.stderr)")
        #expect(result.all.contains("truncated or corrupt archive") && result.all.contains("not dropped"), "\(result.all)")
        let aside = try await asideTables(fixture)
        #expect(aside.count == 1, "kept aside: \(aside)")
        if let old = aside.first { #expect(try await count(old) == rowsBefore, "the old copy lost rows") }

        try await fixture.store.s3.put(fixture.archiveKey, bytes: original.withLock { $0 })
        let replay = try await fixture.replayFailed()
        #expect(replay.status == 0, "\(replay.all)")
        #expect(try await fixture.live() == fixture.backupIdentities)
        #expect(try await asideTables(fixture) == [])
        await fixture.cleanup()
    }

    @Test("a --tables pattern that matches nothing exits 9 and changes nothing")
    func patternMatchesNothing() async throws {
        let fixture = try await prepared("bad_pattern", .local)
        try await expectRefused(fixture, ["--tables", "no_such_database_q.*"], status: 9, ["matches no table"])
        await fixture.cleanup()
    }
}
