extension InplaceConfig {
    /// The effective settings as YAML, with the password and the secret key masked.
    public func renderYAML() -> String {
        func quoted(_ text: String) -> String {
            "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        func masked(_ secret: String) -> String { secret.isEmpty ? "\"\"" : "\"******\"" }
        let skip = clickhouse.skipTables.map { "    - \(quoted($0))" }.joined(separator: "\n")
        func unused(_ set: Bool) -> String { set && !clickhouse.secure ? "   # not used: clickhouse.secure is false" : "" }
        let trust = [("SSL_CERT_FILE", sslCertFile), ("SSL_CERT_DIR", sslCertDir)].compactMap { name, value in
            value.map { "# \(name)=\($0): trusted CAs for S3, and for ClickHouse without clickhouse.tls_ca\n" }
        }.joined()
        return """
            # effective configuration\(sourceFile.map { " (file: \($0), then environment)" } ?? " (no file; defaults and environment)")
            general:
              remote_storage: \(quoted(general.remoteStorage))
              restore_in_place: \(general.restoreInPlace)
              download_concurrency: \(general.downloadConcurrency)
              upload_concurrency: \(general.uploadConcurrency)
              upload_by_part: \(general.uploadByPart)
              log_level: \(quoted(general.logLevel))
              retries_on_failure: \(general.retriesOnFailure)
              retries_pause: \(GoDuration.format(general.retriesPause))
            clickhouse:
              host: \(quoted(clickhouse.host))
              http_port: \(clickhouse.httpPort)   # inplace's key: ClickHouse's HTTP interface, 8123 or with secure 8443 unless set (clickhouse.port, \(clickhouse.port), is the native port and is not used)
              username: \(quoted(clickhouse.username))
              password: \(masked(clickhouse.password))
              secure: \(clickhouse.secure)
              skip_verify: \(clickhouse.skipVerify)\(unused(clickhouse.skipVerify))
              tls_ca: \(quoted(clickhouse.tlsCA))\(unused(!clickhouse.tlsCA.isEmpty))
              tls_cert: \(quoted(clickhouse.tlsCert))\(unused(!clickhouse.tlsCert.isEmpty))
              tls_key: \(quoted(clickhouse.tlsKey))\(unused(!clickhouse.tlsKey.isEmpty))
              timeout: \(GoDuration.format(clickhouse.timeout))
              skip_tables:
            \(skip.isEmpty ? "    []" : skip)
            s3:
              endpoint: \(quoted(s3.endpoint))
              region: \(quoted(s3.region))
              bucket: \(quoted(s3.bucket))
              path: \(quoted(s3.path))
              access_key: \(quoted(s3.accessKey))
              secret_key: \(masked(s3.secretKey))
              force_path_style: \(s3.forcePathStyle)
              disable_ssl: \(s3.disableSSL)
              disable_cert_verification: \(s3.disableCertVerification)
              compression_format: \(quoted(s3.compressionFormat))
              compression_level: \(s3.compressionLevel)
            \(trust)
            """
    }
}
