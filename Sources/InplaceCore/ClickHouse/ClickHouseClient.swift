import Foundation

/// Where and how to reach ClickHouse's HTTP interface.
public struct ClickHouseEndpoint: Sendable {
    public var host: String
    /// The HTTP interface's port (ClickHouse's `http_port`, 8123 by default), not the native port.
    public var port: Int
    public var secure: Bool
    public var username: String
    /// Sent only in the `X-ClickHouse-Key` header; never in a URL, log line or error.
    public var password: String
    /// The longest a query may run without moving a byte (clickhouse-backup's `clickhouse.timeout`).
    public var timeout: Duration
    public var connectTimeout: Duration
    /// Certificate checks and client certificate when `secure` (`clickhouse.skip_verify`,
    /// `tls_ca`, `tls_cert`, `tls_key`).
    public var tls: TLSOptions

    public init(
        host: String = "localhost", port: Int = 8123, secure: Bool = false, username: String = "default",
        password: String = "", timeout: Duration = .seconds(300), connectTimeout: Duration = .seconds(10),
        tls: TLSOptions = TLSOptions()
    ) {
        self.host = host
        self.port = port
        self.secure = secure
        self.username = username
        self.password = password
        self.timeout = timeout
        self.connectTimeout = connectTimeout
        self.tls = tls
    }

    /// `http://host:port`, for messages and for building request URLs. Holds no credentials.
    public var address: String {
        let bracketed = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        return "\(secure ? "https" : "http")://\(bracketed):\(port)"
    }
}

/// A client for ClickHouse's HTTP interface.
///
/// Queries go in the POST body; settings, query parameters (`{name:Type}` placeholders) and the
/// default format go in the URL; the user name and password go in `X-ClickHouse-User` and
/// `X-ClickHouse-Key` headers. Results are decoded row by row as they arrive: a million-row
/// result is never held as raw text and as rows at the same time.
public final class ClickHouseClient: Sendable {
    public let endpoint: ClickHouseEndpoint
    private let http: HTTPClient

    public init(endpoint: ClickHouseEndpoint, http: HTTPClient = HTTPClient()) {
        self.endpoint = endpoint
        self.http = http
    }

    // MARK: Queries

    /// Runs a statement and returns the whole answer as text (DDL, ALTER, small results).
    @discardableResult
    public func execute(
        _ sql: String, settings: [String: String] = [:], parameters: [String: String] = [:], database: String? = nil
    ) async throws(ClickHouseError) -> String {
        let response = try await send(sql, format: "TabSeparated", settings: settings, parameters: parameters,
                                      database: database, sink: .memory(limit: 256 << 20))
        // An exception after the status line (the query failed midway) ends the body.
        var failure: String?
        for line in response.body.split(separator: 0x0A, omittingEmptySubsequences: false) where failure == nil {
            if line.withUnsafeBytes({ StreamedException.isStart($0) }) {
                let start = response.body.distance(from: response.body.startIndex, to: line.startIndex)
                failure = String(decoding: response.body[start...], as: UTF8.self)
            }
        }
        if let failure {
            let parsed = ClickHouseExceptionText(failure)
            throw ClickHouseError(kind: .server(code: parsed.code ?? 0, name: parsed.name ?? ""),
                                  message: "the query failed after it started answering: \(parsed.message)",
                                  query: sql, server: endpoint.address, httpStatus: response.status)
        }
        return response.bodyText
    }

    /// Decodes each row of a `JSONEachRow` result as it arrives. 64-bit integers come as JSON
    /// numbers (not strings), so `UInt64` and `Int64` fields decode directly.
    public func rows<T: Decodable & Sendable>(
        _ sql: String, as type: T.Type = T.self, settings: [String: String] = [:],
        parameters: [String: String] = [:], database: String? = nil
    ) async throws(ClickHouseError) -> [T] {
        let collected = RowCollector<T>()
        try await forEachRow(sql, as: type, settings: settings, parameters: parameters, database: database) {
            collected.append($0)
        }
        return collected.take()
    }

