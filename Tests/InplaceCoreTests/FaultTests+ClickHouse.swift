import Foundation
import Testing

@testable import InplaceCore

extension TestBed {
    /// Tests that stop the shared ClickHouse server run only when this is set (tools/test).
    static var disruptiveAllowed: Bool { ProcessInfo.processInfo.environment["INPLACE_TEST_DISRUPTIVE"] == "1" }
}

/// Kills the test bed's ClickHouse server mid-restore. Every other test that uses the engine would
/// fail while it is down, so this suite runs only with INPLACE_TEST_DISRUPTIVE=1, which tools/test
/// sets for a second `swift test` run of this suite alone, after the main run.
@Suite("Faults: the ClickHouse server killed mid-restore",
       .enabled(if: TestBed.shouldRun && TestBed.disruptiveAllowed), .serialized)
struct ClickHouseKillTests {
    static func testbed(_ command: String) throws -> CLI.Result {
        try runProgram(TestBed.repositoryRoot.appendingPathComponent("tools/testbed").path, [command])
    }

    @Test("ClickHouse killed while parts are attached: failed steps, exit 12; after its restart replay completes, no row twice, no part lost")
    func killedWhileAttaching() async throws {
        let run = try await FaultRun.start(.forRestart)
        defer { run.finish() }
        // One download at a time at 2 MB/s: an attach every 1.7 s or so.
        try await run.proxy.set(.slow(bytesPerSecond: 2_000_000), only: run.partDownloads)
        let restore = try BackgroundCommand(run.restoreArguments, environment: run.environment(concurrency: 1),
                                            folder: run.folder)
        let attaching = try await waitUntil(.seconds(60)) {
            (try? await run.events().contains { $0.kind == .attachPart && $0.state == .done }) == true
        }
        #expect(attaching, "no part was attached")
        // Aim the kill at the next attach in flight; kill anyway when none is seen in time.
        let midAttach = try await waitUntil(.seconds(5), every: .milliseconds(5)) {
            (try? await run.events().contains { $0.kind == .attachPart && $0.state == .started }) == true
        }
        let killed = try Self.testbed("kill-clickhouse")
        defer { _ = try? Self.testbed("start-clickhouse") }
        #expect(killed.status == 0, "\(killed.stderr)")
        let result = try await restore.wait(timeout: .seconds(120))
        #expect(result.status == 12, "mid-attach: \(midAttach)\n\(result.stdout)\n\(result.stderr)")
        let failures = run.summary(result)?.failures ?? []
        #expect(failures.contains { $0.hasPrefix("attach-part") && $0.contains("Connection refused") || $0.contains("connect") },
                "\(failures)")

        let started = try Self.testbed("start-clickhouse")
        #expect(started.status == 0, "\(started.stderr)")
        try await run.proxy.set(.pass)
        let events = try await run.events()
        #expect(events.allSatisfy { $0.state == .done || $0.state == .failed || $0.state == .pending },
                "\(events.map { "\($0.kind.rawValue) \($0.state.rawValue)" })")
        try await run.replayToBackup()
        // Every attach ended done exactly once, and no done download was fetched again.
        let journal = try Journal(path: run.journal, readOnly: true)
        for event in try await journal.events(1) {
            let steps = try await journal.transitions(event.id).map(\.to)
            #expect(steps.filter { $0 == .done }.count == 1, "\(event.kind.rawValue) \(event.part ?? ""): \(steps)")
        }
    }
}
