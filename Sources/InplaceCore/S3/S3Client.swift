import Foundation
import Logging

/// What S3 says about one object.
public struct S3ObjectInfo: Sendable, Equatable {
    public var key: String
    public var size: Int64
    /// The ETag without quotes.
    public var etag: String
    public var lastModified: Date?
}

/// Where a GET's body goes.
public enum S3Sink: Sendable {
    case file(path: String)
    /// Chunks in order, on the transfer's thread. After a retry the stream continues where it
    /// stopped (a ranged GET pinned to the first answer's ETag): the handler never sees a byte twice.
    case handler(@Sendable (UnsafeRawBufferPointer) throws -> Void)
}

/// An S3 client over libcurl, signing with SigV4 (curl signs; `inplace` adds the
/// `x-amz-content-sha256` header curl 7.88 leaves out, and sorts and encodes the query itself).
///
/// Every request is retried with backoff and jitter on 5xx, 429 and transport failures, never on
/// other 4xx (a 403 or a 404 will not change by asking again).
public final class S3Client: Sendable {
    public let config: S3Config
    let http: HTTPClient
    let logger: Logger

    public init(config: S3Config, http: HTTPClient = HTTPClient(), logger: Logger = Logger(label: "inplace.s3")) {
        self.config = config
        self.http = http
        self.logger = logger
    }

    // MARK: Objects

    public func head(_ key: String) async throws(S3Error) -> S3ObjectInfo {
        let response = try await send(method: "HEAD", key: key)
        return objectInfo(key: key, response: response)
    }

    /// Whether the object exists (a 404 is an answer here, not an error).
    public func exists(_ key: String) async throws(S3Error) -> Bool {
        do {
            _ = try await head(key)
            return true
        } catch where error.kind == .notFound {
            return false
        }
    }

    /// Small objects (metadata JSON) into memory.
    public func getBytes(_ key: String, limit: Int = 256 << 20) async throws(S3Error) -> [UInt8] {
        try await send(method: "GET", key: key, sink: .memory(limit: limit)).body
    }