    /// Calls `body` for each row of a `JSONEachRow` result, in order, as rows arrive. `body` runs
    /// on the transfer's thread, one row at a time; a throw stops the query and is rethrown
    /// wrapped as `.badResponse` unless it is already a `ClickHouseError`.
    public func forEachRow<T: Decodable & Sendable>(
        _ sql: String, as type: T.Type = T.self, settings: [String: String] = [:],
        parameters: [String: String] = [:], database: String? = nil, _ body: @escaping @Sendable (T) throws -> Void
    ) async throws(ClickHouseError) {
        var allSettings = settings
        allSettings["output_format_json_quote_64bit_integers"] = "0"
        let decoder = JSONDecoder()
        let address = endpoint.address
        try await streamLines(sql, format: "JSONEachRow", settings: allSettings, parameters: parameters,
                              database: database) { line, number in
            guard !line.isEmpty else { return }
            let row: T
            do {
                row = try decoder.decode(T.self, from: Data(line))
            } catch {
                throw ClickHouseError(
                    kind: .badResponse, message: "row \(number) does not decode as \(T.self): \(error)",
                    query: sql, server: address)
            }
            try body(row)
        }
    }

    /// Decodes each row of a `TabSeparated` result with `T.init(row:)` as it arrives.
    public func tsvRows<T: TSVDecodable & Sendable>(
        _ sql: String, as type: T.Type = T.self, settings: [String: String] = [:],
        parameters: [String: String] = [:], database: String? = nil
    ) async throws(ClickHouseError) -> [T] {
        let collected = RowCollector<T>()
        try await forEachTSVRow(sql, settings: settings, parameters: parameters, database: database) {
            collected.append(try T(row: $0))
        }
        return collected.take()
    }

    /// Calls `body` for each row of a `TabSeparated` result, in order, as rows arrive.
    public func forEachTSVRow(
        _ sql: String, settings: [String: String] = [:], parameters: [String: String] = [:], database: String? = nil,
        _ body: @escaping @Sendable (TSVRow) throws -> Void
    ) async throws(ClickHouseError) {
        try await streamLines(sql, format: "TabSeparated", settings: settings, parameters: parameters,
                              database: database) { line, number in
            try body(TSVRow(line: line, number: number))
        }
    }

    // MARK: Server checks

    /// `/ping`: the server is up and answering HTTP (no credentials needed).
    public func ping() async throws(ClickHouseError) {
        let request = HTTPRequest(method: "GET", url: endpoint.address + "/ping",
                                  connectTimeout: endpoint.connectTimeout, idleTimeout: endpoint.timeout, tls: endpoint.tls)
        let response: HTTPResponse
        do {
            response = try await http.send(request)
        } catch {
            throw mapTransport(error, query: nil)
        }
        guard response.status == 200 else {
            throw ClickHouseError(kind: .badResponse, message: "/ping answered HTTP \(response.status)", query: nil,
                                  server: endpoint.address, httpStatus: response.status)
        }
    }

    /// `SELECT version()`.
    public func serverVersion() async throws(ClickHouseError) -> ClickHouseVersion {
        let sql = "SELECT version()"
        let text = try await execute(sql)
        guard let version = ClickHouseVersion(text) else {
            throw ClickHouseError(kind: .badResponse, message: "version() answered '\(text.prefix(100))'", query: sql,
                                  server: endpoint.address)
        }
        return version
    }

    /// The server's version, or `.unsupportedVersion` when it is older than `minimum`. Call it
    /// before changing anything.
    @discardableResult
    public func requireSupportedVersion(
        minimum: ClickHouseVersion = .minimumSupported
    ) async throws(ClickHouseError) -> ClickHouseVersion {
        let version: ClickHouseVersion
        do {
            version = try await serverVersion()
        } catch let error where error.kind == .badResponse || { if case .server = error.kind { true } else { false } }() {
            // Very old servers answer in ways a current client does not expect; say what matters.
            throw ClickHouseError(kind: .unsupportedVersion(found: "unknown (\(error.message.prefix(200)))",
                                                            minimum: minimum.text),
                                  message: error.message, query: "SELECT version()", server: endpoint.address)
        }
        guard version >= minimum else {
            throw ClickHouseError(kind: .unsupportedVersion(found: version.text, minimum: minimum.text),
                                  message: "server version \(version.text) is older than \(minimum.text)",
                                  query: nil, server: endpoint.address)
        }
        return version
    }

    // MARK: Transport

