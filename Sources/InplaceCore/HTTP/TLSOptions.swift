import Foundation

/// How an `https://` request checks the server and presents itself. Plain `http://` requests
/// ignore it.
public struct TLSOptions: Sendable, Equatable {
    /// Check the server's certificate chain and that it names the host (curl's VERIFYPEER and
    /// VERIFYHOST). False is clickhouse-backup's `clickhouse.skip_verify` and
    /// `s3.disable_cert_verification`.
    public var verify: Bool
    /// A PEM file of trusted CA certificates, instead of the system's bundle file.
    public var caFile: String?
    /// A folder of trusted CA certificates (OpenSSL's hashed layout), instead of the system's.
    public var caDirectory: String?
    /// False: trust only `caFile` and `caDirectory`, not the system's CA folder
    /// (clickhouse-backup's `clickhouse.tls_ca` replaces the system's CAs).
    public var systemCAs: Bool
    /// A client certificate (PEM) and its key, for servers that require mutual TLS.
    public var clientCertificate: String?
    public var clientKey: String?

    public init(verify: Bool = true, caFile: String? = nil, caDirectory: String? = nil, systemCAs: Bool = true,
                clientCertificate: String? = nil, clientKey: String? = nil) {
        self.verify = verify
        self.caFile = caFile
        self.caDirectory = caDirectory
        self.systemCAs = systemCAs
        self.clientCertificate = clientCertificate
        self.clientKey = clientKey
    }
}

/// What went wrong in a TLS connection, as an operator needs to know it to pick the setting.
public enum TLSProblem: Sendable, Equatable {
    /// The server's certificate chain is not trusted: why (an unknown authority, expired, ...).
    case untrusted(String)
    /// The certificate does not name the host connected to; the names it holds.
    case hostName(certificateNames: [String])
    /// The server answered, but not in TLS: a plain HTTP port.
    case notTLS
    /// The server requires a client certificate and none was sent.
    case clientCertificateRequired
    /// The server refused the client certificate sent.
    case clientCertificateRejected
    /// The client certificate or key could not be loaded.
    case clientCertificate
    /// The CA file or folder could not be loaded.
    case caFile
    /// Another handshake failure (protocol versions, ciphers, ...).
    case handshake
}

/// Turns curl's TLS result codes and OpenSSL's texts into a `TLSProblem` and one sentence.
enum TLSFailure {
    /// The problem for curl's result `code` with its error buffer `detail`, or nil when the
    /// failure is not about TLS. `names`: the names the server's certificate holds, when known.
    static func classify(code: Int32, detail: String, names: [String]) -> TLSProblem? {
        let text = detail.lowercased()
        func has(_ words: String...) -> Bool { words.contains { text.contains($0) } }
        let clientRequired = has("alert certificate required", "peer did not return a certificate")
        let clientRejected = has("alert unknown ca", "alert bad certificate", "alert certificate unknown",
                                 "alert access denied")
        switch code {
        case 60, 51:  // CURLE_PEER_FAILED_VERIFICATION; 51 was the host-name check before curl 7.62
            if code == 51 || has("subject name", "host name", "does not match", "hostname mismatch") {
                return .hostName(certificateNames: names)
            }
            return .untrusted(untrustedReason(text, detail: detail))
        case 83, 90, 91:  // ISSUER_ERROR, PINNEDPUBKEYNOTMATCH, INVALIDCERTSTATUS
            return .untrusted(detail.isEmpty ? "the certificate was refused" : detail)
        case 35:  // CURLE_SSL_CONNECT_ERROR
            if has("wrong version number", "packet length too long", "http request", "record layer failure") {
                return .notTLS
            }
            if clientRequired { return .clientCertificateRequired }
            if clientRejected { return .clientCertificateRejected }
            return .handshake
        case 56:  // CURLE_RECV_ERROR: TLS 1.3 servers refuse a client certificate after the handshake
            if clientRequired { return .clientCertificateRequired }
            if clientRejected { return .clientCertificateRejected }
            return nil
        case 58: return .clientCertificate  // CURLE_SSL_CERTPROBLEM
        case 77, 82: return .caFile  // CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CRL_BADFILE
        case 53, 54, 59, 64, 66, 80: return .handshake  // engine, cipher, shutdown failures
        default: return nil
        }
    }

    private static func untrustedReason(_ text: String, detail: String) -> String {
        if text.contains("self-signed") || text.contains("self signed") || text.contains("local issuer")
            || text.contains("verify the first certificate") || text.contains("unknown ca") {
            return "certificate signed by an unknown authority"
        }
        if text.contains("expired") { return "the certificate has expired" }
        if text.contains("not yet valid") { return "the certificate is not valid yet" }
        if text.contains("revoked") { return "the certificate is revoked" }
        return detail.isEmpty ? "the certificate was refused" : detail
    }

    /// One sentence: where, which check failed, and curl's own words.
    static func message(_ problem: TLSProblem, host: String, hostPort: String, detail: String) -> String {
        let what: String
        switch problem {
        case .untrusted(let reason):
            what = "the server's certificate is not trusted: \(reason)"
        case .hostName(let names):
            what = names.isEmpty
                ? "the server's certificate is not for \(host) (host-name check)"
                : "the server's certificate is for \(names.joined(separator: ", ")), not \(host) (host-name check)"
        case .notTLS:
            what = "the server does not speak TLS on this port (it answered in plain text)"
        case .clientCertificateRequired:
            what = "the server requires a client certificate and none was sent"
        case .clientCertificateRejected:
            what = "the server refused the client certificate"
        case .clientCertificate:
            what = "the client certificate or its key cannot be used"
        case .caFile:
            what = "the trusted CA certificates cannot be loaded"
        case .handshake:
            what = "the TLS handshake failed"
        }
        return "TLS with \(hostPort): \(what)" + (detail.isEmpty ? "" : " (\(detail))")
    }

    /// The names a certificate holds, from curl's CERTINFO lines of the server's certificate:
    /// its subject alternative names, else its subject's common name.
    static func names(fromCertificateInfo lines: [String]) -> [String] {
        var names: [String] = []
        var commonName: String?
        for line in lines {
            if line.hasPrefix("X509v3 Subject Alternative Name:") {
                let list = line.dropFirst("X509v3 Subject Alternative Name:".count)
                for item in list.split(separator: ",") {
                    var name = item.trimmingCharacters(in: .whitespaces)
                    for prefix in ["DNS:", "IP Address:", "IP:"] where name.hasPrefix(prefix) {
                        name = String(name.dropFirst(prefix.count))
                    }
                    if !name.isEmpty { names.append(name) }
                }
            } else if line.hasPrefix("Subject:"), let range = line.range(of: "CN = ") ?? line.range(of: "CN=") {
                commonName = String(line[range.upperBound...].prefix { $0 != "," && $0 != "/" })
                    .trimmingCharacters(in: .whitespaces)
            }
        }
        return names.isEmpty ? (commonName.map { [$0] } ?? []) : names
    }
}