    /// Streams an object (or the byte range `range`, inclusive) to `sink`. A failure midway is
    /// retried from the byte where it stopped, pinned to the version first seen (If-Match on the
    /// ETag of the first answer, taken before its first byte reached the sink) and accepted only
    /// as a 206 starting at that byte: the sink never sees a byte twice, nor bytes of another
    /// version. One request per object when nothing fails (no HEAD first: a restore GETs an
    /// archive per part).
    @discardableResult
    public func get(_ key: String, range: ClosedRange<Int64>? = nil, to sink: S3Sink) async throws(S3Error) -> S3ObjectInfo {
        let first = FirstAnswer()
        if case .file(let path) = sink {
            // The file holds this object's bytes only: whatever was there before goes.
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                throw S3Error(kind: .localFile, code: "LocalFile", message: "cannot write \(path): \(String(cString: strerror(errno)))",
                              bucket: config.bucket, key: key)
            }
            close(fd)
        }
        let progress = GetProgress()
        var attempt = 0
        while true {
            attempt += 1
            let start = (range?.lowerBound ?? 0) + progress.delivered
            var headers: [HTTPHeader] = []
            if let etag = first.etag, !etag.isEmpty { headers.append(HTTPHeader("If-Match", "\"\(etag)\"")) }
            let ranged = range != nil || progress.delivered > 0
            if ranged {
                headers.append(HTTPHeader("Range", "bytes=\(start)-\(range.map { String($0.upperBound) } ?? "")"))
            }
            let httpSink: HTTPResponseSink
            switch sink {
            case .file(let path):
                httpSink = .file(path: path, append: true)
            case .handler(let handler):
                httpSink = .handler { chunk in
                    try handler(chunk)
                    progress.add(chunk.count)
                }
            }
            do {
                let response = try await sendOnce(method: "GET", key: key, headers: headers, sink: httpSink,
                                                  requiredRangeStart: ranged ? start : nil,
                                                  onBodyStart: { headers in first.record(headers) })
                if case .file = sink { progress.add(Int(response.bodyBytesDelivered)) }
                var info = objectInfo(key: key, response: response)
                if let etag = first.etag { info.etag = etag }
                // The object's size: a ranged answer says it after the slash of Content-Range.
                if let total = response.header("Content-Range")?.split(separator: "/").last.flatMap({ Int64($0) }) {
                    info.size = total
                }
                return info
            } catch {
                var error = error
                error.attempts = attempt
                if case .file = sink, case .transport = error.kind {
                    // The part of the body written before the failure stays; continue after it.
                    progress.set(fileSize(sink))
                }
                guard error.isRetryable, attempt < config.retry.maxAttempts else {
                    // An object that was never answered (missing, refused) leaves no file behind.
                    if case .file(let path) = sink, first.etag == nil, progress.delivered == 0 { unlink(path) }
                    throw error
                }
                try await pause(after: attempt, key: key, error: error)
            }
        }
    }

    public func put(_ key: String, bytes: [UInt8], contentType: String = "application/octet-stream") async throws(S3Error) {
        _ = try await send(method: "PUT", key: key, headers: [HTTPHeader("Content-Type", contentType)],
                           body: .bytes(bytes))
    }

    /// Uploads a file, in parts when it is larger than `multipartThreshold`.
    public func put(_ key: String, file path: String) async throws(S3Error) {
        let size: Int64
        do {
            size = try Int64(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? -1)
        } catch {
            throw S3Error(kind: .localFile, code: "LocalFile", message: "cannot read \(path): \(error.localizedDescription)",
                          bucket: config.bucket, key: key)
        }
        if size > config.multipartThreshold {
            try await putMultipart(key, file: path, size: size)
        } else {
            _ = try await send(method: "PUT", key: key, body: .file(path: path, offset: 0, length: size))
        }
    }

    public func delete(_ key: String) async throws(S3Error) {
        _ = try await send(method: "DELETE", key: key)
    }

    // MARK: Listing

    public struct ListPage: Sendable {
        public var objects: [S3ObjectInfo]
        /// With a delimiter: the "folders" directly under the prefix.
        public var commonPrefixes: [String]
    }

    /// Lists every key under `prefix` with ListObjectsV2, one page (up to `pageSize` keys) at a
    /// time, following continuation tokens until the listing is complete.
    public func list(prefix: String, delimiter: String? = nil, pageSize: Int = 1000,
                     page: (ListPage) throws -> Void) async throws {
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("max-keys", String(pageSize)), ("prefix", prefix)]
            if let delimiter { query.append(("delimiter", delimiter)) }
            if let token { query.append(("continuation-token", token)) }
            let response = try await send(method: "GET", key: "", query: query)
            guard let answer = S3ListingParser.parse(response.body) else {
                throw S3Error(kind: .badResponse, code: "BadResponse", message: "ListObjectsV2 answer is not a well-formed ListBucketResult",
                              bucket: config.bucket, key: prefix)
            }
            try page(answer.page)
            token = nil
            if answer.isTruncated {
                guard let next = answer.nextContinuationToken, !next.isEmpty else {
                    throw S3Error(kind: .badResponse, code: "BadResponse",
                                  message: "ListObjectsV2 said the listing is truncated but gave no continuation token",
                                  bucket: config.bucket, key: prefix)
                }
                token = next
            }
        } while token != nil
    }

    /// All keys under `prefix` (for listings that fit in memory).
    public func listAll(prefix: String, delimiter: String? = nil) async throws -> ListPage {
        var all = ListPage(objects: [], commonPrefixes: [])
        try await list(prefix: prefix, delimiter: delimiter) { page in
            all.objects += page.objects
            all.commonPrefixes += page.commonPrefixes
        }
        return all
    }

    // MARK: Requests

    /// One request with retries; a non-2xx answer becomes an `S3Error`.
    func send(
        method: String, key: String, query: [(String, String)] = [], headers: [HTTPHeader] = [],
        body: HTTPRequestBody = .none, sink: HTTPResponseSink = .memory(limit: 64 << 20)
    ) async throws(S3Error) -> HTTPResponse {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await sendOnce(method: method, key: key, query: query, headers: headers, body: body, sink: sink)
            } catch {
                var error = error
                error.attempts = attempt
                guard error.isRetryable, attempt < config.retry.maxAttempts else { throw error }
                try await pause(after: attempt, key: key, error: error)
            }
        }
    }

    func sendOnce(
        method: String, key: String, query: [(String, String)] = [], headers: [HTTPHeader] = [],
        body: HTTPRequestBody = .none, sink: HTTPResponseSink, requiredRangeStart: Int64? = nil,
        onBodyStart: (@Sendable ([HTTPHeader]) -> Void)? = nil
    ) async throws(S3Error) -> HTTPResponse {
        var request = HTTPRequest(
            method: method, url: config.url(forKey: key, query: query),
            headers: headers + [HTTPHeader("x-amz-content-sha256", "UNSIGNED-PAYLOAD")], body: body,
            credentials: .awsSigV4(region: config.region, service: "s3", accessKey: config.accessKey,
                                   secretKey: config.secretKey),
            connectTimeout: config.connectTimeout, idleTimeout: config.idleTimeout, tls: config.tls)
        request.requiredRangeStart = requiredRangeStart
        request.onBodyStart = onBodyStart
        let response: HTTPResponse
        do {
            response = try await http.send(request, sink: sink)
        } catch let error as HTTPError {
            if case .localFile = error.kind {
                throw S3Error(kind: .localFile, code: "LocalFile", message: error.message, bucket: config.bucket, key: key)
            }
            let hint = error.noAnswer && error.url.hasPrefix("http:")
                ? ". No HTTP answer came: if the endpoint speaks HTTPS, write s3.endpoint (S3_ENDPOINT) as https://..." : ""
            throw S3Error(kind: .transport(error.kind), code: "Transport", message: error.message + hint,
                          bucket: config.bucket, key: key)
        } catch is CancellationError {
            throw S3Error(kind: .cancelled, code: "Cancelled", message: "cancelled", bucket: config.bucket, key: key)
        } catch let error as S3Error {
            throw error
        } catch {
            throw S3Error(kind: .localFile, code: "Sink", message: "\(error)", bucket: config.bucket, key: key)
        }
        guard response.isSuccess else { throw responseError(response, key: key) }
        return response
    }

    func responseError(_ response: HTTPResponse, key: String) -> S3Error {
        let xml = S3XMLElement.parse(response.body)
        let status = response.status
        let code = xml?.value("Code") ?? (status == 404 ? "NotFound" : status == 403 ? "Forbidden" : "HTTP \(status)")
        let message = xml?.value("Message") ?? ""
        let kind: S3Error.Kind
        switch (status, code) {
        case (404, _): kind = .notFound
        case (403, _), (401, _): kind = .accessDenied
        case (429, _), (_, "SlowDown"), (503, _): kind = .throttled
        case (500..., _): kind = .serverError
        default: kind = .clientError
        }
        return S3Error(kind: kind, code: code, message: message, bucket: config.bucket, key: key.isEmpty ? nil : key,
                       httpStatus: status, requestID: xml?.value("RequestId") ?? response.header("x-amz-request-id"))
    }

    /// Waits before the next attempt, saying so: an operator sees S3 trouble as it happens.
    func pause(after attempt: Int, key: String, error: S3Error) async throws(S3Error) {
        let delay = config.retry.delay(afterAttempt: attempt)
        logger.warning("S3 \(key.isEmpty ? config.bucket : key): attempt \(attempt) of \(config.retry.maxAttempts) failed (\(error)); retrying in \(delay)")
        do {
            try await Task.sleep(for: delay)
        } catch {
            throw S3Error(kind: .cancelled, code: "Cancelled", message: "cancelled", bucket: config.bucket, key: key)
        }
    }

    private func objectInfo(key: String, response: HTTPResponse) -> S3ObjectInfo {
        S3ObjectInfo(key: key, size: Int64(response.header("Content-Length") ?? "") ?? response.bodyBytesDelivered,
                     etag: unquote(response.header("ETag") ?? ""),
                     lastModified: response.header("Last-Modified").flatMap(parseHTTPDate))
    }

    private func fileSize(_ sink: S3Sink) -> Int64 {
        guard case .file(let path) = sink else { return 0 }
        return FileSystem.size(ofFile: path)
    }
}

