import Foundation

/// Runs blocking work (curl transfers, libarchive extraction, fsync) on threads of its own, never
/// on Swift's cooperative pool: on a 2-core machine one blocking call there stalls every task.
///
/// 1. `run` enqueues a job and suspends the calling task on a continuation.
/// 2. An idle worker takes the job; when none is idle a new thread is started, so jobs never wait
///    behind each other (callers bound their own concurrency).
/// 3. A worker that stays idle for `idleTimeout` exits.
public final class BlockingThreadPool: @unchecked Sendable {
    public static let shared = BlockingThreadPool(name: "inplace.blocking")

    private let name: String
    private let idleTimeout: TimeInterval
    // Guarded by `condition`.
    private let condition = NSCondition()
    private var jobs: [() -> Void] = []
    private var idleWorkers = 0
    private var workerCount = 0

    public init(name: String, idleTimeout: TimeInterval = 30) {
        self.name = name
        self.idleTimeout = idleTimeout
    }

    /// Runs `work` on a pool thread and returns its result to the calling task.
    public func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            submit {
                do { continuation.resume(returning: try work()) } catch { continuation.resume(throwing: error) }
            }
        }
    }

    /// Runs `work` on a pool thread; for work that cannot fail.
    public func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
            submit { continuation.resume(returning: work()) }
        }
    }

    /// Threads alive now (for tests and diagnostics).
    public var threadCount: Int {
        condition.lock()
        defer { condition.unlock() }
        return workerCount
    }

    private func submit(_ job: @escaping () -> Void) {
        condition.lock()
        jobs.append(job)
        if idleWorkers > jobs.count - 1 {
            condition.signal()
            condition.unlock()
            return
        }
        workerCount += 1
        condition.unlock()
        let thread = Thread { [self] in workerLoop() }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }

    private func workerLoop() {
        condition.lock()
        while true {
            if !jobs.isEmpty {
                let job = jobs.removeFirst()
                condition.unlock()
                job()
                condition.lock()
                continue
            }
            idleWorkers += 1
            let signalled = condition.wait(until: Date(timeIntervalSinceNow: idleTimeout))
            idleWorkers -= 1
            if !signalled && jobs.isEmpty {
                workerCount -= 1
                condition.unlock()
                return
            }
        }
    }
}
