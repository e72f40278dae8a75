import Foundation
import Testing

@testable import InplaceCore

/// TLS against real TLS: certificates made by openssl in each test, and tools/tlsproxy.py
/// (Python's ssl, so OpenSSL) terminating TLS in front of the test bed's ClickHouse HTTP port and
/// its S3 port, which speak plain HTTP only. The proxy is the one stand-in: the TLS, the
/// certificates, ClickHouse and S3 behind it are real.
@Suite("TLS to ClickHouse and S3", .enabled(if: TestBed.shouldRun))
struct TLSTests {
    /// The test bed's ClickHouse endpoint, reached through `proxy` over https with `tls`.
    private func clickHouse(_ bed: TestBed, _ proxy: TLSProxy, _ tls: TLSOptions, host: String = "127.0.0.1")
        throws -> ClickHouseClient
    {
        var endpoint = try bed.clickHouseEndpoint()
        endpoint.host = host
        endpoint.port = proxy.port
        endpoint.secure = true
        endpoint.tls = tls
        return ClickHouseClient(endpoint: endpoint)
    }

    private func clickHouseUpstream(_ bed: TestBed) throws -> String {
        "\(try bed.value("CLICKHOUSE_HOST")):\(try bed.value("CLICKHOUSE_HTTP_PORT"))"
    }

    /// `host:port` of the test bed's S3.
    private func s3Upstream(_ bed: TestBed) throws -> String {
        try bed.value("S3_ENDPOINT").components(separatedBy: "://").last ?? ""
    }

    private func s3(_ bed: TestBed, _ proxy: TLSProxy, _ tls: TLSOptions) throws -> S3Client {
        var config = try bed.s3Config()
        config.endpoint = "https://127.0.0.1:\(proxy.port)"
        config.tls = tls
        return S3Client(config: config)
    }

    private func prepare() throws -> (TestBed, TestCertificates) {
        (try TestBed.load(), try TestCertificates())
    }

    /// Runs `body` with a TLS proxy before the test bed's ClickHouse, presenting `certificate`
    /// (and with `clientCA`, requiring a client certificate signed by the test CA).
    private func withClickHouseProxy(
        _ certificate: KeyPath<TestCertificates, (cert: String, key: String)>, clientCA: Bool = false,
        _ body: (TestBed, TestCertificates, TLSProxy) async throws -> Void
    ) async throws {
        let (bed, certificates) = try prepare()
        defer { certificates.remove() }
        let proxy = try TLSProxy(upstream: try clickHouseUpstream(bed), certificate: certificates[keyPath: certificate],
                                 clientCA: clientCA ? certificates.ca : nil)
        defer { proxy.stop() }
        try await body(bed, certificates, proxy)
    }

