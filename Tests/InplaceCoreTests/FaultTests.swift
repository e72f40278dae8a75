import Foundation
import Testing

@testable import InplaceCore

/// Faults during a restore from S3: the real `inplace` binary, the real S3 behind a proxy that
/// fails on purpose (tools/faultproxy.py), the real ClickHouse engine and file system. Each test
/// checks the exit code and message, that nothing was lost or attached half-written, and that the
/// journal lets the run finish once the fault is gone (`resume` after an interruption, `journal
/// replay --failed` after failed steps, as README.md documents). Serialized: the tests share one
/// backup and its database.
@Suite("Faults during a restore: S3 failing, slow, cut off or gone, a full staging disk, signals",
       .enabled(if: TestBed.shouldRun), .serialized)
struct FaultTests {
    @Test("S3 answers 503 to the first part downloads: S3 requests are retried with backoff, the restore completes")
    func transient503() async throws {
        let run = try await FaultRun.start()
        defer { run.finish() }
        try await run.proxy.set(.fail(status: 503, count: 3), only: run.partDownloads)
        let result = try await run.restore()
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try await run.differences() == [])
        // Each retry is logged (on stderr), naming the answer.
        #expect(result.stderr.components(separatedBy: "retrying in").count - 1 == 3, "\(result.stderr)")
        #expect(result.stderr.contains("HTTP 503"), "\(result.stderr)")
        let log = try await run.proxy.stats().log
        let failed = log.filter { $0.fault == "fail 503" }
        #expect(failed.count == 3)
        for failure in failed {
            // Retried after the first backoff (100-200 ms with S3's default policy), and answered.
            let retry = log.first { $0.path == failure.path && $0.t > failure.t && $0.method == "GET" }
            #expect(retry != nil, "\(failure.path) was not asked again")
            if let retry { #expect(retry.t - failure.t >= 0.09, "retried after \(retry.t - failure.t) s") }
        }
    }