    private func streamLines(
        _ sql: String, format: String, settings: [String: String], parameters: [String: String], database: String?,
        _ onLine: @escaping @Sendable (UnsafeRawBufferPointer, Int) throws -> Void
    ) async throws(ClickHouseError) {
        let state = LineState(onLine: onLine)
        let address = endpoint.address
        _ = try await send(sql, format: format, settings: settings, parameters: parameters, database: database,
                           sink: .handler { chunk in try state.feed(chunk, sql: sql, server: address) })
        try state.finish(sql: sql, server: address)
    }

    private func send(
        _ sql: String, format: String, settings: [String: String], parameters: [String: String], database: String?,
        sink: HTTPResponseSink
    ) async throws(ClickHouseError) -> HTTPResponse {
        var query: [(String, String)] = [("default_format", format)]
        if let database { query.append(("database", database)) }
        for (name, value) in settings.sorted(by: { $0.key < $1.key }) { query.append((name, value)) }
        for (name, value) in parameters.sorted(by: { $0.key < $1.key }) {
            query.append(("param_" + name, Self.escapeParameter(value)))
        }
        let url = endpoint.address + "/?" + query.map { "\(URLEncoding.component($0.0))=\(URLEncoding.component($0.1))" }
            .joined(separator: "&")
        let request = HTTPRequest(
            method: "POST", url: url,
            headers: [
                HTTPHeader("X-ClickHouse-User", endpoint.username),
                HTTPHeader("X-ClickHouse-Key", endpoint.password),
                HTTPHeader("Content-Type", "text/plain; charset=UTF-8"),
            ],
            body: .bytes(Array(sql.utf8)), connectTimeout: endpoint.connectTimeout, idleTimeout: endpoint.timeout,
            tls: endpoint.tls)
        let response: HTTPResponse
        do {
            response = try await http.send(request, sink: sink)
        } catch {
            throw mapTransport(error, query: sql)
        }
        guard response.isSuccess else { throw serverError(response, query: sql) }
        return response
    }

    /// ClickHouse reads query parameter values in its escaped (TabSeparated) text format: a
    /// backslash, tab or newline in a value must be escaped or the value is refused (Code 457).
    static func escapeParameter(_ value: String) -> String {
        var out = ""
        out.reserveCapacity(value.utf8.count)
        for character in value.unicodeScalars {
            switch character {
            case "\\": out += "\\\\"
            case "\t": out += "\\t"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\0": out += "\\0"
            default: out.unicodeScalars.append(character)
            }
        }
        return out
    }

    private func mapTransport(_ error: any Error, query: String?) -> ClickHouseError {
        switch error {
        case let error as ClickHouseError:
            return error
        case let error as HTTPError:
            var hint = ""
            if error.noAnswer && !endpoint.secure {
                hint = ". No HTTP answer came: if that port is the server's HTTPS port, set clickhouse.secure: true (CLICKHOUSE_SECURE)"
            } else if error.noAnswer && endpoint.tls.clientCertificate == nil {
                hint = ". No answer came: if the server requires a client certificate, set clickhouse.tls_cert and clickhouse.tls_key (CLICKHOUSE_TLS_CERT / CLICKHOUSE_TLS_KEY)"
            }
            return ClickHouseError(kind: .transport(error.kind), message: error.message + hint, query: query,
                                   server: endpoint.address)
        case is CancellationError:
            return ClickHouseError(kind: .cancelled, message: "cancelled", query: query, server: endpoint.address)
        default:
            return ClickHouseError(kind: .badResponse, message: "\(error)", query: query, server: endpoint.address)
        }
    }

    func serverError(_ response: HTTPResponse, query: String) -> ClickHouseError {
        let parsed = ClickHouseExceptionText(response.bodyText)
        let code = response.header("X-ClickHouse-Exception-Code").flatMap { Int($0) } ?? parsed.code
        let message = parsed.message.isEmpty ? "HTTP \(response.status) with no message" : parsed.message
        if [516, 192, 193, 194].contains(code) || ((response.status == 401 || response.status == 403) && code == nil) {
            return ClickHouseError(kind: .authentication, message: message, query: nil, server: endpoint.address,
                                   httpStatus: response.status)
        }
        guard let code else {
            let retryable = [502, 503, 504].contains(response.status)
            return ClickHouseError(
                kind: retryable ? .transport(.connectionLost) : .badResponse,
                message: "HTTP \(response.status): \(message.prefix(500))", query: query, server: endpoint.address,
                httpStatus: response.status)
        }
        return ClickHouseError(kind: .server(code: code, name: parsed.name ?? ""), message: message, query: query,
                               server: endpoint.address, httpStatus: response.status)
    }
}

