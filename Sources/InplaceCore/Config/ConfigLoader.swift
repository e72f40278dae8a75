import Foundation
import Yams

/// Reads the configuration the way clickhouse-backup does.
///
/// 1. The file: `--config FILE`, else `$CLICKHOUSE_BACKUP_CONFIG`, else
///    `/etc/clickhouse-backup/config.yml`. A named file must exist; the default one may be absent
///    (then defaults and the environment alone apply).
/// 2. Defaults, then the file's values on top. Unknown sections and keys are ignored.
/// 3. Environment variables override the file, unless `general.disable_environment_override`.
/// 4. Validation: every error names its key.
public enum ConfigLoader {
    public static let defaultPath = "/etc/clickhouse-backup/config.yml"

    public static func load(
        explicitPath: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigError) -> InplaceConfig {
        let named = explicitPath ?? environment["CLICKHOUSE_BACKUP_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        let path = named ?? defaultPath
        var config = InplaceConfig()
        var fileValues: [String: [String: Any]] = [:]
        if FileManager.default.fileExists(atPath: path) {
            fileValues = try readYAML(path)
            config.sourceFile = path
        } else if let named {
            throw ConfigError(key: nil, message: "config file \(named) does not exist; check --config or CLICKHOUSE_BACKUP_CONFIG")
        }
        var reader = Reader(file: config.sourceFile, fileValues: fileValues, environment: environment)
        reader.useEnvironment = !((try reader.bool("general", "disable_environment_override", env: false)) ?? false)
        try apply(&config, reader)
        // Go reads these whatever clickhouse-backup's settings say; so does inplace.
        config.sslCertFile = environment["SSL_CERT_FILE"].flatMap { $0.isEmpty ? nil : $0 }
        config.sslCertDir = environment["SSL_CERT_DIR"].flatMap { $0.isEmpty ? nil : $0 }
        try validate(config)
        return config
    }

    private static func readYAML(_ path: String) throws(ConfigError) -> [String: [String: Any]] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError(key: nil, message: "cannot read \(path): \(error.localizedDescription)")
        }
        let document: Any?
        do {
            document = try Yams.load(yaml: text)
        } catch {
            throw ConfigError(key: nil, message: "not valid YAML: \(describe(error))", file: path)
        }
        guard let document else { return [:] }
        guard let root = document as? [String: Any] else {
            throw ConfigError(key: nil, message: "the top level must be a mapping of sections (general, clickhouse, s3)",
                              file: path)
        }
        var sections: [String: [String: Any]] = [:]
        for (name, value) in root {
            if value is NSNull { continue }
            guard let section = value as? [String: Any] else {
                // Only the sections inplace reads must be mappings; others are ignored.
                if ["general", "clickhouse", "s3"].contains(name) {
                    throw ConfigError(key: name, message: "must be a mapping of keys", file: path)
                }
                continue
            }
            sections[name] = section
        }
        return sections
    }

    /// Where and what the YAML problem is, without the offending line: Yams quotes the source
    /// line in its errors, and that line may hold a password or a secret key.
    static func describe(_ error: any Error) -> String {
        func place(_ mark: Mark) -> String { "line \(mark.line), column \(mark.column)" }
        switch error as? YamlError {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            return "\(problem) at \(place(mark))" + (context.map { " (\($0.text))" } ?? "")
        case .reader(let problem, let offset, _, _):
            return problem + (offset.map { " at byte \($0)" } ?? "")
        default:
            return "the file could not be parsed"
        }
    }

    private static func apply(_ config: inout InplaceConfig, _ r: Reader) throws(ConfigError) {
        if let v = try r.string("general", "remote_storage") { config.general.remoteStorage = v }
        if let v = try r.bool("general", "restore_in_place") { config.general.restoreInPlace = v }
        if let v = try r.int("general", "download_concurrency", range: 1...255) { config.general.downloadConcurrency = v }
        if let v = try r.int("general", "upload_concurrency", range: 1...255) { config.general.uploadConcurrency = v }
        if let v = try r.bool("general", "upload_by_part") { config.general.uploadByPart = v }
        if let v = try r.string("general", "log_level") { config.general.logLevel = v }
        if let v = try r.int("general", "retries_on_failure", range: 0...100) { config.general.retriesOnFailure = v }
        if let v = try r.duration("general", "retries_pause") { config.general.retriesPause = v }
        if let v = try r.map("general", "restore_database_mapping") { config.general.restoreDatabaseMapping = v }
        if let v = try r.map("general", "restore_table_mapping") { config.general.restoreTableMapping = v }

        if let v = try r.string("clickhouse", "host") { config.clickhouse.host = v }
        if let v = try r.int("clickhouse", "port", range: 0...65535) { config.clickhouse.port = v }
        if let v = try r.string("clickhouse", "username") { config.clickhouse.username = v }
        if let v = try r.string("clickhouse", "password") { config.clickhouse.password = v }
        if let v = try r.bool("clickhouse", "secure") { config.clickhouse.secure = v }
        // ClickHouse's https_port is 8443 by convention, as http_port is 8123.
        config.clickhouse.httpPort = try r.int("clickhouse", "http_port", range: 1...65535)
            ?? (config.clickhouse.secure ? 8443 : 8123)
        if let v = try r.bool("clickhouse", "skip_verify") { config.clickhouse.skipVerify = v }
        if let v = try r.string("clickhouse", "tls_ca") { config.clickhouse.tlsCA = v }
        if let v = try r.string("clickhouse", "tls_cert") { config.clickhouse.tlsCert = v }
        if let v = try r.string("clickhouse", "tls_key") { config.clickhouse.tlsKey = v }
        if let v = try r.duration("clickhouse", "timeout") { config.clickhouse.timeout = v }
        if let v = try r.list("clickhouse", "skip_tables") { config.clickhouse.skipTables = v }

        if let v = try r.string("s3", "endpoint") { config.s3.endpoint = v }
        if let v = try r.string("s3", "region") { config.s3.region = v }
        if let v = try r.string("s3", "bucket") { config.s3.bucket = v }
        // Trimmed as clickhouse-backup trims them when it loads its config.
        let pathTrim = CharacterSet(charactersIn: "/ \t\r\n")
        if let v = try r.string("s3", "path") { config.s3.path = v.trimmingCharacters(in: pathTrim) }
        if let v = try r.string("s3", "object_disk_path") { config.s3.objectDiskPath = v.trimmingCharacters(in: pathTrim) }
        if let v = try r.string("s3", "access_key") { config.s3.accessKey = v }
        if let v = try r.string("s3", "secret_key") { config.s3.secretKey = v }
        if let v = try r.bool("s3", "force_path_style") { config.s3.forcePathStyle = v }
        if let v = try r.bool("s3", "disable_ssl") { config.s3.disableSSL = v }
        if let v = try r.bool("s3", "disable_cert_verification") { config.s3.disableCertVerification = v }
        if let v = try r.string("s3", "compression_format") { config.s3.compressionFormat = v }
        if let v = try r.int("s3", "compression_level", range: -10...22) { config.s3.compressionLevel = v }
    }

    private static func validate(_ config: InplaceConfig) throws(ConfigError) {
        let storage = config.general.remoteStorage.lowercased()
        switch storage {
        case "s3":
            _ = try config.s3Config()
            _ = try config.archiveCompression()
        case "none", "":
            break
        case "gcs", "cos", "ftp", "sftp", "azblob", "custom":
            throw ConfigError(key: "general.remote_storage",
                              message: "'\(config.general.remoteStorage)' is a clickhouse-backup storage inplace does not support yet; use s3 or none",
                              file: config.sourceFile)
        default:
            throw ConfigError(key: "general.remote_storage",
                              message: "'\(config.general.remoteStorage)' is unknown remote storage; use s3 or none",
                              file: config.sourceFile)
        }
        if config.clickhouse.host.isEmpty {
            throw ConfigError(key: "clickhouse.host", message: "is empty", file: config.sourceFile)
        }
        if config.clickhouse.secure { try validateTLSFiles(config) }
    }

    /// The TLS files clickhouse-backup would load: each readable, a certificate with its key.
    private static func validateTLSFiles(_ config: InplaceConfig) throws(ConfigError) {
        let ch = config.clickhouse
        if ch.tlsCert.isEmpty != ch.tlsKey.isEmpty {
            let (given, missing) = ch.tlsCert.isEmpty ? ("tls_key", "tls_cert") : ("tls_cert", "tls_key")
            throw ConfigError(key: "clickhouse.\(missing)",
                              message: "is empty while clickhouse.\(given) is set; a client certificate needs both files (or CLICKHOUSE_\(missing.uppercased()))",
                              file: config.sourceFile)
        }
        for (key, path) in [("tls_ca", ch.tlsCA), ("tls_cert", ch.tlsCert), ("tls_key", ch.tlsKey)] where !path.isEmpty {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), !isFolder.boolValue else {
                throw ConfigError(key: "clickhouse.\(key)", message: "\(path) is not a file; give the path of a PEM file (or CLICKHOUSE_\(key.uppercased()))",
                                  file: config.sourceFile)
            }
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw ConfigError(key: "clickhouse.\(key)", message: "\(path) cannot be read by this user", file: config.sourceFile)
            }
        }
    }

    /// Typed access to one key, from the environment (when set) or the file.
    struct Reader {
        let file: String?
        let fileValues: [String: [String: Any]]
        let environment: [String: String]
        var useEnvironment = true

        static func environmentName(_ section: String, _ key: String) -> String {
            switch section {
            case "general": key.uppercased()
            default: section.uppercased() + "_" + key.uppercased()
            }
        }

        /// (raw value, where it came from) or nil when neither sets it.
        private func raw(_ section: String, _ key: String, env: Bool = true) -> (Any, String)? {
            let name = Self.environmentName(section, key)
            if env && useEnvironment, let value = environment[name] { return (value, "environment variable \(name)") }
            if let value = fileValues[section]?[key], !(value is NSNull) { return (value, "\(section).\(key)") }
            return nil
        }

        private func fail(_ origin: String, _ message: String) -> ConfigError {
            ConfigError(key: origin, message: message, file: origin.hasPrefix("environment") ? nil : file)
        }

        func string(_ section: String, _ key: String) throws(ConfigError) -> String? {
            guard let (value, origin) = raw(section, key) else { return nil }
            switch value {
            case let text as String: return text
            case let number as Int: return String(number)
            case let number as Double: return String(number)
            case let flag as Bool: return flag ? "true" : "false"
            default: throw fail(origin, "must be a single value, not a list or mapping")
            }
        }

        func bool(_ section: String, _ key: String, env: Bool = true) throws(ConfigError) -> Bool? {
            guard let (value, origin) = raw(section, key, env: env) else { return nil }
            if let flag = value as? Bool { return flag }
            switch "\(value)".lowercased() {
            case "true", "1", "yes", "on": return true
            case "false", "0", "no", "off", "": return false
            default: throw fail(origin, "'\(value)' is not true or false")
            }
        }

        func int(_ section: String, _ key: String, range: ClosedRange<Int>) throws(ConfigError) -> Int? {
            guard let (value, origin) = raw(section, key) else { return nil }
            guard let number = (value as? Int) ?? Int("\(value)".trimmingCharacters(in: .whitespaces)) else {
                throw fail(origin, "'\(value)' is not a whole number")
            }
            guard range.contains(number) else {
                throw fail(origin, "\(number) is outside \(range.lowerBound)...\(range.upperBound)")
            }
            return number
        }

        func duration(_ section: String, _ key: String) throws(ConfigError) -> Duration? {
            guard let (value, origin) = raw(section, key) else { return nil }
            if let seconds = value as? Int { return .seconds(seconds) }
            guard let duration = GoDuration.parse("\(value)") else {
                throw fail(origin, "'\(value)' is not a duration such as 30m, 1h30m or 90s")
            }
            return duration
        }

        /// A YAML mapping, or `key:value,key:value` (the environment's form, as envconfig reads it).
        func map(_ section: String, _ key: String) throws(ConfigError) -> [String: String]? {
            guard let (value, origin) = raw(section, key) else { return nil }
            if let items = value as? [String: Any] { return items.mapValues { "\($0)" } }
            guard let text = value as? String else { throw fail(origin, "must be a mapping of source: destination") }
            let (rules, bad) = TableMapping.rules(text)
            if let bad { throw fail(origin, "'\(bad)' is not source:destination") }
            return Dictionary(rules, uniquingKeysWith: { _, later in later })
        }

        /// A YAML list, or a comma-separated string (the environment's form).
        func list(_ section: String, _ key: String) throws(ConfigError) -> [String]? {
            guard let (value, origin) = raw(section, key) else { return nil }
            // Items trimmed of whitespace, as clickhouse-backup trims skip_tables patterns.
            if let items = value as? [Any] {
                return items.map { "\($0)".trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
            }
            if let text = value as? String {
                return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
                    .filter { !$0.isEmpty }
            }
            throw fail(origin, "must be a list")
        }
    }
}
