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
        default:
            break
        }
        if let requestID { text += " [request id \(requestID)]" }
        return text
    }
}
