import Foundation
import InplaceCore
import Testing

/// A TCP socket that listens but never accepts or answers: the kernel completes the handshake,
/// then nothing is ever sent. Real sockets; it stands in for a hung server, which the test bed
/// cannot be made into on purpose.
final class SilentServer {
    let port: Int
    private let fd: Int32

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else { throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }
}

@Suite("HTTP over libcurl")
struct HTTPClientTests {
    @Test("a server that never answers fails with a timeout after the idle limit")
    func idleTimeout() async throws {
        let server = try SilentServer()
        let client = HTTPClient()
        let started = ContinuousClock.now
        do {
            _ = try await client.send(HTTPRequest(url: "http://127.0.0.1:\(server.port)/", idleTimeout: .seconds(1)))
            Issue.record("a silent server answered")
        } catch let error as HTTPError {
            #expect(error.kind == .timedOut)
            #expect(error.isRetryable)
        }
        // Not before the limit; and long before the 60 s a hang would take (the bound is loose:
        // other tests load both cores meanwhile).
        let elapsed = ContinuousClock.now - started
        #expect(elapsed >= .milliseconds(900) && elapsed < .seconds(20))
    }

    @Test("cancelling the task stops a transfer in flight within a moment")
    func cancellationStopsTransfer() async throws {
        let server = try SilentServer()
        let client = HTTPClient()
        let url = "http://127.0.0.1:\(server.port)/"
        let task = Task {
            try await client.send(HTTPRequest(url: url, idleTimeout: .seconds(90)))
        }
        try await Task.sleep(for: .milliseconds(200))
        let started = ContinuousClock.now
        task.cancel()
        let result = await task.result
        // The transfer's own limit is 90 s: ending far sooner means the cancellation stopped it
        // (the bound leaves room for pool threads held by other tests' child processes).
        #expect(ContinuousClock.now - started < .seconds(30))
        #expect(throws: CancellationError.self) { try result.get() }
    }

    @Test("blocked transfers never stall the cooperative thread pool")
    func poolStaysResponsive() async throws {
        let server = try SilentServer()
        let client = HTTPClient()
        // More hung transfers than cores, each hanging for 60 s. Were curl's blocking calls made
        // on the cooperative pool, its threads would all be held and the ticker below could not
        // run until the transfers time out. Other tests running in parallel make ticks late (the
        // command-line tests wait for their child processes on pool threads, seen to hold the
        // pool for 10 s on a 2-core machine), so the bound is on the whole ticker: 30 s, far
        // below the 60 s of the hang.
        let url = "http://127.0.0.1:\(server.port)/"
        let finished = Counter()
        let transfers = (0..<8).map { _ in
            Task {
                _ = try? await client.send(HTTPRequest(url: url, idleTimeout: .seconds(60)))
                finished.increment()
            }
        }
        try await Task.sleep(for: .milliseconds(200))
        let started = ContinuousClock.now
        for _ in 0..<20 { try await Task.sleep(for: .milliseconds(10)) }
        let ticking = ContinuousClock.now - started
        #expect(finished.value == 0, "the transfers were still hanging while the ticker ran")
        for transfer in transfers { transfer.cancel() }
        for transfer in transfers { _ = await transfer.value }
        #expect(ticking < .seconds(30), "20 ticks of 10 ms took \(ticking)")
    }

    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var count = 0
        func increment() { lock.withLock { count += 1 } }
        var value: Int { lock.withLock { count } }
    }

    @Test("a refused connection is reported at once as couldNotConnect")
    func refusedConnection() async throws {
        let client = HTTPClient()
        do {
            _ = try await client.send(HTTPRequest(url: "http://127.0.0.1:1/x"))
            Issue.record("port 1 answered")
        } catch let error as HTTPError {
            #expect(error.kind == .couldNotConnect)
            #expect(error.url == "http://127.0.0.1:1/x")
        }
    }

    @Test("a body larger than the memory limit fails rather than growing without bound",
          .enabled(if: TestBed.shouldRun))
    func memoryLimit() async throws {
        let bed = try TestBed.load()
        let client = HTTPClient()
        let url = "http://\(try bed.value("CLICKHOUSE_HOST")):\(try bed.value("CLICKHOUSE_HTTP_PORT"))/?query="
            + URLEncoding.component("SELECT repeat('x', 100000)")
        let request = HTTPRequest(url: url, headers: [
            HTTPHeader("X-ClickHouse-User", try bed.value("CLICKHOUSE_USERNAME")),
            HTTPHeader("X-ClickHouse-Key", bed.clickHousePassword),
        ])
        let small = try? await client.send(request, sink: .memory(limit: 1000))
        #expect(small == nil)
        let large = try await client.send(request, sink: .memory(limit: 1 << 20))
        #expect(large.status == 200)
        #expect(large.body.count == 100_001)
    }
}
