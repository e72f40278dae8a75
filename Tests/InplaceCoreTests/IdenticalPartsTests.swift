import Foundation
import Testing

@testable import InplaceCore

private func q(_ name: String) -> String { ClickHouseSQL.identifier(name) }

/// Identical inserts make identical parts (same partition, same hash): a restore must bring
/// every copy, and find each attach by its recorded name, never by counting parts of a hash.
@Suite("Identical parts on the test bed: every copy restored, also after one fails and is replayed", .enabled(if: TestBed.shouldRun))
struct IdenticalPartsTests {
    @Test("three identical parts, one damaged in the backup (CHECK fails, quarantined): after repair and replay, all three copies are there")
    func damagedCopyReplayed() async throws {
        let bed = try TestBed.load()
        let ch = try bed.clickHouse()
        let config = TestBed.envFile.replacingOccurrences(of: "/env", with: "/config.yml")
        let db = TestBed.uniqueName("it_ident")
        try await ch.execute("CREATE DATABASE \(q(db))")
        try await ch.execute("""
            CREATE TABLE \(q(db)).t (d Date, id UInt64, s String) ENGINE = MergeTree PARTITION BY toYYYYMM(d) ORDER BY id
            SETTINGS max_bytes_to_merge_at_max_space_in_pool = 1, max_bytes_to_merge_at_min_space_in_pool = 1
            """)
        try await ch.execute("SYSTEM STOP MERGES \(q(db)).t")
        for _ in 0..<3 {
            try await ch.execute("INSERT INTO \(q(db)).t SELECT toDate('2024-01-01') + number % 28, number, toString(number) FROM numbers(50)")
        }
        try await ch.execute("INSERT INTO \(q(db)).t SELECT toDate('2024-02-01'), number, 'other' FROM numbers(10)")
        let contents = "SELECT _partition_id, count(), sum(cityHash64(d, id, s)) FROM \(q(db)).t GROUP BY 1 ORDER BY 1"
        let atBackup = try await ch.execute(contents)
        let parts = try await ClickHouseCatalog(client: ch).parts(of: [(db, "t")])
        #expect(Set(parts.filter { $0.partitionID == "202401" }.map(\.hash)).count == 1, "three identical parts")

        let name = TestBed.uniqueName("ident")
        #expect(try await CLI.run(["create", "--config", config, "--tables", "\(db).t", name]).status == 0)
        try await ch.execute("DROP TABLE \(q(db)).t SYNC")
        // The second copy's data.bin damaged in the backup (a new file: the hard-linked one is untouched).
        let layout = LocalBackupLayout(disks: try await ClickHouseCatalog(client: ch).disks())
        let second = parts.filter { $0.partitionID == "202401" }.sorted { $0.minBlock < $1.minBlock }[1].name
        let file = try #require(FileManager.default.enumerator(atPath: layout.folder(name))?
            .compactMap { $0 as? String }.first { $0.hasSuffix("/\(second)/data.bin") })
        let path = layout.folder(name) + "/" + file
        let original = try FileSystem.readFile(path)
        try BackupEdit.flipByte(path)

        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let journal = folder.path("journal.sqlite")
        let first = try await CLI.run(["restore", "--config", config, "--journal", journal, "--json", name])
        #expect(first.status == 12, "\(first.all)")
        #expect(first.all.contains("CHECK TABLE failed for"), "\(first.all)")
        // The copy after the damaged one waits (out of order otherwise); nothing else is lost.
        #expect(first.all.contains("withheld"), "\(first.all)")

        try FileSystem.writeDurably(original, to: path)
        let replay = try await CLI.run(["journal", "replay", "1", "--failed", "--config", config, "--journal", journal])
        #expect(replay.status == 0, "\(replay.all)")
        #expect(try await ch.execute(contents) == atBackup, "rows per partition and their checksum")
        let restored = try await ClickHouseCatalog(client: ch).parts(of: [(db, "t")])
        #expect(restored.filter { $0.partitionID == "202401" }.count == 3)
        let verify = try await CLI.run(["verify", "--config", config, name])
        #expect(verify.status == 0, "\(verify.all)")

        BackupEdit.removeQuarantined(layout, journal: journal)
        try? FileManager.default.removeItem(atPath: layout.folder(name))
        _ = try? await ch.execute("DROP DATABASE \(q(db)) SYNC")
    }
}
