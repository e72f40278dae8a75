/// The one error type of the S3 boundary: S3's error code (`NoSuchKey`, `SignatureDoesNotMatch`,
/// ...), the bucket and key, and whether retrying can help. The secret key is never part of it.
public struct S3Error: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        case notFound
        /// 403: wrong access key or secret, a signature mismatch, or no permission.
        case accessDenied
        case throttled
        case serverError
        case clientError
        case transport(HTTPError.Kind)
        case badResponse
        case localFile
        /// The task was cancelled (Ctrl-C, or a sibling task failed).
        case cancelled
    }

    public let kind: Kind
    /// S3's error code from the XML body, or `HTTP <status>` when the answer had none.
    public let code: String
    public let message: String
    public let bucket: String
    public let key: String?
    public let httpStatus: Int?
    public let requestID: String?
    /// How many attempts were made before giving up.
    public var attempts: Int

    public init(kind: Kind, code: String, message: String, bucket: String, key: String?, httpStatus: Int? = nil,
                requestID: String? = nil, attempts: Int = 1) {
        self.kind = kind
        self.code = code
        self.message = message
        self.bucket = bucket
        self.key = key
        self.httpStatus = httpStatus
        self.requestID = requestID
        self.attempts = attempts
    }

    public var isRetryable: Bool {
        switch kind {
        case .serverError, .throttled: true
        case .transport(let kind): [.couldNotConnect, .timedOut, .connectionLost, .couldNotResolveHost].contains(kind)
        default: false
        }
    }

    /// What to set for a TLS problem, with the keys' environment variables.
    static func advice(_ problem: TLSProblem) -> String {
        let skip = "s3.disable_cert_verification: true (S3_DISABLE_CERT_VERIFICATION) to connect without checking it"
        switch problem {
        case .untrusted:
            return "Add the CA that signed it to the system's trusted certificates (or name a PEM file of CAs in SSL_CERT_FILE), or set \(skip)."
        case .hostName:
            return "Use a host name in s3.endpoint (S3_ENDPOINT) that the certificate is for, or set \(skip)."
        case .notTLS:
            return "Write s3.endpoint (S3_ENDPOINT) as http://..., or for an endpoint without a scheme set s3.disable_ssl: true (S3_DISABLE_SSL)."
        case .clientCertificateRequired, .clientCertificateRejected, .clientCertificate:
            return "The S3 endpoint wants a client certificate: clickhouse-backup's s3 settings have none, and neither does inplace."
        case .caFile:
            return "Check SSL_CERT_FILE / SSL_CERT_DIR: readable PEM CA certificates."
        case .handshake:
            return "Check s3.endpoint (S3_ENDPOINT): its scheme and port."
        }
    }

    public var description: String {
        var text = "S3 \(code)"
        if let httpStatus { text += " (HTTP \(httpStatus))" }
        text += " on s3://\(bucket)/\(key ?? "")"
        if !message.isEmpty { text += ": \(message)" }
        if attempts > 1 { text += " (after \(attempts) attempts)" }
        switch kind {
        case .accessDenied:
            text += ". Check s3.access_key and s3.secret_key (or S3_ACCESS_KEY / S3_SECRET_KEY) and the bucket's permissions."
        case .notFound where code == "NoSuchBucket":
            text += ". Check s3.bucket (or S3_BUCKET)."
        case .transport(.tls(let problem)):
            text += ". " + Self.advice(problem)
        default:
            break
        }
        if let requestID { text += " [request id \(requestID)]" }
        return text
    }
}
