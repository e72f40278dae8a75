import Foundation
import InplaceCore

/// Certificates made with openssl for one test: a CA, a server certificate for 127.0.0.1 and
/// localhost, one for another name only (other.example), and a client certificate, all signed by
/// the CA; plus a second CA that signed nothing here.
struct TestCertificates {
    let folder: TemporaryFolder
    var ca: String { folder.path("ca.pem") }
    var otherCA: String { folder.path("other-ca.pem") }
    var server: (cert: String, key: String) { (folder.path("server.pem"), folder.path("server.key")) }
    var wrongName: (cert: String, key: String) { (folder.path("wrong.pem"), folder.path("wrong.key")) }
    var client: (cert: String, key: String) { (folder.path("client.pem"), folder.path("client.key")) }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    init() throws {
        folder = try TemporaryFolder()
        let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        for (name, subject) in [("ca", "inplace test CA"), ("other-ca", "another CA")] {
            try openssl(["req", "-x509"] + key + ["-keyout", "\(name).key", "-out", "\(name).pem", "-days", "2",
                                                "-subj", "/CN=\(subject)"])
        }
        for (name, subject, names) in [
            ("server", "127.0.0.1", "IP:127.0.0.1,DNS:localhost"), ("wrong", "other.example", "DNS:other.example"),
            ("client", "inplace-client", "DNS:inplace-client"),
        ] {
            try "subjectAltName=\(names)\n".write(toFile: folder.path("\(name).ext"), atomically: true, encoding: .utf8)
            try openssl(["req"] + key + ["-keyout", "\(name).key", "-out", "\(name).csr", "-subj", "/CN=\(subject)"])
            try openssl(["x509", "-req", "-in", "\(name).csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                         "-out", "\(name).pem", "-days", "2", "-extfile", "\(name).ext"])
        }
    }

    private func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl"] + arguments
        process.currentDirectoryURL = folder.url
        let result = try CLI.runToEnd(process)
        guard result.status == 0 else {
            throw Failure(description: "openssl \(arguments.joined(separator: " ")) failed: \(result.stderr)")
        }
    }

    func remove() { folder.remove() }
}

/// tools/tlsproxy.py: a real TLS endpoint (Python's ssl, OpenSSL) in front of a plain test-bed
/// port, since the test bed's ClickHouse and S3 speak plain HTTP only. It ends when the test
/// calls `stop()`, or when the test process ends (its standard input closes).
final class TLSProxy: Sendable {
    let process: Process
    let port: Int

    /// Terminates TLS with `certificate` and relays to `upstream` (`http://host:port` or
    /// `host:port`); with `clientCA` it requires a client certificate signed by that CA.
    init(upstream: String, certificate: (cert: String, key: String), clientCA: String? = nil) throws {
        let hostPort = upstream.components(separatedBy: "://").last ?? upstream
        var arguments = ["--upstream", hostPort, "--cert", certificate.cert, "--key", certificate.key,
                         "--exit-on-stdin-eof"]
        if let clientCA { arguments += ["--client-ca", clientCA] }
        struct Started: Decodable { let port: Int }
        let (process, started) = try ToolProcess.start("tools/tlsproxy.py", arguments, answer: Started.self)
        self.process = process
        port = started.port
    }

    deinit { stop() }

    func stop() { ToolProcess.kill(process) }
}
