/// The one error type of the ClickHouse boundary.
///
/// It carries what an operator needs to act: ClickHouse's code and name, the query (never the
/// password, which travels only in a header), and whether trying again can help.
public struct ClickHouseError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// The server answered with an exception (`Code: 60. DB::Exception: ... (UNKNOWN_TABLE)`).
        case server(code: Int, name: String)
        /// The server refused the user name or password.
        case authentication
        /// The server's version is older than the oldest `inplace` supports.
        case unsupportedVersion(found: String, minimum: String)
        /// The server could not be reached or the connection broke.
        case transport(HTTPError.Kind)
        /// The server's answer could not be understood (not the format asked for).
        case badResponse
        /// The task was cancelled before the answer came.
        case cancelled
    }

    public let kind: Kind
    /// The message, as ClickHouse wrote it or as `inplace` explains it.
    public let message: String
    /// The query that failed (shortened), or nil.
    public let query: String?
    /// The server address (`http://host:port`), without credentials.
    public let server: String
    public let httpStatus: Int?

    public init(kind: Kind, message: String, query: String?, server: String, httpStatus: Int? = nil) {
        self.kind = kind
        self.message = message
        self.query = query.map { $0.count > 1000 ? String($0.prefix(1000)) + "..." : $0 }
        self.server = server
        self.httpStatus = httpStatus
    }

    /// ClickHouse's numeric error code, when the server sent one.
    public var code: Int? {
        switch kind {
        case .server(let code, _): code
        case .authentication: 516
        default: nil
        }
    }

    /// Whether the same query may succeed if sent again (after a pause).
    public var isRetryable: Bool {
        switch kind {
        case .transport(let kind):
            [.couldNotConnect, .timedOut, .connectionLost, .couldNotResolveHost].contains(kind)
        case .server(let code, _):
            Self.retryableCodes.contains(code)
        case .authentication, .unsupportedVersion, .badResponse, .cancelled:
            false
        }
    }

    /// Codes that describe a passing condition (overload, timeouts, network, Keeper, a table
    /// busy or read-only for a moment), not a wrong query.
    static let retryableCodes: Set<Int> = [
        159,  // TIMEOUT_EXCEEDED
        202,  // TOO_MANY_SIMULTANEOUS_QUERIES
        203,  // NO_FREE_CONNECTION
        209,  // SOCKET_TIMEOUT
        210,  // NETWORK_ERROR
        241,  // MEMORY_LIMIT_EXCEEDED
        242,  // TABLE_IS_READ_ONLY
        252,  // TOO_MANY_PARTS
        319,  // UNKNOWN_STATUS_OF_INSERT
        425,  // SYSTEM_ERROR
        473,  // DEADLOCK_AVOIDED
        999,  // KEEPER_EXCEPTION
    ]

    /// What to set for a TLS problem, with the keys' environment variables.
    static func advice(_ problem: TLSProblem) -> String {
        let skip = "clickhouse.skip_verify: true (CLICKHOUSE_SKIP_VERIFY) to connect without checking it"
        switch problem {
        case .untrusted:
            return "Set clickhouse.tls_ca (CLICKHOUSE_TLS_CA) to the CA certificate that signed the server's, or \(skip)."
        case .hostName:
            return "Set clickhouse.host (CLICKHOUSE_HOST) to a name the certificate is for, or \(skip)."
        case .notTLS:
            return "Set clickhouse.secure: false (CLICKHOUSE_SECURE), or clickhouse.http_port (CLICKHOUSE_HTTP_PORT) to the server's HTTPS port."
        case .clientCertificateRequired, .clientCertificateRejected:
            return "Set clickhouse.tls_cert and clickhouse.tls_key (CLICKHOUSE_TLS_CERT / CLICKHOUSE_TLS_KEY) to a client certificate the server trusts."
        case .clientCertificate:
            return "Check clickhouse.tls_cert and clickhouse.tls_key (CLICKHOUSE_TLS_CERT / CLICKHOUSE_TLS_KEY): PEM files, the key matching the certificate."
        case .caFile:
            return "Check clickhouse.tls_ca (CLICKHOUSE_TLS_CA), or SSL_CERT_FILE / SSL_CERT_DIR: readable PEM CA certificates."
        case .handshake:
            return "Check that clickhouse.http_port (CLICKHOUSE_HTTP_PORT) is the server's HTTPS port and its TLS settings."
        }
    }

    public var description: String {
        var text: String
        switch kind {
        case .server(let code, let name):
            text = "ClickHouse error \(code) (\(name)) from \(server): \(message)"
        case .authentication:
            text = "ClickHouse at \(server): authentication failed (\(message)). "
                + "Check clickhouse.username and clickhouse.password (or CLICKHOUSE_USERNAME / CLICKHOUSE_PASSWORD)."
        case .unsupportedVersion(let found, let minimum):
            text = "ClickHouse at \(server) is version \(found); inplace needs \(minimum) or newer. Nothing was changed."
        case .transport(let kind):
            text = "cannot reach ClickHouse at \(server): \(message)"
            if [.couldNotConnect, .couldNotResolveHost, .timedOut].contains(kind) {
                text += ". Check clickhouse.host and clickhouse.http_port (or CLICKHOUSE_HOST / CLICKHOUSE_HTTP_PORT) and that the server runs."
            }
            if case .tls(let problem) = kind { text += ". " + Self.advice(problem) }
        case .badResponse:
            text = "unexpected answer from ClickHouse at \(server): \(message)"
        case .cancelled:
            text = "query to ClickHouse at \(server) cancelled"
        }
        if let query { text += "\n  query: \(query)" }
        if isRetryable { text += "\n  (this may be temporary: retrying can help)" }
        return text
    }
}
