import Foundation
import Testing

@testable import InplaceCore

extension FaultTests {
    /// Mounting a tmpfs needs root; the test machine and CI run as root. Under CI a refused mount
    /// fails the test instead of skipping it.
    @Test("the staging disk fills up: exit 12 naming the path and ENOSPC, staging emptied, nothing attached; replay completes",
          .enabled(if: TestBed.isCI || getuid() == 0))
    func stagingDiskFull() async throws {
        let run = try await FaultRun.start()
        defer { run.finish() }
        // A 1 MB tmpfs over each staging folder this run can use (named by journal, run and event
        // id; a fresh journal numbers its events from 1): too small for a 3.3 MB part. Staging
        // folders of other tests' runs are not touched.
        var mounts: [String] = []
        func unmountAll() {
            for name in mounts {
                _ = try? runProgram("/bin/umount", [run.stagingRoot + name])
                rmdir(run.stagingRoot + name)
            }
            mounts = []
        }
        defer { unmountAll() }
        for id in 1...12 {
            let name = run.stagingPrefix + "event-\(id)"
            try FileSystem.makeFolders(run.stagingRoot + name, mode: 0o700)
            let mounted = try runProgram("/bin/mount", ["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", run.stagingRoot + name])
            try #require(mounted.status == 0, "cannot mount a tmpfs (root needed): \(mounted.stderr)")
            mounts.append(name)
        }
        let result = try await run.restore()
        #expect(result.status == 12, "\(result.stderr)")
        let failures = run.summary(result)?.failures ?? []
        let downloads = failures.filter { $0.hasPrefix("download-part") }
        #expect(downloads.count == 4, "\(failures)")
        #expect(downloads.allSatisfy { $0.contains("No space left on device") && $0.contains(run.stagingRoot + run.stagingPrefix) },
                "\(downloads)")
        for name in mounts {
            let inside = (try? FileManager.default.contentsOfDirectory(atPath: run.stagingRoot + name)) ?? []
            #expect(inside.isEmpty, "staging \(name) keeps \(inside)")
        }
        #expect(try await run.problemsAfterFailure(mounts: Set(mounts)) == [])
        let failedIDs = try await run.events().filter { $0.kind == .downloadPart && $0.state == .failed }.map(\.id)
        #expect(failedIDs.count == 4 && failedIDs.allSatisfy { (1...12).contains($0) }, "\(failedIDs)")

        unmountAll()
        try await run.replayToBackup()
    }

    @Test("S3 client: 500, 503 and 429 are retried with growing pauses, 403 and 404 are not, and running out of attempts says so")
    func clientRetriesServerErrors() async throws {
        let bed = try TestBed.load()
        let proxy = try FaultProxy(upstream: try bed.value("S3_ENDPOINT"))
        defer { proxy.stop() }
        let key = "it/\(TestBed.uniqueName("retry"))/object"
        try await bed.s3().put(key, bytes: Array("hello".utf8))
        var config = try bed.s3Config()
        config.endpoint = proxy.endpoint
        config.retry = RetryPolicy(maxAttempts: 4, baseDelay: .milliseconds(100), maxDelay: .seconds(1))
        let client = S3Client(config: config)
        let path = "/\(try bed.value("S3_BUCKET"))/\(key)"
        func gets() async throws -> [FaultProxy.Request] {
            try await proxy.stats().log.filter { $0.path == path && $0.method == "GET" }
        }

        for status in [500, 503, 429] {
            try await proxy.reset()
            try await proxy.set(.fail(status: status, count: 3), only: FaultProxy.Filter(pathPrefix: path))
            #expect(try await client.getBytes(key) == Array("hello".utf8))
            let seen = try await gets()
            #expect(seen.map(\.status) == [status, status, status, 200])
            // The pause after attempt n: between half and all of min(1 s, 100 ms * 2^(n-1)).
            for n in seen.indices.dropFirst() {
                let pause = seen[n].t - seen[n - 1].t
                let ceiling = min(1.0, 0.1 * Double(1 << (n - 1)))
                // The upper bound is loose: a loaded 2-core machine delays the proxy's own log.
                #expect(pause >= ceiling / 2 - 0.005 && pause < ceiling + 3, "\(status): pause \(n) took \(pause) s")
            }
        }

        // Out of attempts: the last answer's error, saying how many attempts were made.
        try await proxy.reset()
        try await proxy.set(.fail(status: 503), only: FaultProxy.Filter(pathPrefix: path))
        do {
            _ = try await client.getBytes(key)
            Issue.record("a GET answered 503 every time succeeded")
        } catch {
            #expect(error.kind == .throttled && error.httpStatus == 503 && error.attempts == 4)
            #expect("\(error)".contains("SlowDown (HTTP 503)") && "\(error)".contains("after 4 attempts"), "\(error)")
        }
        #expect(try await gets().count == 4)

        for status in [403, 404] {
            try await proxy.reset()
            try await proxy.set(.fail(status: status, count: 1), only: FaultProxy.Filter(pathPrefix: path))
            do {
                _ = try await client.getBytes(key)
                Issue.record("a GET answered \(status) succeeded")
            } catch {
                #expect(error.attempts == 1 && error.httpStatus == status)
            }
            #expect(try await gets().count == 1, "\(status) was retried")
        }

        // A streamed GET into a file (as directory-format parts are fetched) retries 5xx as well.
        try await proxy.reset()
        try await proxy.set(.fail(status: 503, count: 2), only: FaultProxy.Filter(pathPrefix: path))
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        try await client.get(key, to: .file(path: folder.path("object")))
        #expect(try String(contentsOfFile: folder.path("object"), encoding: .utf8) == "hello")
        #expect(try await gets().map(\.status) == [503, 503, 200])
        try await proxy.set(.pass)
        try await bed.s3().delete(key)
    }
}
