import Foundation
import Testing

@testable import InplaceCore

@Suite("Macros in s3.path, as clickhouse-backup's ApplyMacros puts them in")
struct RemotePathsTests {
    let macros = ["cluster": "testbed", "shard": "01", "replica": "replica-1", "version": "26_9"]

    @Test("every {name} of a known macro is replaced; unknown ones stay as written and are reported")
    func substitutes() {
        #expect(RemotePaths.substitute("backup/{cluster}/{shard}/{version}", macros: macros)
            == ("backup/testbed/01/26_9", []))
        #expect(RemotePaths.substitute("b/{shard}-{shard}/{nosuch}/{Shard}/{nosuch}", macros: macros)
            == ("b/01-01/{nosuch}/{Shard}/{nosuch}", ["{nosuch}", "{Shard}"]))
        #expect(RemotePaths.substitute("plain/path", macros: [:]) == ("plain/path", []))
        #expect(RemotePaths.substitute("a/{shard}", macros: [:]) == ("a/{shard}", ["{shard}"]))
    }

    @Test("stray braces are text, and a substitution is never scanned again (one pass, like strings.Replacer)")
    func oddBraces() {
        #expect(RemotePaths.substitute("{{shard}", macros: macros) == ("{01", []))
        #expect(RemotePaths.substitute("{shard}}", macros: macros) == ("01}", []))
        #expect(RemotePaths.substitute("x/{shard", macros: macros) == ("x/{shard", []))
        #expect(RemotePaths.substitute("{}", macros: macros) == ("{}", ["{}"]))
        #expect(RemotePaths.substitute("{a}", macros: ["a": "{b}", "b": "x"]) == ("{b}", []))
    }

    @Test("a path without { needs no macros: the server is not asked")
    func noQueryWithoutBrace() async throws {
        var asked = 0
        let plain = try await RemotePaths.resolve(path: "backups/prod", objectDiskPath: "") {
            asked += 1
            return macros
        }
        #expect(asked == 0)
        #expect(plain.path == "backups/prod" && plain.macros == nil && plain.warning == nil)
        let resolved = try await RemotePaths.resolve(path: "backup/{shard}", objectDiskPath: "od/{cluster}/{x}") {
            asked += 1
            return macros
        }
        #expect(asked == 1, "one query serves both paths")
        #expect(resolved.path == "backup/01" && resolved.objectDiskPath == "od/testbed/{x}")
        #expect(resolved.configuredPath == "backup/{shard}" && resolved.unresolved == ["{x}"])
        let warning = try #require(resolved.warning)
        #expect(warning.contains("{x}") && warning.contains("{cluster}, {replica}, {shard}, {version}"))
    }

    @Test("keys are joined as Go's path.Join joins them")
    func normalizedPrefix() {
        #expect(RemoteBackupStore.normalizedPrefix("") == "")
        #expect(RemoteBackupStore.normalizedPrefix("/a/b/") == "a/b/")
        #expect(RemoteBackupStore.normalizedPrefix("a//b/./c/../d") == "a/b/d/")
        #expect(RemoteBackupStore.normalizedPrefix("backup//01") == "backup/01/", "an empty macro's segment is dropped")
        #expect(RemoteBackupStore.normalizedPrefix("../x") == "../x/")
    }

    /// clickhouse-backup's test/integration/configs/config-s3.yml, as it is (its password unquoted).
    static let configS3 = """
        general:
          remote_storage: s3
          upload_concurrency: 4
          download_concurrency: 4
          # check trim patterns
          skip_tables:
            - " system.*"
            - "INFORMATION_SCHEMA.* "
            - " information_schema.*"
            - "_temporary_and_external_tables.* "
          restore_schema_on_cluster: "{cluster}"
          allow_object_disk_streaming: true
        clickhouse:
          disk_mapping:
            default-gp3: /var/lib/clickhouse
          host: clickhouse
          port: 9440
          username: backup
          password: meow=& 123?*%# МЯУ
          secure: true
          skip_verify: true
          sync_replicated_tables: true
          restart_command: "sql:SYSTEM RELOAD USERS; sql:SYSTEM RELOAD CONFIG; exec:ls -la /var/lib/clickhouse/access; sql:SYSTEM SHUTDOWN"
          backup_mutations: true
          timeout: 10m
        s3:
          access_key: access_key
          secret_key: it_is_my_super_secret_key
          bucket: clickhouse
          endpoint: https://minio:9000
          disable_ssl: false
          disable_cert_verification: true
          acl: private
          force_path_style: true
          path: backup/{cluster}/{shard}/{version}
          object_disk_path: object_disk/{cluster}/{shard}/{version}
          compression_format: tar
          allow_multipart_download: true
          concurrency: 3
          request_payer: requester
          object_labels:
            label: label_value
        api:
          listen: :7171
          create_integration_tables: true
          integration_tables_host: "clickhouse-backup"
          allow_parallel: true
        """

    @Test("clickhouse-backup's config-s3.yml reads as clickhouse-backup reads it; config show masks its secrets")
    func readsConfigS3() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path("config-s3.yml")
        try Self.configS3.write(toFile: path, atomically: true, encoding: .utf8)
        let config = try ConfigLoader.load(explicitPath: path, environment: [:])
        #expect(config.clickhouse.password == "meow=& 123?*%# МЯУ")
        #expect(config.s3.path == "backup/{cluster}/{shard}/{version}")
        #expect(config.s3.objectDiskPath == "object_disk/{cluster}/{shard}/{version}")
        // skip_tables under general is not a key clickhouse-backup reads (it reads clickhouse.skip_tables).
        #expect(config.clickhouse.skipTables == InplaceConfig.ClickHouse.defaultSkipTables)
        let shown = config.renderYAML()
        #expect(!shown.contains("meow") && !shown.contains("it_is_my_super_secret_key"))
        #expect(shown.contains("path: \"backup/{cluster}/{shard}/{version}\"   # effective: unknown: the server was not asked"))
    }

    @Test("paths are trimmed of / and whitespace, skip_tables patterns of whitespace, as clickhouse-backup trims them")
    func trims() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path("c.yml")
        try """
            clickhouse:
              skip_tables: [" db1.* ", "\\tdb2.t\\n", "  "]
            s3:
              path: " /backup/{shard}/ "
              object_disk_path: "/od/ "
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let config = try ConfigLoader.load(explicitPath: path, environment: [:])
        #expect(config.clickhouse.skipTables == ["db1.*", "db2.t"])
        #expect(config.s3.path == "backup/{shard}" && config.s3.objectDiskPath == "od")
        #expect(TablePattern.skipped(database: "db1", table: "x", skip: config.clickhouse.skipTables))
        let fromEnvironment = try ConfigLoader.load(explicitPath: path, environment: ["S3_PATH": "\t/e/{cluster}/\n"])
        #expect(fromEnvironment.s3.path == "e/{cluster}")
    }
}
