/// What `config show` says of the paths with the server's macros put in.
public enum EffectivePaths: Sendable {
    case resolved(RemotePaths)
    /// The server was asked and did not answer (the error, without secrets).
    case failed(String)
}

extension InplaceConfig {
    /// The effective settings as YAML, with the password and the secret key masked. `s3.path` and
    /// `s3.object_disk_path` are shown as configured, each with its effective value in a comment
    /// (nil `effective`: the server was not asked).
    public func renderYAML(effective: EffectivePaths? = nil) -> String {
        func quoted(_ text: String) -> String {
            "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        func masked(_ secret: String) -> String { secret.isEmpty ? "\"\"" : "\"******\"" }
        func effectiveNote(_ configured: String, _ pick: (RemotePaths) -> String) -> String {
            guard configured.contains("{") else { return "   # effective: the same (no macros)" }
            switch effective {
            case .resolved(let paths):
                let value = pick(paths)
                let left = RemotePaths.substitute(value, macros: [:]).unresolved
                return "   # effective: \(quoted(value)) (system.macros applied"
                    + (left.isEmpty ? ")" : "; \(left.joined(separator: ", ")) not in system.macros, left as written)")
            case .failed(let reason):
                // Said once, on one line (the error may span several).
                guard configured == s3.path else { return "   # effective: unknown (see s3.path)" }
                let line = reason.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                return "   # effective: unknown: the server could not be asked for system.macros: \(line.joined(separator: "; "))"
            case nil:
                return "   # effective: unknown: the server was not asked for system.macros"
            }
        }
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
              path: \(quoted(s3.path))\(effectiveNote(s3.path, \.path))
              object_disk_path: \(quoted(s3.objectDiskPath))\(effectiveNote(s3.objectDiskPath, \.objectDiskPath))
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
