/// Exponential backoff with jitter for operations that can fail for a moment (S3 5xx and 429,
/// timeouts, a restarting ClickHouse). Attempt n (from 1) waits, before attempt n+1, a random
/// time between half and all of `min(maxDelay, baseDelay * 2^(n-1))`, so that many workers that
/// failed together do not retry together.
public struct RetryPolicy: Sendable {
    public var maxAttempts: Int
    public var baseDelay: Duration
    public var maxDelay: Duration

    public init(maxAttempts: Int = 5, baseDelay: Duration = .milliseconds(200), maxDelay: Duration = .seconds(10)) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    public static let none = RetryPolicy(maxAttempts: 1)

    /// The pause after failed attempt `attempt` (1-based).
    public func delay(afterAttempt attempt: Int) -> Duration {
        let exponent = min(max(attempt - 1, 0), 30)
        let ceiling = min(maxDelay, baseDelay * (1 << exponent))
        let half = ceiling / 2
        return half + half * Double.random(in: 0...1)
    }

    /// Runs `body` until it succeeds, throws an error `isRetryable` rejects, or attempts run out
    /// (then the last error is thrown). Cancellation is never retried.
    public func run<T>(
        isRetryable: (any Error) -> Bool,
        onRetry: (_ error: any Error, _ attempt: Int, _ delay: Duration) -> Void = { _, _, _ in },
        _ body: (_ attempt: Int) async throws -> T
    ) async throws -> T {
        var attempt = 1
        while true {
            do {
                return try await body(attempt)
            } catch {
                if error is CancellationError || attempt >= maxAttempts || !isRetryable(error) { throw error }
                let pause = delay(afterAttempt: attempt)
                onRetry(error, attempt, pause)
                try await Task.sleep(for: pause)
                attempt += 1
            }
        }
    }
}
