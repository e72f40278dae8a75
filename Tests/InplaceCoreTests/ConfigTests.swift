import Foundation
import Testing

@testable import InplaceCore

@Suite("Configuration in clickhouse-backup's format")
struct ConfigTests {
    private func write(_ text: String) throws -> (TemporaryFolder, String) {
        let folder = try TemporaryFolder()
        let path = folder.path("config.yml")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return (folder, path)
    }

    @Test("a clickhouse-backup config is read; unknown sections and keys are ignored")
    func readsClickHouseBackupConfig() throws {
        let (folder, path) = try write("""
            general:
              remote_storage: s3
              download_concurrency: 6
              upload_concurrency: 2
              restore_in_place: true
              backups_to_keep_remote: 7
            clickhouse:
              host: ch.example
              port: 9000
              http_port: 8443
              username: backup
              password: "p@ss: word"
              timeout: 1h30m
              skip_tables: [system.*, logs.*]
              use_embedded_backup_restore: false
            s3:
              endpoint: http://minio:9000
              bucket: backups
              path: /prod/ch/
              access_key: AK
              secret_key: SK
              force_path_style: true
              compression_format: zstd
            gcs:
              bucket: ignored
            api:
              listen: 0.0.0.0:7171
            """)
        defer { folder.remove() }
        let config = try ConfigLoader.load(explicitPath: path, environment: [:])
        #expect(config.general.remoteStorage == "s3")
        #expect(config.general.downloadConcurrency == 6)
        #expect(config.clickhouse.host == "ch.example")
        #expect(config.clickhouse.httpPort == 8443)
        #expect(config.clickhouse.password == "p@ss: word")
        #expect(config.clickhouse.timeout == .seconds(5400))
        #expect(config.clickhouse.skipTables == ["system.*", "logs.*"])
        #expect(config.s3.bucket == "backups")
        #expect(config.remotePrefix == "prod/ch/")
        #expect(try config.archiveCompression() == .zstd)
        #expect(config.sourceFile == path)
    }

    @Test("environment variables override the file, with clickhouse-backup's names")
    func environmentOverrides() throws {
        let (folder, path) = try write("clickhouse:\n  host: fromfile\n  password: filepw\ns3:\n  bucket: b\n")
        defer { folder.remove() }
        let config = try ConfigLoader.load(explicitPath: path, environment: [
            "CLICKHOUSE_HOST": "fromenv", "CLICKHOUSE_PASSWORD": "envpw", "CLICKHOUSE_HTTP_PORT": "18123",
            "REMOTE_STORAGE": "s3", "S3_BUCKET": "envbucket", "S3_SECRET_KEY": "envsecret",
            "DOWNLOAD_CONCURRENCY": "3", "RESTORE_IN_PLACE": "false", "CLICKHOUSE_SKIP_TABLES": "a.*, b.c",
        ])
        #expect(config.clickhouse.host == "fromenv")
        #expect(config.clickhouse.password == "envpw")
        #expect(config.clickhouse.httpPort == 18123)
        #expect(config.general.remoteStorage == "s3")
        #expect(config.s3.bucket == "envbucket")
        #expect(config.s3.secretKey == "envsecret")
        #expect(config.general.downloadConcurrency == 3)
        #expect(config.general.restoreInPlace == false)
        #expect(config.clickhouse.skipTables == ["a.*", "b.c"])
    }

    @Test("disable_environment_override keeps the file's values")
    func environmentOverrideCanBeDisabled() throws {
        let (folder, path) = try write("general:\n  disable_environment_override: true\nclickhouse:\n  host: fromfile\n")
        defer { folder.remove() }
        let config = try ConfigLoader.load(explicitPath: path, environment: ["CLICKHOUSE_HOST": "fromenv"])
        #expect(config.clickhouse.host == "fromfile")
    }

    @Test("CLICKHOUSE_BACKUP_CONFIG names the file when --config is absent; a named file must exist")
    func configPathFromEnvironment() throws {
        let (folder, path) = try write("clickhouse:\n  host: viaenv\n")
        defer { folder.remove() }
        let config = try ConfigLoader.load(environment: ["CLICKHOUSE_BACKUP_CONFIG": path])
        #expect(config.clickhouse.host == "viaenv")
        #expect(throws: ConfigError.self) { try ConfigLoader.load(explicitPath: folder.path("missing.yml"), environment: [:]) }
    }

    struct BadConfig: Sendable, CustomStringConvertible {
        let description: String
        let yaml: String
        let key: String?
        let says: String
    }

