import Foundation
import Testing

@testable import InplaceCore

/// `{macro}` in s3.path against the test bed, whose engine has the macros cluster, shard, replica
/// and version (tools/testbed writes them into its server config), through the built binary.
@Suite("Macros in s3.path against the test bed", .enabled(if: TestBed.shouldRun))
struct MacroIntegrationTests {
    /// The test bed's config file.
    static var bedConfig: String { TestBed.envFile.replacingOccurrences(of: "/env", with: "/config.yml") }

    static func yamlQuoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "''") + "'" }

    /// clickhouse-backup's test/integration/configs/config-s3.yml (`RemotePathsTests.configS3`),
    /// pointed at the test bed: its TLS keys set to what works over the test bed's plain HTTP, its
    /// password the test bed's (which holds `=&?*%#`, a space and non-ASCII letters), and
    /// clickhouse.skip_tables with whitespace around the patterns.
    static func configS3(_ bed: TestBed, path: String) throws -> String {
        let replacements = [
            ("  host: clickhouse", "  host: \(try bed.value("CLICKHOUSE_HOST"))\n  http_port: \(try bed.value("CLICKHOUSE_HTTP_PORT"))"),
            ("  username: backup", "  username: \(try bed.value("CLICKHOUSE_USERNAME"))"),
            ("  password: meow=& 123?*%# МЯУ", "  password: \(yamlQuoted(bed.clickHousePassword))"),
            ("  secure: true", "  secure: false"),
            ("  sync_replicated_tables: true", "  sync_replicated_tables: true\n  skip_tables:\n    - \" system.*\"\n    - \" it_macro_skipped_*.* \""),
            ("  access_key: access_key", "  access_key: \(try bed.value("S3_ACCESS_KEY"))"),
            ("  secret_key: it_is_my_super_secret_key", "  secret_key: \(yamlQuoted(bed.s3SecretKey))"),
            ("  bucket: clickhouse", "  bucket: \(try bed.value("S3_BUCKET"))"),
            ("  endpoint: https://minio:9000", "  endpoint: \(try bed.value("S3_ENDPOINT"))"),
            ("  disable_ssl: false", "  disable_ssl: true"),
            ("  path: backup/{cluster}/{shard}/{version}", "  path: \(path)"),
        ]
        var lines = RemotePathsTests.configS3.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for (old, new) in replacements {
            let index = try #require(lines.firstIndex(of: old), "config-s3.yml has no line '\(old)'")
            lines[index] = new
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `{cluster}/{shard}/{version}` as the test bed's engine substitutes them.
    static func substituted(_ bed: TestBed) throws -> String {
        try ["CLUSTER", "SHARD", "VERSION"].map { try bed.value("INPLACE_TESTBED_MACRO_\($0)") }.joined(separator: "/")
    }

    @Test("config-s3.yml's shape: config show prints the configured and the effective path; create, upload, list remote and restore use the effective one, and the journal records it")
    func configS3Shape() async throws {
        let bed = try TestBed.load()
        let ch = try bed.clickHouse()
        let sample = try await SampleDatabase.make(ch, prefix: "it_macro", tables: ["t"])
        let unique = TestBed.uniqueName("macro")
        let path = "it/\(unique)/{cluster}/{shard}/{version}"
        let effective = "it/\(unique)/\(try Self.substituted(bed))"
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let config = folder.path("config-s3.yml")
        try Self.configS3(bed, path: path).write(toFile: config, atomically: true, encoding: .utf8)
        let name = TestBed.uniqueName("macro")
        var outputs: [String] = []

        let shown = try await CLI.run(["config", "show", "--config", config])
        outputs.append(shown.all)
        #expect(shown.status == 0, "\(shown.stderr)")
        #expect(shown.stdout.contains("path: \"\(path)\"   # effective: \"\(effective)\" (system.macros applied)"))
        #expect(shown.stdout.contains("object_disk_path: \"object_disk/{cluster}/{shard}/{version}\"   # effective: \"object_disk/\(try Self.substituted(bed))\""))
        #expect(shown.stdout.contains("    - \"it_macro_skipped_*.*\""), "skip_tables patterns are trimmed")
        #expect(shown.stdout.contains("password: \"******\""))

        let created = try await CLI.run(["create", "--config", config, "--tables", "\(sample.name).*", name])
        let uploaded = try await CLI.run(["upload", "--config", config, name])
        outputs += [created.all, uploaded.all]
        #expect(created.status == 0, "\(created.stderr)")
        #expect(uploaded.status == 0, "\(uploaded.stderr)")
        #expect(uploaded.stdout.contains("uploaded \(name)"))

        // The objects really are under the substituted path, and nothing under a literal {cluster}.
        let keys = try await bed.s3().listAll(prefix: "it/\(unique)/").objects.map(\.key)
        #expect(keys.contains("\(effective)/\(name)/metadata.json"))
        #expect(keys.count > 2 && keys.allSatisfy { $0.hasPrefix("\(effective)/\(name)/") }, "\(keys)")

        let listed = try await CLI.run(["list", "remote", "--config", config, "--json"])
        outputs.append(listed.all)
        #expect(listed.status == 0, "\(listed.stderr)")
        let items = try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]] ?? []
        #expect(items.map { $0["name"] as? String } == [name])
        #expect(items.first?["state"] as? String == "complete")

        // A restore from that remote backup: the journal records where it read it.
        let before = try await TableContents.of(ch, sample.name, "t")
        try await ch.execute("ALTER TABLE \(ClickHouseSQL.identifier(sample.name)).t DROP PARTITION 202402")
        try await sample.insert("t", month: "2024-01", rows: 10, seed: 9)
        #expect(try await TableContents.of(ch, sample.name, "t") != before)
        let journal = folder.path("journal.sqlite")
        let restored = try await CLI.run(["restore", "--config", config, "--from", "remote", "--journal", journal, name])
        outputs.append(restored.all)
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(try await TableContents.of(ch, sample.name, "t") == before)
        let runs = try await Journal(path: journal, readOnly: true).runs()
        let location = "s3://\(try bed.value("S3_BUCKET"))/\(effective)/\(name)/"
        #expect(runs.map(\.location) == [location])
        // The same run resumed with a path whose macros give another folder is refused, naming both.
        let moved = try await CLI.run(["resume", "1", "--config", config, "--journal", journal],
                                      environment: ["S3_PATH": "it/\(unique)/{replica}"])
        outputs.append(moved.all)
        #expect(moved.status == 14, "\(moved.stderr)")
        let elsewhere = "s3://\(try bed.value("S3_BUCKET"))/it/\(unique)/\(try bed.value("INPLACE_TESTBED_MACRO_REPLICA"))/\(name)/"
        #expect(moved.stderr.contains("read its backup from \(location)") && moved.stderr.contains("now gives \(elsewhere)"))

        for output in outputs {
            #expect(!output.contains(bed.clickHousePassword) && !output.contains(bed.s3SecretKey))
        }
        let disks = try await ClickHouseCatalog(client: ch).disks()
        try? FileManager.default.removeItem(atPath: (disks.first { $0.name == "default" }?.path ?? "/nonexistent/") + "backup/" + name)
        await sample.drop()
    }

    @Test("a path without { never asks the server (list remote works with ClickHouse unreachable); one with { says why it cannot")
    func plainPathAsksNothing() async throws {
        let unreachable = ["CLICKHOUSE_HTTP_PORT": "1"]
        let plain = try await CLI.run(["list", "remote", "--config", Self.bedConfig],
                                      environment: unreachable.merging(["S3_PATH": "it/\(TestBed.uniqueName("plain"))"]) { $1 })
        #expect(plain.status == 0, "\(plain.stderr)")

        let macro = unreachable.merging(["S3_PATH": "it/{shard}"]) { $1 }
        let listed = try await CLI.run(["list", "remote", "--config", Self.bedConfig], environment: macro)
        #expect(listed.status == 4)
        #expect(listed.stderr.contains("s3.path 'it/{shard}'") && listed.stderr.contains("system.macros could not be read"))
        let shown = try await CLI.run(["config", "show", "--config", Self.bedConfig], environment: macro)
        #expect(shown.status == 0, "config show still shows the rest")
        #expect(shown.stdout.contains("path: \"it/{shard}\"   # effective: unknown: the server could not be asked"))
    }

    @Test("a {name} the server lacks: list warns and reads the literal folder, as clickhouse-backup does; upload refuses and writes nothing")
    func unknownMacro() async throws {
        let bed = try TestBed.load()
        let unique = TestBed.uniqueName("nosuch")
        let env = ["S3_PATH": "it/\(unique)/{shard}/{nosuch}"]
        let listed = try await CLI.run(["list", "remote", "--config", Self.bedConfig], environment: env)
        #expect(listed.status == 0, "\(listed.stderr)")
        #expect(listed.stderr.contains("warning") && listed.stderr.contains("names {nosuch}, which the server's system.macros lacks"))
        #expect(!listed.stderr.contains("names {shard}"), "only the unknown macro is named as missing")

        let uploaded = try await CLI.run(["upload", "--config", Self.bedConfig, "no_such_local_backup"], environment: env)
        #expect(uploaded.status == 3, "refused as a configuration error before the backup is even looked for: \(uploaded.stderr)")
        #expect(uploaded.stderr.contains("s3.path") && uploaded.stderr.contains("{nosuch}") && uploaded.stderr.contains("refusing to write"))
        #expect(try await bed.s3().listAll(prefix: "it/\(unique)/").objects.isEmpty)
    }
}
