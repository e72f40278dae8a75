import Foundation

/// One header line. Names compare case-insensitively.
public struct HTTPHeader: Sendable, Equatable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

extension Array where Element == HTTPHeader {
    /// The value of the last header named `name` (names compared without case).
    public func last(named name: String) -> String? {
        last { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }
}

/// Credentials curl applies itself; they never become part of a URL or a description.
public enum HTTPCredentials: Sendable {
    case basic(user: String, password: String)
    /// AWS Signature Version 4, signed by curl (`CURLOPT_AWS_SIGV4`).
    case awsSigV4(region: String, service: String, accessKey: String, secretKey: String)
}

/// Where a request body comes from.
public enum HTTPRequestBody: Sendable {
    case none
    case bytes([UInt8])
    /// `length` bytes of the file at `path` starting at `offset`; read as they are sent.
    case file(path: String, offset: Int64, length: Int64)
}

/// Where a successful (2xx) response body goes. Error bodies are always kept in memory, capped,
/// so that the caller can turn them into a typed error.
public enum HTTPResponseSink: Sendable {
    /// Kept in memory; a body larger than `limit` bytes fails the request.
    case memory(limit: Int)
    /// Written to a file created (or truncated) at `path`, or appended to it.
    case file(path: String, append: Bool)
    /// Each chunk is handed over as it arrives, on the transfer's own thread, in order. A throw
    /// aborts the transfer and is rethrown by `send`.
    case handler(@Sendable (UnsafeRawBufferPointer) throws -> Void)

    public static let smallBody = HTTPResponseSink.memory(limit: 64 << 20)
}

public struct HTTPRequest: Sendable {
    public var method: String
    /// The URL, without credentials (credentials go in `credentials` or a header).
    public var url: String
    public var headers: [HTTPHeader]
    public var body: HTTPRequestBody
    public var credentials: HTTPCredentials?
    public var connectTimeout: Duration
    /// The transfer fails when no byte moves for this long (curl's low-speed limit).
    public var idleTimeout: Duration
    /// An upper bound for the whole request, or nil for none.
    public var totalTimeout: Duration?
    /// For a ranged GET: the answer must be 206 with a Content-Range starting at this byte, or
    /// no byte reaches the sink (a server that ignores Range would send the object from byte 0).
    public var requiredRangeStart: Int64?
    /// Called once, on the transfer's thread, with a 2xx answer's headers before its first body
    /// byte reaches the sink: what a caller must know of an answer that may yet fail midway.
    public var onBodyStart: (@Sendable ([HTTPHeader]) -> Void)?
    /// Certificate checks and client certificate for an `https://` URL.
    public var tls: TLSOptions

    public init(
        method: String = "GET", url: String, headers: [HTTPHeader] = [], body: HTTPRequestBody = .none,
        credentials: HTTPCredentials? = nil, connectTimeout: Duration = .seconds(10),
        idleTimeout: Duration = .seconds(60), totalTimeout: Duration? = nil, tls: TLSOptions = TLSOptions()
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.credentials = credentials
        self.connectTimeout = connectTimeout
        self.idleTimeout = idleTimeout
        self.totalTimeout = totalTimeout
        self.tls = tls
    }
}

public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [HTTPHeader]
    /// The body for a `.memory` sink, or the (capped) body of a non-2xx answer; empty otherwise.
    public var body: [UInt8]
    /// Bytes of a 2xx body delivered to the sink.
    public var bodyBytesDelivered: Int64

    public var isSuccess: Bool { (200..<300).contains(status) }

    public func header(_ name: String) -> String? { headers.last(named: name) }

    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// The one error type of the HTTP transport: no answer, or an answer that could not be read.
/// An HTTP status (404, 500...) is not an HTTPError: the response carries it, and the ClickHouse
/// and S3 clients turn it into their own errors.
public struct HTTPError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        case couldNotResolveHost
        case couldNotConnect
        case timedOut
        /// The connection broke or the server sent an incomplete answer.
        case connectionLost
        case bodyTooLarge(limit: Int)
        case localFile(String)
        case invalidRequest(String)
        /// A TLS connection failed: a certificate check, a client certificate, or the handshake.
        case tls(TLSProblem)
        case other
    }

    public let kind: Kind
    public let method: String
    /// The URL with any credentials and signatures removed.
    public let url: String
    /// curl's result code (`CURLE_*`), 0 when the error did not come from curl.
    public let curlCode: Int32
    public let message: String
    /// The connection ended before any answer: over `http://` the port may expect TLS; over
    /// `https://` the server may require a client certificate.
    public let noAnswer: Bool

    public init(kind: Kind, method: String, url: String, curlCode: Int32, message: String,
                noAnswer: Bool = false) {
        self.kind = kind
        self.method = method
        self.url = HTTPError.redact(url)
        self.curlCode = curlCode
        self.message = message
        self.noAnswer = noAnswer
    }

    /// Whether sending the same request again may succeed.
    public var isRetryable: Bool {
        switch kind {
        case .couldNotConnect, .timedOut, .connectionLost, .couldNotResolveHost: true
        default: false
        }
    }

    public var description: String {
        "\(method) \(url): \(message)" + (curlCode != 0 ? " (curl error \(curlCode))" : "")
    }

    /// Removes `user:password@` and the values of query parameters that can carry secrets.
    public static func redact(_ url: String) -> String {
        guard var components = URLComponents(string: url) else { return url }
        components.user = nil
        components.password = nil
        let sensitive: Set<String> = ["password", "x-amz-signature", "x-amz-credential", "x-amz-security-token", "key"]
        if let items = components.percentEncodedQueryItems {
            components.percentEncodedQueryItems = items.map {
                sensitive.contains($0.name.lowercased()) ? URLQueryItem(name: $0.name, value: "REDACTED") : $0
            }
        }
        return components.string ?? url
    }
}