    @Test("S3 answers 500 longer than the S3 client's retries: the step is retried (attempt 2 in the journal) and completes")
    func transient500PastClientRetries() async throws {
        let run = try await FaultRun.start()
        defer { run.finish() }
        // One download at a time: the first part's GET gets all 8 failures, 6 of them its S3
        // client's attempts, then the step's second attempt sees 2 more and succeeds.
        try await run.proxy.set(.fail(status: 500, count: 8), only: run.partDownloads)
        let result = try await run.restore(concurrency: 1)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try await run.differences() == [])
        #expect(try await run.proxy.stats().faults == 8)
        let downloads = try await run.events().filter { $0.kind == .downloadPart }
        let retried = downloads.filter { $0.attempts == 2 }
        #expect(retried.count == 1, "attempts: \(downloads.map(\.attempts))")
        if let event = retried.first {
            let details = try await Journal(path: run.journal, readOnly: true).transitions(event.id).compactMap(\.detail)
            #expect(details.contains { $0.contains("attempt 1 failed, retrying") && $0.contains("InternalError (HTTP 500)") && $0.contains("after 6 attempts") },
                    "\(details)")
        }
    }

    @Test("S3 answers 500 to every part download: exit 12, failed steps, kept parts intact; replay completes once S3 is back")
    func persistent500() async throws {
        let run = try await FaultRun.start()
        defer { run.finish() }
        try await run.proxy.set(.fail(status: 500), only: run.partDownloads)
        let result = try await run.restore()
        #expect(result.status == 12, "\(result.stderr)")
        let summary = run.summary(result)
        #expect(summary?.state == .partlyFailed)
        #expect(summary?.failed == 10, "4 downloads, their 4 attaches, the drop withheld, and the table not verified")
        #expect(summary?.failures.contains { $0.contains("drop-part") && $0.contains("not dropped") } == true,
                "\(summary?.failures ?? [])")
        #expect(summary?.failures.contains { $0.contains("download-part") && $0.contains("S3 InternalError (HTTP 500)") && $0.contains("after 6 attempts") } == true,
                "\(summary?.failures ?? [])")
        #expect(try await run.problemsAfterFailure() == [])

        try await run.proxy.set(.pass)
        // Resume carries on started and interrupted steps only; failed ones wait for a replay,
        // and resume says so.
        let resumed = try await CLI.run(["resume", "--config", run.config, "--journal", run.journal], environment: run.environment())
        #expect(resumed.status == 12 && resumed.stdout.contains("journal replay 1 --failed"), "\(resumed.stdout)")
        try await run.replayToBackup()
    }

    @Test("bodies cut off twice: the S3 client resumes the GET with a ranged request and the restore completes")
    func truncatedThenResumed() async throws {
        let run = try await FaultRun.start()
        defer { run.finish() }
        try await run.proxy.set(.truncate(after: 256 << 10, count: 2), only: run.partDownloads)
        let result = try await run.restore()
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try await run.differences() == [])
        let log = try await run.proxy.stats().log
        #expect(log.filter { $0.fault?.hasPrefix("truncate") == true }.count == 2)
        #expect(log.contains { $0.range == "bytes=\(256 << 10)-" && $0.status == 206 }, "no ranged GET continued a cut body")
    }

    @Test("every body cut off: exit 12 naming the cut transfer, no half part in detached/ or staging; replay completes")
    func truncatedAlways() async throws {
        let run = try await FaultRun.start()
        defer { run.finish() }
        // 256 KiB per attempt: six ranged attempts fetch 1.5 MB of a 3.3 MB part, then the step fails.
        try await run.proxy.set(.truncate(after: 256 << 10), only: run.partDownloads)
        let result = try await run.restore()
        #expect(result.status == 12, "\(result.stderr)")
        let failures = run.summary(result)?.failures ?? []
        #expect(failures.filter { $0.hasPrefix("download-part") }.count == 4, "\(failures)")
        #expect(failures.contains { $0.contains("download failed") }, "\(failures)")
        #expect(try await run.problemsAfterFailure() == [])

        try await run.proxy.set(.pass)
        try await run.replayToBackup()
    }

    @Test("S3 slow (2 MB/s per response): the restore still completes")
    func slow() async throws {
        let run = try await FaultRun.start()
        defer { run.finish() }
        try await run.proxy.set(.slow(bytesPerSecond: 2_000_000), only: run.partDownloads)
        let started = ContinuousClock.now
        let result = try await run.restore()
        let elapsed = ContinuousClock.now - started
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try await run.differences() == [])
        #expect(try await run.proxy.stats().log.filter { $0.fault?.hasPrefix("slow") == true }.count == 4)
        #expect(elapsed > .milliseconds(1500), "3.3 MB parts at 2 MB/s took \(elapsed)")
    }

    @Test("S3 gone mid-download (connections closed, then refused): exit 12, failed steps; replay completes once it is back")
    func stoppedMidDownload() async throws {
        let run = try await FaultRun.start()
        defer { run.finish() }
        try await run.proxy.set(.slow(bytesPerSecond: 1_000_000), only: run.partDownloads)
        let restore = try BackgroundCommand(run.restoreArguments, environment: run.environment(), folder: run.folder)
        let midway = try await waitUntil(.seconds(30)) { try await run.proxy.stats().bytesRelayed > 1 << 20 }
        #expect(midway, "no part download got under way")
        try await run.proxy.set(.stopped)
        let result = try await restore.wait(timeout: .seconds(90))
        #expect(result.status == 12, "\(result.stderr)")
        let failures = run.summary(result)?.failures ?? []
        #expect(failures.filter { $0.hasPrefix("download-part") }.count == 4, "\(failures)")
        #expect(failures.allSatisfy { !$0.hasPrefix("download-part") || $0.contains("Transport") || $0.contains("download failed") },
                "\(failures)")
        #expect(try await run.problemsAfterFailure() == [])

        try await run.proxy.set(.pass)
        try await run.replayToBackup()
    }

    @Test("SIGINT or SIGTERM mid-download: exit 13, steps in flight interrupted, resume completes", arguments: [SIGINT, SIGTERM])
    func signalled(_ signal: Int32) async throws {
        let run = try await FaultRun.start()
        defer { run.finish() }
        try await run.proxy.set(.slow(bytesPerSecond: 1_000_000), only: run.partDownloads)
        let restore = try BackgroundCommand(run.restoreArguments, environment: run.environment(), folder: run.folder)
        let midway = try await waitUntil(.seconds(30)) { try await run.proxy.stats().bytesRelayed > 1 << 20 }
        #expect(midway, "no part download got under way")
        kill(restore.process.processIdentifier, signal)
        let result = try await restore.wait(timeout: .seconds(30))
        #expect(result.status == 13, "\(result.stderr)")
        #expect(result.stderr.contains("signal \(signal): stopping"))
        let journal = try Journal(path: run.journal, readOnly: true)
        #expect(try await journal.run(1)?.state == .interrupted)
        let events = try await journal.events(1)
        #expect(events.allSatisfy { $0.state != .failed }, "\(events.filter { $0.state == .failed }.map(\.lastError))")
        #expect(events.contains { $0.kind == .downloadPart && $0.state == .interrupted })
        #expect(try await run.leftovers(allowDownloaded: true) == [])

        try await run.proxy.set(.pass)
        let resumed = try await run.resume()
        #expect(resumed.status == 0, "\(resumed.stdout) \(resumed.stderr)")
        #expect(try await run.differences() == [])
    }
}
