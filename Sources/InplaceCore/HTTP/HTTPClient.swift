import CCurl
import Foundation
import Synchronization

/// HTTP over libcurl that never blocks Swift's cooperative thread pool.
///
/// 1. `send` takes an idle curl easy handle from the client's cache (a reused handle keeps its
///    connections alive, so a stream of small ClickHouse queries does not reconnect each time).
/// 2. The transfer runs with `curl_easy_perform` on a `BlockingThreadPool` thread; the calling
///    task waits on a continuation.
/// 3. curl calls back with headers, body chunks (routed to the request's sink, or kept in memory
///    when the status is not 2xx) and progress; the progress callback aborts the transfer once
///    the task is cancelled.
/// 4. The handle goes back to the cache; the result or a typed `HTTPError` returns to the task.
public final class HTTPClient: Sendable {
    private let pool: BlockingThreadPool
    private let idleHandles = Mutex<[CurlEasyHandle]>([])
    private let maxIdleHandles: Int
    /// Bytes curl reads from the socket per call; larger buffers cut per-chunk overhead on big GETs.
    private let receiveBufferSize: Int

    public init(pool: BlockingThreadPool = .shared, maxIdleHandles: Int = 64, receiveBufferSize: Int = 512 * 1024) {
        _ = curlGlobalInit
        self.pool = pool
        self.maxIdleHandles = maxIdleHandles
        self.receiveBufferSize = receiveBufferSize
    }

    /// Sends `request`. A non-2xx status is returned as a response (with its body in memory,
    /// capped at 64 KiB), not thrown; transport failures throw `HTTPError`, cancellation throws
    /// `CancellationError`, and an error thrown by a `.handler` sink is rethrown as it is.
    public func send(_ request: HTTPRequest, sink: HTTPResponseSink = .smallBody) async throws -> HTTPResponse {
        try Task.checkCancellation()
        let handle = takeHandle()
        let transfer = CurlTransfer(handle: handle, request: request, sink: sink, bufferSize: receiveBufferSize)
        defer { returnHandle(handle) }
        return try await withTaskCancellationHandler {
            try await pool.run { try transfer.perform() }
        } onCancel: {
            transfer.cancel()
        }
    }

    private func takeHandle() -> CurlEasyHandle {
        if let handle = idleHandles.withLock({ $0.popLast() }) { return handle }
        return CurlEasyHandle()
    }

    private func returnHandle(_ handle: CurlEasyHandle) {
        idleHandles.withLock { handles in
            if handles.count < maxIdleHandles { handles.append(handle) }
        }
    }
}

private let curlGlobalInit: Void = {
    // CURL_GLOBAL_ALL
    curl_global_init(3)
}()

/// Owns one `CURL*`. Used by one transfer at a time (the client's cache hands it out).
final class CurlEasyHandle: @unchecked Sendable {
    let raw: UnsafeMutableRawPointer

    init() {
        guard let raw = curl_easy_init() else { fatalError("curl_easy_init failed: out of memory") }
        self.raw = raw
    }

    deinit { curl_easy_cleanup(raw) }
}
