import CCurl
import Foundation
import Synchronization

/// One transfer on one easy handle: the options, the callbacks' state, and the mapping of curl's
/// result to `HTTPResponse` or `HTTPError`. Its mutable state is touched only by the thread that
/// runs `perform` (curl calls back on that thread); `cancel` only flips an atomic flag.
final class CurlTransfer: @unchecked Sendable {
    private let handle: CurlEasyHandle
    private let request: HTTPRequest
    private let sink: HTTPResponseSink
    private let bufferSize: Int
    private let cancelled = Atomic<Bool>(false)

    private var status = 0
    /// Whether a status line arrived (a plain-HTTP port that expects TLS sends none).
    private var answered = false
    private var headers: [HTTPHeader] = []
    private var memoryBody: [UInt8] = []
    private var errorBody: [UInt8] = []
    private var delivered: Int64 = 0
    private var sinkError: (any Error)?
    private var sinkFileDescriptor: Int32 = -1
    private var uploadBytes: [UInt8] = []
    private var uploadPosition = 0
    private var uploadFileDescriptor: Int32 = -1
    private var uploadOffset: Int64 = 0
    private var uploadRemaining: Int64 = 0
    private var uploadError: String?
    private var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)

    static let errorBodyLimit = 64 * 1024

    init(handle: CurlEasyHandle, request: HTTPRequest, sink: HTTPResponseSink, bufferSize: Int) {
        self.handle = handle
        self.request = request
        self.sink = sink
        self.bufferSize = bufferSize
    }

    func cancel() { cancelled.store(true, ordering: .relaxed) }

    func perform() throws -> HTTPResponse {
        let h = handle.raw
        curl_easy_reset(h)
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer {
            // The handle goes back to a cache: it must not keep pointers to this transfer's
            // error buffer, callbacks' context or header list.
            curl_easy_reset(h)
            curl_slist_free_all(headerList)
            closeFiles()
        }
        try configure(h, headerList: &headerList)
        let rc = errorBuffer.withUnsafeMutableBufferPointer { buffer -> CURLcode in
            _ = inplace_curl_setopt_pointer(h, CURLOPT_ERRORBUFFER, buffer.baseAddress)
            let context = Unmanaged.passUnretained(self).toOpaque()
            for option in [CURLOPT_WRITEDATA, CURLOPT_HEADERDATA, CURLOPT_READDATA, CURLOPT_XFERINFODATA] {
                _ = inplace_curl_setopt_pointer(h, option, context)
            }
            return withExtendedLifetime(self) { curl_easy_perform(h) }
        }
        if cancelled.load(ordering: .relaxed) { throw CancellationError() }
        if let sinkError { throw sinkError }
        guard rc == CURLE_OK else { throw transportError(rc) }
        var code = 0
        _ = inplace_curl_getinfo_long(h, CURLINFO_RESPONSE_CODE, &code)
        status = code
        if (200..<300).contains(status), case .file(let path, let append) = sink, sinkFileDescriptor < 0 {
            // An empty 2xx body still creates (or truncates) the file.
            try openSinkFile(path: path, append: append)
        }
        let success = (200..<300).contains(status)
        return HTTPResponse(
            status: status, headers: headers, body: success ? memoryBody : errorBody, bodyBytesDelivered: delivered)
    }

    // MARK: Options

    private func configure(_ h: UnsafeMutableRawPointer, headerList: inout UnsafeMutablePointer<curl_slist>?) throws {
        var failed: CURLcode = CURLE_OK
        func set(_ rc: CURLcode) { if rc != CURLE_OK && failed == CURLE_OK { failed = rc } }
        set(inplace_curl_setopt_string(h, CURLOPT_URL, request.url))
        set(inplace_curl_setopt_long(h, CURLOPT_NOSIGNAL, 1))
        // URLs are built deliberately (S3 keys may hold "../" or "//"): send the path as it is.
        set(inplace_curl_setopt_long(h, CURLOPT_PATH_AS_IS, 1))
        set(inplace_curl_setopt_long(h, CURLOPT_TCP_NODELAY, 1))
        set(inplace_curl_setopt_long(h, CURLOPT_TCP_KEEPALIVE, 1))
        set(inplace_curl_setopt_long(h, CURLOPT_BUFFERSIZE, bufferSize))
        set(inplace_curl_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, request.connectTimeout.milliseconds))
        // "Read timeout": fail when fewer than 1 byte/s moves for idleTimeout.
        set(inplace_curl_setopt_long(h, CURLOPT_LOW_SPEED_LIMIT, 1))
        set(inplace_curl_setopt_long(h, CURLOPT_LOW_SPEED_TIME, max(1, request.idleTimeout.milliseconds / 1000)))
        if let total = request.totalTimeout {
            set(inplace_curl_setopt_long(h, CURLOPT_TIMEOUT_MS, total.milliseconds))
        }
        set(inplace_curl_setopt_data_callback(h, CURLOPT_WRITEFUNCTION, curlWriteCallback))
        set(inplace_curl_setopt_data_callback(h, CURLOPT_HEADERFUNCTION, curlHeaderCallback))
        set(inplace_curl_setopt_data_callback(h, CURLOPT_READFUNCTION, curlReadCallback))
        set(inplace_curl_setopt_xferinfo_callback(h, curlProgressCallback))
        set(inplace_curl_setopt_long(h, CURLOPT_NOPROGRESS, 0))
        if isHTTPS { configureTLS(h, set) }

        let bodyLength = try prepareUpload()
        switch request.method.uppercased() {
        case "GET":
            set(inplace_curl_setopt_long(h, CURLOPT_HTTPGET, 1))
        case "HEAD":
            set(inplace_curl_setopt_long(h, CURLOPT_NOBODY, 1))
        case "PUT":
            set(inplace_curl_setopt_long(h, CURLOPT_UPLOAD, 1))
            set(inplace_curl_setopt_off(h, CURLOPT_INFILESIZE_LARGE, curl_off_t(bodyLength)))
        case "POST":
            set(inplace_curl_setopt_long(h, CURLOPT_POST, 1))
            set(inplace_curl_setopt_off(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(bodyLength)))
        default:
            set(inplace_curl_setopt_string(h, CURLOPT_CUSTOMREQUEST, request.method))
            if bodyLength > 0 {
                set(inplace_curl_setopt_long(h, CURLOPT_UPLOAD, 1))
                set(inplace_curl_setopt_off(h, CURLOPT_INFILESIZE_LARGE, curl_off_t(bodyLength)))
            }
        }

        var lines = request.headers.map { "\($0.name): \($0.value)" }
        if case .awsSigV4 = request.credentials {
            // curl 7.88 signs an "Expect:" removal line as an empty header it then does not
            // send: the server's signature differs (403). S3 servers answer 100 Continue.
        } else {
            // Do not wait a second for "100 Continue" before sending a body.
            lines.append("Expect:")
        }
        for line in lines { headerList = curl_slist_append(headerList, line) }
        set(inplace_curl_setopt_slist(h, CURLOPT_HTTPHEADER, headerList))

        switch request.credentials {
        case .none:
            break
        case .basic(let user, let password):
            set(inplace_curl_setopt_long(h, CURLOPT_HTTPAUTH, 1))  // CURLAUTH_BASIC
            set(inplace_curl_setopt_string(h, CURLOPT_USERNAME, user))
            set(inplace_curl_setopt_string(h, CURLOPT_PASSWORD, password))
        case .awsSigV4(let region, let service, let accessKey, let secretKey):
            set(inplace_curl_setopt_string(h, CURLOPT_AWS_SIGV4, "aws:amz:\(region):\(service)"))
            set(inplace_curl_setopt_string(h, CURLOPT_USERNAME, accessKey))
            set(inplace_curl_setopt_string(h, CURLOPT_PASSWORD, secretKey))
        }
        if failed != CURLE_OK {
            throw HTTPError(
                kind: .invalidRequest(String(cString: curl_easy_strerror(failed))), method: request.method,
                url: request.url, curlCode: Int32(failed.rawValue),
                message: "curl refused an option: \(String(cString: curl_easy_strerror(failed)))")
        }
    }

    private var isHTTPS: Bool { request.url.lowercased().hasPrefix("https:") }

    /// clickhouse-backup's TLS settings as curl options. CERTINFO keeps the server's certificate
    /// after a failed host-name check, so that the error can name the hosts it is for.
    private func configureTLS(_ h: UnsafeMutableRawPointer, _ set: (CURLcode) -> Void) {
        let tls = request.tls
        set(inplace_curl_setopt_long(h, CURLOPT_CERTINFO, 1))
        if !tls.verify {
            set(inplace_curl_setopt_long(h, CURLOPT_SSL_VERIFYPEER, 0))
            set(inplace_curl_setopt_long(h, CURLOPT_SSL_VERIFYHOST, 0))
        }
        if let file = tls.caFile { set(inplace_curl_setopt_string(h, CURLOPT_CAINFO, file)) }
        if let folder = tls.caDirectory {
            set(inplace_curl_setopt_string(h, CURLOPT_CAPATH, folder))
        } else if !tls.systemCAs {
            set(inplace_curl_setopt_pointer(h, CURLOPT_CAPATH, nil))  // not the built-in /etc/ssl/certs
        }
        if let certificate = tls.clientCertificate { set(inplace_curl_setopt_string(h, CURLOPT_SSLCERT, certificate)) }
        if let key = tls.clientKey { set(inplace_curl_setopt_string(h, CURLOPT_SSLKEY, key)) }
    }

    /// Sets up the request body's source and returns its length.
    private func prepareUpload() throws -> Int64 {
        switch request.body {
        case .none:
            return 0
        case .bytes(let bytes):
            uploadBytes = bytes
            return Int64(bytes.count)
        case .file(let path, let offset, let length):
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                throw HTTPError(
                    kind: .localFile(path), method: request.method, url: request.url, curlCode: 0,
                    message: "cannot read \(path) to send it: \(String(cString: strerror(errno)))")
            }
            uploadFileDescriptor = fd
            uploadOffset = offset
            uploadRemaining = length
            return length
        }
    }

    // MARK: Callbacks (run on the transfer's thread)

    fileprivate func receiveBody(_ chunk: UnsafeRawBufferPointer) -> Int {
        if status == 0 {
            var code = 0
            _ = inplace_curl_getinfo_long(handle.raw, CURLINFO_RESPONSE_CODE, &code)
            status = code
        }
        guard (200..<300).contains(status) else {
            let room = max(0, Self.errorBodyLimit - errorBody.count)
            errorBody.append(contentsOf: chunk.prefix(room))
            return chunk.count
        }
        do {
            if delivered == 0, let start = request.requiredRangeStart {
                let range = headers.last(named: "Content-Range") ?? "none"
                // "bytes 100-199/1000"
                let first = range.split(separator: " ").dropFirst().first?.split(separator: "-").first.flatMap { Int64($0) }
                guard status == 206, first == start else {
                    throw HTTPError(kind: .other, method: request.method, url: request.url, curlCode: 0,
                                    message: "asked for bytes from \(start) but the server answered HTTP \(status) with Content-Range \(range)")
                }
            }
            if delivered == 0 { request.onBodyStart?(headers) }
            switch sink {
            case .memory(let limit):
                guard memoryBody.count + chunk.count <= limit else {
                    throw HTTPError(
                        kind: .bodyTooLarge(limit: limit), method: request.method, url: request.url, curlCode: 0,
                        message: "response body exceeds \(limit) bytes")
                }
                memoryBody.append(contentsOf: chunk)
            case .file(let path, let append):
                if sinkFileDescriptor < 0 { try openSinkFile(path: path, append: append) }
                try writeAll(chunk, path: path)
            case .handler(let handler):
                try handler(chunk)
            }
        } catch {
            sinkError = error
            return 0
        }
        delivered += Int64(chunk.count)
        return chunk.count
    }

    /// One header line as curl hands it (`Name: value\r\n`), split over its bytes: Foundation's
    /// `trimmingCharacters(in:)` cost more than the rest of a small GET.
    fileprivate func receiveHeader(_ line: UnsafeRawBufferPointer) {
        let bytes = line.assumingMemoryBound(to: UInt8.self)
        func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0A }
        func trimmed(_ range: Range<Int>) -> String {
            var range = range
            while let first = range.first, isSpace(bytes[first]) { range = range.dropFirst() }
            while let last = range.last, isSpace(bytes[last]) { range = range.dropLast() }
            return String(decoding: bytes[range], as: UTF8.self)
        }
        if bytes.starts(with: "HTTP/".utf8) {
            answered = true
            headers.removeAll()  // a new response (after 100 Continue or a redirect)
            status = 0
            return
        }
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else { return }
        headers.append(HTTPHeader(trimmed(0..<colon), trimmed((colon + 1)..<bytes.count)))
    }

    fileprivate func sendBody(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        if uploadFileDescriptor >= 0 {
            let want = Int(min(Int64(buffer.count), uploadRemaining))
            if want == 0 { return 0 }
            while true {
                let got = pread(uploadFileDescriptor, buffer.baseAddress, want, off_t(uploadOffset))
                if got < 0 && errno == EINTR { continue }
                if got <= 0 {
                    uploadError = got < 0 ? String(cString: strerror(errno)) : "file is shorter than expected"
                    return inplace_curl_readfunc_abort()
                }
                uploadOffset += Int64(got)
                uploadRemaining -= Int64(got)
                return got
            }
        }
        let count = min(buffer.count, uploadBytes.count - uploadPosition)
        if count > 0 {
            uploadBytes.withUnsafeBytes { source in
                buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[uploadPosition..<uploadPosition + count]))
            }
            uploadPosition += count
        }
        return count
    }

    fileprivate var isCancelled: Bool { cancelled.load(ordering: .relaxed) }

    // MARK: Files and errors

    private func openSinkFile(path: String, append: Bool) throws {
        let flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC)
        let fd = open(path, flags, 0o600)
        guard fd >= 0 else {
            throw HTTPError(
                kind: .localFile(path), method: request.method, url: request.url, curlCode: 0,
                message: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
        sinkFileDescriptor = fd
    }

    private func writeAll(_ chunk: UnsafeRawBufferPointer, path: String) throws {
        var offset = 0
        while offset < chunk.count {
            let written = write(sinkFileDescriptor, chunk.baseAddress! + offset, chunk.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw HTTPError(
                    kind: .localFile(path), method: request.method, url: request.url, curlCode: 0,
                    message: "cannot write \(path): \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }

    private func closeFiles() {
        if sinkFileDescriptor >= 0 { close(sinkFileDescriptor); sinkFileDescriptor = -1 }
        if uploadFileDescriptor >= 0 { close(uploadFileDescriptor); uploadFileDescriptor = -1 }
    }

    private func transportError(_ rc: CURLcode) -> HTTPError {
        let detail = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        let summary = String(cString: curl_easy_strerror(rc))
        var message = detail.isEmpty ? summary : "\(summary): \(detail)"
        let code = Int32(rc.rawValue)
        let names = code == 60 || code == 51 ? certificateNames() : []
        if let problem = TLSFailure.classify(code: code, detail: detail, names: names) {
            let components = URLComponents(string: request.url)
            let host = components?.host ?? "?"
            let port = components?.port ?? (isHTTPS ? 443 : 80)
            let hostPort = (host.contains(":") ? "[\(host)]" : host) + ":\(port)"
            return HTTPError(kind: .tls(problem), method: request.method, url: request.url, curlCode: code,
                             message: TLSFailure.message(problem, host: host, hostPort: hostPort,
                                                         detail: detail.isEmpty ? summary : detail))
        }
        // A port that expects TLS drops a plain request without an answer, or answers in TLS; a
        // server that requires a client certificate may reset the connection before answering.
        let noAnswer = !answered
            && (rc == CURLE_GOT_NOTHING || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR
                || (rc == CURLE_UNSUPPORTED_PROTOCOL && detail.contains("HTTP/0.9")))
        let kind: HTTPError.Kind
        switch rc {
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY: kind = .couldNotResolveHost
        case CURLE_COULDNT_CONNECT: kind = .couldNotConnect
        case CURLE_OPERATION_TIMEDOUT: kind = .timedOut
        case CURLE_GOT_NOTHING, CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_PARTIAL_FILE, CURLE_HTTP2,
            CURLE_HTTP2_STREAM:
            kind = .connectionLost
        case _ where uploadError != nil:
            kind = .localFile(uploadError ?? "")
            message = "cannot read the request body: \(uploadError ?? summary)"
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL: kind = .invalidRequest(summary)
        default: kind = .other
        }
        return HTTPError(kind: kind, method: request.method, url: request.url, curlCode: code, message: message,
                         noAnswer: noAnswer)
    }

    /// The names the server's certificate holds (curl's CERTINFO of the first certificate).
    private func certificateNames() -> [String] {
        var info: UnsafeMutablePointer<curl_certinfo>?
        guard inplace_curl_getinfo_certinfo(handle.raw, &info) == CURLE_OK, let info, info.pointee.num_of_certs > 0,
              let first = info.pointee.certinfo?[0] else { return [] }
        var lines: [String] = []
        var node: UnsafeMutablePointer<curl_slist>? = first
        while let current = node {
            if let data = current.pointee.data { lines.append(String(cString: data)) }
            node = current.pointee.next
        }
        return TLSFailure.names(fromCertificateInfo: lines)
    }
}

private func transfer(_ userdata: UnsafeMutableRawPointer?) -> CurlTransfer {
    Unmanaged<CurlTransfer>.fromOpaque(userdata!).takeUnretainedValue()
}

private let curlWriteCallback: inplace_curl_data_callback = { pointer, size, count, userdata in
    transfer(userdata).receiveBody(UnsafeRawBufferPointer(start: pointer, count: size * count))
}

private let curlHeaderCallback: inplace_curl_data_callback = { pointer, size, count, userdata in
    transfer(userdata).receiveHeader(UnsafeRawBufferPointer(start: pointer, count: size * count))
    return size * count
}

private let curlReadCallback: inplace_curl_data_callback = { pointer, size, count, userdata in
    transfer(userdata).sendBody(into: UnsafeMutableRawBufferPointer(start: pointer, count: size * count))
}

private let curlProgressCallback: inplace_curl_xferinfo_callback = { userdata, _, _, _, _ in
    transfer(userdata).isCancelled ? 1 : 0
}

extension Duration {
    var milliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }
}