    /// Expects `error`'s description to hold each of `parts`.
    private func expect(_ error: (any Error)?, mentions parts: String..., sourceLocation: SourceLocation = #_sourceLocation) {
        let text = error.map { "\($0)" } ?? ""
        for part in parts { #expect(text.contains(part), "\(part) in: \(text)", sourceLocation: sourceLocation) }
    }

    /// The error `body` throws, or a recorded issue when it throws none.
    private func failure<E: Error>(_ type: E.Type, _ body: () async throws -> Void) async -> E? {
        do {
            try await body()
            Issue.record("no error")
        } catch let error as E {
            return error
        } catch {
            Issue.record("unexpected error: \(error)")
        }
        return nil
    }

    @Test("ClickHouse over TLS with the CA in tls_ca answers queries, and a table reads the same as over plain HTTP")
    func clickHouseWithCA() async throws {
        try await withClickHouseProxy(\.server) { bed, certificates, proxy in
            let plain = try bed.clickHouse()
            let sample = try await SampleDatabase.make(plain, prefix: "it_tls", tables: ["t"])
            let secure = try clickHouse(bed, proxy, TLSOptions(caFile: certificates.ca, systemCAs: false))
            #expect(secure.endpoint.address == "https://127.0.0.1:\(proxy.port)")
            #expect(try await secure.execute("SELECT 40 + 2").trimmingCharacters(in: .whitespacesAndNewlines) == "42")
            let overTLS = try #require(try await TableContents.of(secure, sample.name, "t"))
            let overPlain = try #require(try await TableContents.of(plain, sample.name, "t"))
            #expect(overTLS == overPlain)
            #expect(overTLS.partitions.split(separator: ";").count == 2)
            // The host name localhost is in the certificate too.
            let byName = try clickHouse(bed, proxy, TLSOptions(caFile: certificates.ca, systemCAs: false), host: "localhost")
            #expect(try await byName.execute("SELECT 1").hasPrefix("1"))
            await sample.drop()
        }
    }

    @Test("ClickHouse over TLS without the CA: an error naming host:port, the unknown authority and the keys to set")
    func clickHouseUnknownAuthority() async throws {
        try await withClickHouseProxy(\.server) { bed, certificates, proxy in
            for tls in [TLSOptions(), TLSOptions(caFile: certificates.otherCA, systemCAs: false)] {
                let client = try clickHouse(bed, proxy, tls)
                let error = await failure(ClickHouseError.self) { _ = try await client.execute("SELECT 1") }
                #expect(error?.kind == .transport(.tls(.untrusted("certificate signed by an unknown authority"))))
                #expect(error?.isRetryable == false)
                expect(error, mentions: "127.0.0.1:\(proxy.port)", "certificate signed by an unknown authority",
                       "clickhouse.tls_ca (CLICKHOUSE_TLS_CA)", "clickhouse.skip_verify")
                #expect(error.map { "\($0)".contains(bed.clickHousePassword) } == false)
            }
        }
    }

    @Test("skip_verify connects to a certificate of an unknown CA and of another host name")
    func clickHouseSkipVerify() async throws {
        try await withClickHouseProxy(\.wrongName) { bed, certificates, proxy in
            let client = try clickHouse(bed, proxy, TLSOptions(verify: false))
            #expect(try await client.execute("SELECT 'over tls'").hasPrefix("over tls"))
        }
    }

    @Test("a certificate for another host name fails the host-name check, naming the names it holds")
    func clickHouseWrongHostName() async throws {
        try await withClickHouseProxy(\.wrongName) { bed, certificates, proxy in
            let client = try clickHouse(bed, proxy, TLSOptions(caFile: certificates.ca, systemCAs: false))
            let error = await failure(ClickHouseError.self) { try await client.ping() }
            #expect(error?.kind == .transport(.tls(.hostName(certificateNames: ["other.example"]))))
            expect(error, mentions: "certificate is for other.example, not 127.0.0.1 (host-name check)",
                   "127.0.0.1:\(proxy.port)", "clickhouse.host")
        }
    }

    @Test("mutual TLS: with tls_cert and tls_key queries work; without them the error names both keys")
    func clickHouseClientCertificate() async throws {
        try await withClickHouseProxy(\.server, clientCA: true) { bed, certificates, proxy in
            var tls = TLSOptions(caFile: certificates.ca, systemCAs: false)
            let anonymous = try clickHouse(bed, proxy, tls)
            let error = await failure(ClickHouseError.self) { _ = try await anonymous.execute("SELECT 1") }
            // TLS 1.3 refuses a missing client certificate after the handshake: the alert
            // (clientCertificateRequired) or, when the reset comes first, a connection with no answer.
            expect(error, mentions: "clickhouse.tls_cert", "clickhouse.tls_key", "client certificate")

            tls.clientCertificate = certificates.client.cert
            tls.clientKey = certificates.client.key
            let authenticated = try clickHouse(bed, proxy, tls)
            #expect(try await authenticated.execute("SELECT 7").hasPrefix("7"))

            tls.clientCertificate = certificates.folder.path("missing.pem")
            let broken = try clickHouse(bed, proxy, tls)
            let local = await failure(ClickHouseError.self) { _ = try await broken.execute("SELECT 1") }
            #expect(local?.kind == .transport(.tls(.clientCertificate)))
            expect(local, mentions: "Check clickhouse.tls_cert and clickhouse.tls_key")
        }
    }

    @Test("https to a plain HTTP port, and http to a TLS port, each say which setting is wrong")
    func clickHouseSchemeMismatch() async throws {
        let (bed, certificates) = try prepare()
        defer { certificates.remove() }
        var endpoint = try bed.clickHouseEndpoint()
        endpoint.secure = true
        let error = await failure(ClickHouseError.self) { try await ClickHouseClient(endpoint: endpoint).ping() }
        #expect(error?.kind == .transport(.tls(.notTLS)))
        expect(error, mentions: "clickhouse.secure: false (CLICKHOUSE_SECURE)")

        let proxy = try TLSProxy(upstream: try clickHouseUpstream(bed), certificate: certificates.server)
        defer { proxy.stop() }
        var plain = try bed.clickHouseEndpoint()
        plain.port = proxy.port
        let reverse = await failure(ClickHouseError.self) { try await ClickHouseClient(endpoint: plain).ping() }
        expect(reverse, mentions: "set clickhouse.secure: true (CLICKHOUSE_SECURE)")
    }

    @Test("S3 over TLS: listing and reading with the CA trusted or verification off; unknown CA and wrong name refused")
    func s3OverTLS() async throws {
        let (bed, certificates) = try prepare()
        defer { certificates.remove() }
        let proxy = try TLSProxy(upstream: try s3Upstream(bed), certificate: certificates.server)
        defer { proxy.stop() }
        let wrongProxy = try TLSProxy(upstream: try s3Upstream(bed), certificate: certificates.wrongName)
        defer { wrongProxy.stop() }
        let prefix = "it/\(TestBed.uniqueName("tls"))/"
        let bytes = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try await bed.s3().put(prefix + "object", bytes: bytes)

        for tls in [TLSOptions(caFile: certificates.ca), TLSOptions(verify: false)] {
            let client = try s3(bed, proxy, tls)
            let listed = try await client.listAll(prefix: prefix).objects
            #expect(listed.map(\.key) == [prefix + "object"])
            #expect(try await client.getBytes(prefix + "object") == bytes)
        }
        let untrusted = await failure(S3Error.self) { _ = try await self.s3(bed, proxy, TLSOptions()).listAll(prefix: prefix) }
        #expect(untrusted?.kind == .transport(.tls(.untrusted("certificate signed by an unknown authority"))))
        #expect(untrusted?.attempts == 1, "a certificate problem is not retried")
        expect(untrusted, mentions: "127.0.0.1:\(proxy.port)", "unknown authority",
               "s3.disable_cert_verification: true (S3_DISABLE_CERT_VERIFICATION)")
        #expect(untrusted.map { "\($0)".contains(bed.s3SecretKey) } == false)

        let wrong = await failure(S3Error.self) {
            _ = try await self.s3(bed, wrongProxy, TLSOptions(caFile: certificates.ca)).listAll(prefix: prefix)
        }
        #expect(wrong?.kind == .transport(.tls(.hostName(certificateNames: ["other.example"]))))
        expect(wrong, mentions: "certificate is for other.example, not 127.0.0.1")
        #expect(try await s3(bed, wrongProxy, TLSOptions(verify: false)).getBytes(prefix + "object") == bytes)
        try await bed.s3().delete(prefix + "object")
    }

    @Test("the binary over TLS to both: create, upload, restore from remote with clickhouse.secure, tls_ca and SSL_CERT_FILE; env overrides")
    func binaryEndToEnd() async throws {
        let (bed, certificates) = try prepare()
        let folder = try TemporaryFolder()
        defer { certificates.remove(); folder.remove() }
        let chProxy = try TLSProxy(upstream: try clickHouseUpstream(bed), certificate: certificates.server)
        defer { chProxy.stop() }
        let s3Proxy = try TLSProxy(upstream: try s3Upstream(bed), certificate: certificates.server)
        defer { s3Proxy.stop() }
        let plain = try bed.clickHouse()
        let sample = try await SampleDatabase.make(plain, prefix: "it_tls_cli", tables: ["t"])
        let before = try #require(try await TableContents.of(plain, sample.name, "t"))
        let name = TestBed.uniqueName("tls")
        func quoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "''") + "'" }
        let config = folder.path("config.yml")
        try """
            general:
              remote_storage: s3
            clickhouse:
              host: 127.0.0.1
              http_port: \(chProxy.port)
              username: \(quoted(try bed.value("CLICKHOUSE_USERNAME")))
              password: \(quoted(bed.clickHousePassword))
              secure: true
              tls_ca: \(quoted(certificates.ca))
            s3:
              endpoint: 127.0.0.1:\(s3Proxy.port)
              bucket: \(quoted(try bed.value("S3_BUCKET")))
              path: it/\(name)
              access_key: \(quoted(try bed.value("S3_ACCESS_KEY")))
              secret_key: \(quoted(bed.s3SecretKey))
              force_path_style: true
              disable_ssl: false
              disable_cert_verification: false
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let trusted = ["SSL_CERT_FILE": certificates.ca]
        var outputs: [String] = []
        func run(_ arguments: [String], _ environment: [String: String] = trusted) async throws -> CLI.Result {
            let result = try await CLI.run(arguments + ["--config", config], environment: environment)
            outputs.append(result.all)
            return result
        }

        let shown = try await run(["config", "show"])
        for line in ["secure: true", "http_port: \(chProxy.port)", "tls_ca: \"\(certificates.ca)\"",
                     "disable_cert_verification: false", "# SSL_CERT_FILE=\(certificates.ca)"] {
            #expect(shown.stdout.contains(line), "\(line) in \(shown.stdout)")
        }
        let created = try await run(["create", "--tables", "\(sample.name).*", name])
        #expect(created.status == 0, "\(created.stderr)")
        let uploaded = try await run(["upload", name])
        #expect(uploaded.status == 0, "\(uploaded.stderr)")

        // The live table loses a partition and gains rows; the restore from S3 puts it back.
        let layout = try await ClickHouseCatalog(client: plain).disks()
        let local = (layout.first { $0.name == "default" }?.path ?? "/nonexistent/") + "backup/" + name
        try FileManager.default.removeItem(atPath: local)
        try await plain.execute("ALTER TABLE \(sample.name).t DROP PARTITION 202401")
        try await sample.insert("t", month: "2024-03", rows: 10, seed: 9)
        #expect(try await TableContents.of(plain, sample.name, "t") != before)
        let restored = try await run(["restore", "--from", "remote", "--journal", folder.path("j.sqlite"), name])
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(try await TableContents.of(plain, sample.name, "t") == before)

        // Environment variables with clickhouse-backup's names override the file.
        let untrusted = try await run(["list", "remote"], [:])
        #expect(untrusted.status == 6, "\(untrusted.all)")
        #expect(untrusted.stderr.contains("127.0.0.1:\(s3Proxy.port)") && untrusted.stderr.contains("unknown authority"))
        #expect(untrusted.stderr.contains("S3_DISABLE_CERT_VERIFICATION"))
        let unchecked = try await run(["list", "remote"], ["S3_DISABLE_CERT_VERIFICATION": "true"])
        #expect(unchecked.status == 0 && unchecked.stdout.contains(name), "\(unchecked.all)")
        let otherCA = try await run(["list", "local"], ["CLICKHOUSE_TLS_CA": certificates.otherCA])
        #expect(otherCA.status == 4, "\(otherCA.all)")
        #expect(otherCA.stderr.contains("127.0.0.1:\(chProxy.port)") && otherCA.stderr.contains("CLICKHOUSE_TLS_CA"))
        let skipped = try await run(["list", "local"], ["CLICKHOUSE_TLS_CA": certificates.otherCA, "CLICKHOUSE_SKIP_VERIFY": "1"])
        #expect(skipped.status == 0, "\(skipped.all)")
        let missing = try await run(["list", "local"], ["CLICKHOUSE_TLS_CA": folder.path("nope.pem")])
        #expect(missing.status == 3 && missing.stderr.contains("clickhouse.tls_ca"), "\(missing.all)")

        for output in outputs {
            #expect(!output.contains(bed.clickHousePassword))
            #expect(!output.contains(bed.s3SecretKey))
        }
        let store = try bed.s3()
        for object in try await store.listAll(prefix: "it/\(name)/").objects { try await store.delete(object.key) }
        await sample.drop()
    }
}

@Suite("TLS settings and errors")
struct TLSSettingsTests {
    private func load(_ yaml: String, _ environment: [String: String] = [:]) throws -> InplaceConfig {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        try yaml.write(toFile: folder.path("c.yml"), atomically: true, encoding: .utf8)
        return try ConfigLoader.load(explicitPath: folder.path("c.yml"), environment: environment)
    }

    @Test("clickhouse-backup's TLS keys and environment variables are read; secure alone means port 8443")
    func keysAndEnvironment() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        for file in ["ca.pem", "c.pem", "c.key"] { try "x".write(toFile: folder.path(file), atomically: true, encoding: .utf8) }
        let config = try load("""
            clickhouse:
              secure: true
              skip_verify: true
              tls_ca: \(folder.path("ca.pem"))
              tls_cert: \(folder.path("c.pem"))
              tls_key: \(folder.path("c.key"))
            s3:
              disable_cert_verification: true
              disable_ssl: true
            """)
        #expect(config.clickhouse.httpPort == 8443)
        #expect(config.clickHouseEndpoint.address == "https://localhost:8443")
        #expect(config.clickHouseEndpoint.tls == TLSOptions(verify: false, caFile: folder.path("ca.pem"), systemCAs: false,
                                                            clientCertificate: folder.path("c.pem"), clientKey: folder.path("c.key")))
        #expect(config.s3.disableCertVerification && config.s3.disableSSL)

        let fromEnvironment = try load("clickhouse:\n  http_port: 9999\n", [
            "CLICKHOUSE_SECURE": "true", "CLICKHOUSE_SKIP_VERIFY": "false", "CLICKHOUSE_TLS_CA": folder.path("ca.pem"),
            "S3_DISABLE_CERT_VERIFICATION": "1", "S3_BUCKET": "b", "REMOTE_STORAGE": "s3",
            "SSL_CERT_FILE": folder.path("ca.pem"), "SSL_CERT_DIR": folder.url.path,
        ])
        #expect(fromEnvironment.clickhouse.httpPort == 9999, "an explicit http_port wins over 8443")
        #expect(fromEnvironment.clickHouseEndpoint.tls == TLSOptions(caFile: folder.path("ca.pem"), systemCAs: false))
        let s3 = try fromEnvironment.s3Config()
        #expect(s3.tls == TLSOptions(verify: false, caFile: folder.path("ca.pem"), caDirectory: folder.url.path))

        let plain = try load("clickhouse:\n  tls_ca: /nonexistent/ca.pem\n  tls_cert: /nonexistent/c.pem\n")
        #expect(plain.clickhouse.httpPort == 8123, "without secure the TLS keys are not used, nor checked")
        #expect(plain.renderYAML().contains("tls_ca: \"/nonexistent/ca.pem\"   # not used: clickhouse.secure is false"))
        let trust = try load("", ["SSL_CERT_FILE": "/etc/x.pem"])
        #expect(trust.clickHouseEndpoint.tls == TLSOptions(caFile: "/etc/x.pem"))
    }

    @Test("a TLS file that is missing, or a certificate without its key, is a configuration error naming the key")
    func badFiles() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        try "x".write(toFile: folder.path("c.pem"), atomically: true, encoding: .utf8)
        let cases: [(String, String)] = [
            ("tls_ca: \(folder.path("missing.pem"))", "clickhouse.tls_ca: \(folder.path("missing.pem")) is not a file"),
            ("tls_ca: \(folder.url.path)", "clickhouse.tls_ca: \(folder.url.path) is not a file"),
            ("tls_cert: \(folder.path("c.pem"))", "clickhouse.tls_key: is empty while clickhouse.tls_cert is set"),
            ("tls_key: \(folder.path("c.pem"))", "clickhouse.tls_cert: is empty while clickhouse.tls_key is set"),
        ]
        for (line, message) in cases {
            do {
                _ = try load("clickhouse:\n  secure: true\n  \(line)\n")
                Issue.record("accepted: \(line)")
            } catch {
                #expect("\(error)".contains(message), "\(error)")
            }
        }
    }

    @Test("curl's TLS failures are classified by the check that failed")
    func classification() {
        func classify(_ code: Int32, _ detail: String) -> TLSProblem? {
            TLSFailure.classify(code: code, detail: detail, names: ["a.example"])
        }
        #expect(classify(60, "SSL certificate problem: self-signed certificate") == .untrusted("certificate signed by an unknown authority"))
        #expect(classify(60, "SSL certificate problem: unable to get local issuer certificate") == .untrusted("certificate signed by an unknown authority"))
        #expect(classify(60, "SSL certificate problem: certificate has expired") == .untrusted("the certificate has expired"))
        #expect(classify(60, "SSL: no alternative certificate subject name matches target host name 'x'") == .hostName(certificateNames: ["a.example"]))
        #expect(classify(51, "") == .hostName(certificateNames: ["a.example"]))
        #expect(classify(35, "error:0A00010B:SSL routines::wrong version number") == .notTLS)
        #expect(classify(35, "error:0A00045C:SSL routines::tlsv13 alert certificate required") == .clientCertificateRequired)
        #expect(classify(56, "OpenSSL SSL_read: error:0A00045C:SSL routines::tlsv13 alert certificate required, errno 0") == .clientCertificateRequired)
        #expect(classify(35, "error:0A000418:SSL routines::tlsv1 alert unknown ca") == .clientCertificateRejected)
        #expect(classify(35, "error:0A000410:SSL routines::sslv3 alert handshake failure") == .handshake)
        #expect(classify(58, "could not load PEM client certificate") == .clientCertificate)
        #expect(classify(77, "error setting certificate file: x") == .caFile)
        #expect(classify(56, "Recv failure: Connection reset by peer") == nil)
        #expect(classify(7, "Failed to connect") == nil)
        #expect(TLSFailure.names(fromCertificateInfo: [
            "Subject:CN = other.example", "X509v3 Subject Alternative Name:DNS:other.example, IP Address:10.0.0.1",
        ]) == ["other.example", "10.0.0.1"])
        #expect(TLSFailure.names(fromCertificateInfo: ["Subject:O = x, CN = only.example"]) == ["only.example"])
    }
}