    static let badConfigs: [BadConfig] = [
        BadConfig(description: "malformed YAML", yaml: "general: [oops\n", key: nil, says: "not valid YAML"),
        BadConfig(description: "unknown remote storage", yaml: "general:\n  remote_storage: floppy\n",
                  key: "general.remote_storage", says: "'floppy' is unknown remote storage"),
        BadConfig(description: "a storage inplace does not support", yaml: "general:\n  remote_storage: gcs\n",
                  key: "general.remote_storage", says: "does not support"),
        BadConfig(description: "missing bucket", yaml: "general:\n  remote_storage: s3\ns3:\n  region: x\n",
                  key: "s3.bucket", says: "is empty"),
        BadConfig(description: "bad duration", yaml: "clickhouse:\n  timeout: soon\n", key: "clickhouse.timeout",
                  says: "not a duration"),
        BadConfig(description: "bad number", yaml: "general:\n  download_concurrency: many\n",
                  key: "general.download_concurrency", says: "not a whole number"),
        BadConfig(description: "bad compression", yaml: "general:\n  remote_storage: s3\ns3:\n  bucket: b\n  compression_format: rar\n",
                  key: "s3.compression_format", says: "not a compression format"),
        BadConfig(description: "a section that is not a mapping", yaml: "clickhouse: 5\n", key: "clickhouse",
                  says: "must be a mapping"),
    ]

    @Test("bad configuration is refused with an error naming the key", arguments: badConfigs)
    func refusesBadConfig(bad: BadConfig) throws {
        let (folder, path) = try write(bad.yaml)
        defer { folder.remove() }
        do {
            _ = try ConfigLoader.load(explicitPath: path, environment: [:])
            Issue.record("\(bad) was accepted")
        } catch {
            #expect(error.key == bad.key, "\(error)")
            #expect(error.description.contains(bad.says), "\(error)")
            #expect(error.description.contains(path))
        }
    }

    @Test("a YAML error says where the problem is without quoting the line (it may hold a secret)")
    func yamlErrorsHideSecrets() throws {
        let (folder, path) = try write("clickhouse:\n  password: \"Sup3r\\Secret\"\n")
        defer { folder.remove() }
        do {
            _ = try ConfigLoader.load(explicitPath: path, environment: [:])
            Issue.record("a bad escape was accepted")
        } catch {
            #expect(error.description.contains("line 2"), "\(error)")
            #expect(!error.description.contains("Secret"), "\(error)")
        }
    }

    @Test("config show masks the password and the secret key")
    func showMasksSecrets() throws {
        let (folder, path) = try write("clickhouse:\n  password: Hunter2Secret\ns3:\n  secret_key: S3cretKey99\n")
        defer { folder.remove() }
        let shown = try ConfigLoader.load(explicitPath: path, environment: [:]).renderYAML()
        #expect(!shown.contains("Hunter2Secret"))
        #expect(!shown.contains("S3cretKey99"))
        #expect(shown.contains("password: \"******\""))
        #expect(shown.contains("http_port: 8123"))
    }

    @Test("Go durations parse as Go parses them")
    func goDurations() {
        #expect(GoDuration.parse("30m") == .seconds(1800))
        #expect(GoDuration.parse("1h30m") == .seconds(5400))
        #expect(GoDuration.parse("1.5h") == .seconds(5400))
        #expect(GoDuration.parse("500ms") == .milliseconds(500))
        #expect(GoDuration.parse("0") == .zero)
        #expect(GoDuration.parse("5") == nil)
        #expect(GoDuration.parse("5x") == nil)
    }

    @Test("table patterns are comma-separated globs on db.table; skip_tables excludes")
    func tablePatterns() {
        let pattern = TablePattern("db1.*, other.t?")
        #expect(pattern.matches(database: "db1", table: "anything"))
        #expect(pattern.matches(database: "other", table: "t1"))
        #expect(!pattern.matches(database: "other", table: "t10"))
        #expect(!pattern.matches(database: "db2", table: "x"))
        #expect(TablePattern(nil).matches(database: "a", table: "b"))
        #expect(TablePattern.skipped(database: "system", table: "parts", skip: []))
        #expect(TablePattern.skipped(database: "logs", table: "x", skip: ["logs.*"]))
        #expect(!TablePattern.skipped(database: "db", table: "x", skip: ["logs.*"]))
    }

    @Test("part names parse; anything that cannot be a part folder is refused")
    func partNames() throws {
        let part = try #require(PartName("202401_1_5_2"))
        #expect(part.partitionID == "202401" && part.minBlock == 1 && part.maxBlock == 5 && part.level == 2)
        #expect(PartName("all_3_3_0_7")?.dataVersion == 7)
        #expect(PartName("a1b2_c3_10_12_1")?.partitionID == "a1b2_c3")
        for bad in ["../x_1_1_0", "all_1_1_0/..", "all_1_1", "", "a b_1_1_0", "all_2_1_0", "x;drop_1_1_0", ".._1_1_0"] {
            #expect(PartName(bad) == nil, "\(bad)")
        }
        #expect(try #require(PartName("202401_2_2_0")) < #require(PartName("202401_10_10_0")))
    }
}
