import Foundation

/// The settings `inplace` uses, read from a clickhouse-backup config file and environment.
///
/// Keys keep clickhouse-backup's names and environment variables (`general.*` as the upper-case
/// key, `clickhouse.*` as `CLICKHOUSE_<KEY>`, `s3.*` as `S3_<KEY>`); keys `inplace` does not use
/// are accepted and ignored. One key is `inplace`'s own: `clickhouse.http_port`
/// (`CLICKHOUSE_HTTP_PORT`, default 8123, or 8443 with `clickhouse.secure`), because `inplace`
/// speaks ClickHouse's HTTP interface while clickhouse-backup's `clickhouse.port` is the native
/// protocol's port.
///
/// TLS follows clickhouse-backup: `clickhouse.tls_ca`, `tls_cert`, `tls_key` and `skip_verify`
/// apply when `clickhouse.secure` is true (a CA file replaces the system's CAs); S3 trusts the
/// system's CAs, or `SSL_CERT_FILE` / `SSL_CERT_DIR` as Go reads them, unless
/// `s3.disable_cert_verification`.
public struct InplaceConfig: Sendable {
    public struct General: Sendable {
        /// `s3` or `none` (`general.remote_storage`).
        public var remoteStorage = "none"
        /// Accepted as in clickhouse-backup's `--restore-in-place`; in-place is `inplace`'s default.
        public var restoreInPlace = true
        public var downloadConcurrency = max(1, ProcessInfo.processInfo.activeProcessorCount / 2)
        public var uploadConcurrency = max(1, Int((Double(ProcessInfo.processInfo.activeProcessorCount) / 2).squareRoot().rounded()))
        public var uploadByPart = true
        public var logLevel = "info"
        public var retriesOnFailure = 3
        public var retriesPause: Duration = .seconds(5)
        /// `restore_database_mapping` (`RESTORE_DATABASE_MAPPING`): restore database `key` as `value`.
        public var restoreDatabaseMapping: [String: String] = [:]
        /// `restore_table_mapping` (`RESTORE_TABLE_MAPPING`): restore table `key` (`db.table` or
        /// `table`) as `value` (`table` or `db.table`).
        public var restoreTableMapping: [String: String] = [:]
    }

    public struct ClickHouse: Sendable {
        public var host = "localhost"
        /// clickhouse-backup's native-protocol port: read and ignored.
        public var port = 9000
        /// The HTTP interface's port `inplace` connects to (8443 by default when `secure`).
        public var httpPort = 8123
        public var username = "default"
        public var password = ""
        public var secure = false
        /// With `secure`: connect without checking the server's certificate.
        public var skipVerify = false
        /// With `secure`: PEM files of the CA to trust (instead of the system's), and of a client
        /// certificate and its key (both or neither).
        public var tlsCA = ""
        public var tlsCert = ""
        public var tlsKey = ""
        public var timeout: Duration = .seconds(30 * 60)
        public var skipTables = ClickHouse.defaultSkipTables
        public static let defaultSkipTables = [
            "system.*", "INFORMATION_SCHEMA.*", "information_schema.*", "_temporary_and_external_tables.*",
        ]
    }

    public struct S3: Sendable {
        public var endpoint = ""
        public var region = "us-east-1"
        public var bucket = ""
        /// Trimmed of `/` and whitespace at both ends; may name macros (`{shard}`: see `RemotePaths`).
        public var path = ""
        /// Where clickhouse-backup puts object-disk data; read, shown, and not used (parts on
        /// object disks are refused).
        public var objectDiskPath = ""
        public var accessKey = ""
        public var secretKey = ""
        public var forcePathStyle = false
        /// Use http:// for an endpoint without a scheme (and for AWS); a scheme in the endpoint wins.
        public var disableSSL = false
        public var disableCertVerification = false
        /// tar, gzip, zstd, lz4, bzip2, xz, or none (folders uploaded as they are).
        public var compressionFormat = "tar"
        public var compressionLevel = 1
    }

    public var general = General()
    public var clickhouse = ClickHouse()
    public var s3 = S3()
    /// The file the settings were read from, or nil when none was found.
    public var sourceFile: String?
    /// `SSL_CERT_FILE` and `SSL_CERT_DIR` from the environment: the trusted CAs instead of the
    /// system's, as Go (so clickhouse-backup) reads them.
    public var sslCertFile: String?
    public var sslCertDir: String?

    public init() {}

    /// The ClickHouse endpoint these settings describe.
    public var clickHouseEndpoint: ClickHouseEndpoint {
        ClickHouseEndpoint(host: clickhouse.host, port: clickhouse.httpPort, secure: clickhouse.secure,
                           username: clickhouse.username, password: clickhouse.password, timeout: clickhouse.timeout,
                           tls: clickHouseTLS)
    }

    /// clickhouse-backup's `NewTLSConfig`: `tls_ca` replaces the system's CAs.
    var clickHouseTLS: TLSOptions {
        let ca = clickhouse.tlsCA.isEmpty ? nil : clickhouse.tlsCA
        return TLSOptions(verify: !clickhouse.skipVerify, caFile: ca ?? sslCertFile, caDirectory: ca == nil ? sslCertDir : nil,
                          systemCAs: ca == nil, clientCertificate: clickhouse.tlsCert.isEmpty ? nil : clickhouse.tlsCert,
                          clientKey: clickhouse.tlsKey.isEmpty ? nil : clickhouse.tlsKey)
    }

    /// The S3 settings, or an error naming what is missing.
    public func s3Config() throws(ConfigError) -> S3Config {
        guard !s3.bucket.isEmpty else {
            throw ConfigError(key: "s3.bucket", message: "is empty; set the bucket that holds the backups (or S3_BUCKET)",
                              file: sourceFile)
        }
        return S3Config(endpoint: s3.endpoint, region: s3.region, bucket: s3.bucket, accessKey: s3.accessKey,
                        secretKey: s3.secretKey, forcePathStyle: s3.forcePathStyle, disableSSL: s3.disableSSL,
                        tls: TLSOptions(verify: !s3.disableCertVerification, caFile: sslCertFile, caDirectory: sslCertDir))
    }

    /// The archive compression for uploads; nil for `none` (folders uploaded as they are).
    public func archiveCompression() throws(ConfigError) -> ArchiveCompression? {
        try Self.compression(named: s3.compressionFormat, file: sourceFile)
    }

    static func compression(named name: String, file: String?) throws(ConfigError) -> ArchiveCompression? {
        switch name.lowercased() {
        case "none", "": return nil
        case "tar": return .tar
        case "gzip": return .gzip
        case "zstd": return .zstd
        case "lz4": return .lz4
        case "bzip2": return .bzip2
        case "xz": return .xz
        case "br", "brotli", "sz":
            throw ConfigError(key: "s3.compression_format",
                              message: "'\(name)' archives can be read but not written by inplace; use tar, gzip, zstd, lz4, bzip2, xz or none",
                              file: file)
        default:
            throw ConfigError(key: "s3.compression_format",
                              message: "'\(name)' is not a compression format; use tar, gzip, zstd, lz4, bzip2, xz or none",
                              file: file)
        }
    }

    /// Remote backups' key prefix (`s3.path` without leading or trailing `/`), empty or ending in `/`.
    public var remotePrefix: String {
        let trimmed = s3.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        return trimmed.isEmpty ? "" : trimmed + "/"
    }
}
