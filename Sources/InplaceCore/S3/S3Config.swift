/// How to reach one bucket. Mirrors clickhouse-backup's `s3` section where the keys overlap.
public struct S3Config: Sendable {
    /// `http://host:port`, `https://host`, or a bare host (then `disableSSL` picks the scheme).
    /// Empty means AWS: `s3.<region>.amazonaws.com`.
    public var endpoint: String
    public var region: String
    public var bucket: String
    public var accessKey: String
    /// Given to curl for signing only; never part of a URL, a log line or an error.
    public var secretKey: String
    /// `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key`.
    public var forcePathStyle: Bool
    public var disableSSL: Bool
    /// Certificate checks (`s3.disable_cert_verification` turns them off) and trusted CAs
    /// (`SSL_CERT_FILE` / `SSL_CERT_DIR`, as Go reads them for clickhouse-backup).
    public var tls: TLSOptions
    /// Files larger than this are uploaded in parts.
    public var multipartThreshold: Int64
    /// Size of one part of a multipart upload (raised when a file would need more than 10,000).
    public var partSize: Int64
    /// Parts of one multipart upload sent at once.
    public var partConcurrency: Int
    public var retry: RetryPolicy
    public var connectTimeout: Duration
    /// A transfer fails when no byte moves for this long.
    public var idleTimeout: Duration

    public init(
        endpoint: String = "", region: String = "us-east-1", bucket: String, accessKey: String = "",
        secretKey: String = "", forcePathStyle: Bool = false, disableSSL: Bool = false,
        multipartThreshold: Int64 = 32 << 20, partSize: Int64 = 16 << 20, partConcurrency: Int = 4,
        retry: RetryPolicy = RetryPolicy(maxAttempts: 6), connectTimeout: Duration = .seconds(10),
        idleTimeout: Duration = .seconds(60), tls: TLSOptions = TLSOptions()
    ) {
        self.endpoint = endpoint
        self.region = region
        self.bucket = bucket
        self.accessKey = accessKey
        self.secretKey = secretKey
        self.forcePathStyle = forcePathStyle
        self.disableSSL = disableSSL
        self.multipartThreshold = multipartThreshold
        self.partSize = partSize
        self.partConcurrency = partConcurrency
        self.retry = retry
        self.connectTimeout = connectTimeout
        self.idleTimeout = idleTimeout
        self.tls = tls
    }

    /// The URL of `key` (or of the bucket when `key` is empty), with the key URI-encoded the way
    /// SigV4 canonicalizes it. Holds no credentials.
    public func url(forKey key: String, query: [(String, String)] = []) -> String {
        var scheme = disableSSL ? "http" : "https"
        var host = endpoint.isEmpty ? "s3.\(region).amazonaws.com" : endpoint
        if let range = host.range(of: "://") {
            scheme = String(host[..<range.lowerBound])
            host = String(host[range.upperBound...])
        }
        while host.hasSuffix("/") { host.removeLast() }
        let path = URLEncoding.path(key)
        var url = forcePathStyle
            ? "\(scheme)://\(host)/\(URLEncoding.component(bucket))/\(path)"
            : "\(scheme)://\(bucket).\(host)/\(path)"
        if !query.isEmpty {
            // SigV4 needs the canonical query: sorted by name, fully encoded, `name=` for flags.
            url += "?" + query.sorted { $0.0 == $1.0 ? $0.1 < $1.1 : $0.0 < $1.0 }
                .map { "\(URLEncoding.component($0.0))=\(URLEncoding.component($0.1))" }
                .joined(separator: "&")
        }
        return url
    }
}