/// The parts of an exception text: `Code: 60. DB::Exception: <message>. (UNKNOWN_TABLE) (version 26.9.1.1)`,
/// or the older `Code: 47, e.displayText() = DB::Exception: <message>`.
struct ClickHouseExceptionText {
    var code: Int?
    var name: String?
    var message: String

    init(_ raw: String) {
        var text = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.hasPrefix("__exception__") {
            text = text.split(separator: "\n").dropFirst().first { $0.hasPrefix("Code: ") }.map(String.init) ?? text
        }
        if text.hasPrefix("Code: ") {
            let digits = text.dropFirst(6).prefix(while: \.isNumber)
            code = Int(digits)
        }
        if let range = text.range(of: " (version ", options: .backwards) {
            text = String(text[..<range.lowerBound])
        }
        if text.hasSuffix(")"), let open = text.range(of: " (", options: .backwards) {
            let candidate = text[open.upperBound..<text.index(before: text.endIndex)]
            if !candidate.isEmpty, candidate.allSatisfy({ $0.isUppercase || $0.isNumber || $0 == "_" }) {
                name = String(candidate)
                text = String(text[..<open.lowerBound])
            }
        }
        for marker in ["DB::Exception: ", "e.displayText() = "] {
            if let range = text.range(of: marker) { text = String(text[range.upperBound...]) }
        }
        message = text
    }
}

/// Feeds a streamed body through a `LineSplitter`, numbering lines and catching an exception
/// written after the rows started. Touched only by the transfer's thread, then by the caller
/// after the transfer ended.
private final class LineState: @unchecked Sendable {
    private var splitter = LineSplitter()
    private var lineNumber = 0
    private var exceptionText: [UInt8]?
    private let onLine: @Sendable (UnsafeRawBufferPointer, Int) throws -> Void

    init(onLine: @escaping @Sendable (UnsafeRawBufferPointer, Int) throws -> Void) { self.onLine = onLine }

    func feed(_ chunk: UnsafeRawBufferPointer, sql: String, server: String) throws {
        try splitter.feed(chunk) { line in try handle(line) }
    }

    func finish(sql: String, server: String) throws(ClickHouseError) {
        do {
            try splitter.finish { line in try handle(line) }
        } catch let error as ClickHouseError {
            throw error
        } catch {
            throw ClickHouseError(kind: .badResponse, message: "\(error)", query: sql, server: server)
        }
        if let exceptionText {
            let parsed = ClickHouseExceptionText(String(decoding: exceptionText, as: UTF8.self))
            throw ClickHouseError(kind: .server(code: parsed.code ?? 0, name: parsed.name ?? ""),
                                  message: "the query failed after sending \(lineNumber) rows: \(parsed.message)",
                                  query: sql, server: server)
        }
    }

    private func handle(_ line: UnsafeRawBufferPointer) throws {
        if exceptionText != nil {
            exceptionText?.append(0x0A)
            exceptionText?.append(contentsOf: line)
            return
        }
        if StreamedException.isStart(line) {
            exceptionText = Array(line)
            return
        }
        lineNumber += 1
        try onLine(line, lineNumber)
    }
}

/// Collects rows on the transfer's thread; read by the caller after the transfer ended.
/// The continuation that ends the transfer orders the two, so no lock is needed.
final class RowCollector<T>: @unchecked Sendable {
    private var rows: [T] = []
    func append(_ row: T) { rows.append(row) }
    func take() -> [T] { defer { rows = [] }; return rows }
}

/// Percent-encoding for URL query components (RFC 3986 unreserved characters kept).
public enum URLEncoding {
    static let unreserved: Set<UInt8> = Set(
        Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8))

    /// Encodes every byte outside the unreserved set, `/` included.
    public static func component(_ text: String) -> String {
        encode(text, keepSlash: false)
    }

    /// Encodes a path, keeping `/` between segments.
    public static func path(_ text: String) -> String {
        encode(text, keepSlash: true)
    }

    private static func encode(_ text: String, keepSlash: Bool) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if unreserved.contains(byte) || (keepSlash && byte == UInt8(ascii: "/")) {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }
}