/// The ETag of a GET's first answer that began a body, for the If-Match of its retries.
private final class FirstAnswer: @unchecked Sendable {
    private let lock = NSLock()
    private var seen: String?

    var etag: String? { lock.withLock { seen } }

    func record(_ headers: [HTTPHeader]) {
        lock.withLock {
            guard seen == nil else { return }
            seen = unquote(headers.last(named: "ETag") ?? "")
        }
    }
}

/// Bytes of a GET handed to the sink so far, across attempts.
private final class GetProgress: @unchecked Sendable {
    private(set) var delivered: Int64 = 0
    func add(_ count: Int) { delivered += Int64(count) }
    func set(_ value: Int64) { delivered = value }
}

func unquote(_ text: String) -> String {
    text.count >= 2 && text.hasPrefix("\"") && text.hasSuffix("\"") ? String(text.dropFirst().dropLast()) : text
}

/// S3's `LastModified` (`2026-12-03T09:00:00.000Z`: RFC 3339, UTC or an offset, fractional
/// seconds optional), read by position: a listing parses one per object, and Foundation's
/// formatter (ICU, set up per call) cost 4 ms of CPU each.
public func parseDate(_ text: String) -> Date? {
    var text = text
    return text.withUTF8(parseDate(utf8:))
}

/// `parseDate` over the UTF-8 bytes of the text.
func parseDate(utf8 bytes: UnsafeBufferPointer<UInt8>) -> Date? {
    func number(_ from: Int, _ count: Int) -> Int? { decimal(bytes, from: from, count: count) }
    func byte(_ index: Int) -> UInt8? { index < bytes.count ? bytes[index] : nil }
    guard let year = number(0, 4), byte(4) == 0x2D, let month = number(5, 2), byte(7) == 0x2D,
          let day = number(8, 2), byte(10) == 0x54 || byte(10) == 0x74, let hour = number(11, 2),
          byte(13) == 0x3A, let minute = number(14, 2), byte(16) == 0x3A, let second = number(17, 2),
          (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
    else { return nil }
    var index = 19
    var fraction = 0.0
    if byte(index) == 0x2E {
        var scale = 0.1
        index += 1
        let start = index
        while let digit = byte(index), (0x30...0x39).contains(digit) {
            fraction += Double(digit - 0x30) * scale
            scale /= 10
            index += 1
        }
        guard index > start else { return nil }
    }
    var offset = 0
    switch byte(index) {
    case 0x5A, 0x7A:  // Z
        index += 1
    case 0x2B, 0x2D:  // +hh:mm, -hh:mm
        guard let hours = number(index + 1, 2), byte(index + 3) == 0x3A, let minutes = number(index + 4, 2) else { return nil }
        offset = (hours * 60 + minutes) * 60 * (byte(index) == 0x2D ? -1 : 1)
        index += 6
    default:
        return nil
    }
    guard index == bytes.count else { return nil }
    let seconds = unixSeconds(year: year, month: month, day: day, hour: hour, minute: minute, second: second) - offset
    return Date(timeIntervalSince1970: Double(seconds) + fraction)
}

/// The `count` decimal digits at `from`, or nil when one is not a digit or the text ends first.
private func decimal(_ bytes: UnsafeBufferPointer<UInt8>, from: Int, count: Int) -> Int? {
    guard from + count <= bytes.count else { return nil }
    var value = 0
    for index in from..<(from + count) {
        let digit = Int(bytes[index]) - 48
        guard (0...9).contains(digit) else { return nil }
        value = value * 10 + digit
    }
    return value
}

/// Seconds since 1970-01-01T00:00:00Z of a UTC date and time in the proleptic Gregorian calendar
/// (days counted from a year that starts in March).
func unixSeconds(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) -> Int {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yearOfEra = y - era * 400
    let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
    let days = era * 146_097 + dayOfEra - 719_468
    return days * 86_400 + hour * 3600 + minute * 60 + second
}

/// An HTTP date (`Last-Modified`): IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`, what S3 servers
/// send) read by position, as `parseDate` reads a listing's; the obsolete forms HTTP still allows
/// by Foundation's formatter (ICU: milliseconds of CPU per call, so only when the first fails).
func parseHTTPDate(_ text: String) -> Date? {
    var text = text
    if let date = text.withUTF8(parseIMFFixdate) { return date }
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "GMT")
    formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
    return formatter.date(from: text)
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` over its UTF-8 bytes: exactly 29 of them.
func parseIMFFixdate(_ bytes: UnsafeBufferPointer<UInt8>) -> Date? {
    guard bytes.count == 29 else { return nil }
    func number(_ from: Int, _ count: Int) -> Int? { decimal(bytes, from: from, count: count) }
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    let name = Array(bytes[8..<11])
    guard bytes[3] == 0x2C, bytes[4] == 0x20, bytes[7] == 0x20, bytes[11] == 0x20, bytes[16] == 0x20,
          bytes[19] == 0x3A, bytes[22] == 0x3A, bytes[25] == 0x20, Array(bytes[26..<29]) == Array("GMT".utf8),
          let month = months.firstIndex(where: { Array($0.utf8) == name }).map({ $0 + 1 }),
          let day = number(5, 2), let year = number(12, 4), let hour = number(17, 2), let minute = number(20, 2),
          let second = number(23, 2), (1...31).contains(day), hour < 24, minute < 60, second < 61
    else { return nil }
    return Date(timeIntervalSince1970: Double(unixSeconds(year: year, month: month, day: day, hour: hour, minute: minute, second: second)))
}
