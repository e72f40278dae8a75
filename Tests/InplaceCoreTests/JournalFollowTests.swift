import Foundation
import Testing

@testable import InplaceCore

/// `journal show --follow` under a real terminal (tmux), reading a real journal that this test
/// process writes meanwhile, as a restore would.
@Suite("journal show --follow in tmux")
struct JournalFollowTests {
    static var tmux: String? {
        ["/usr/bin/tmux", "/bin/tmux"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    @discardableResult
    static func tmux(_ arguments: [String]) throws -> CLI.Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tmux ?? "tmux")
        process.arguments = arguments
        return try CLI.runToEnd(process)
    }

    @Test("the screen shows the counts moving, then the final state, and the command ends with the run")
    func follows() async throws {
        guard Self.tmux != nil else {
            // tmux is a Debian package tools/setup installs: missing under CI is a failure.
            if TestBed.isCI { Issue.record("tmux is missing: tools/setup installs it") }
            return
        }
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path("journal.sqlite")
        let journal = try Journal(path: path)
        var events: [NewEvent] = []
        for table in ["orders", "items"] {
            for index in 0..<3 {
                events.append(NewEvent(kind: .downloadPart, database: "shop", table: table, part: "all_\(index + 1)_\(index + 1)_0",
                                       disk: "default", bytes: 1 << 20))
            }
        }
        let run = try await journal.createRun(backup: "nightly", source: "local", options: "{}", events: events)
        let ids = try await journal.events(run).map(\.id)

        let session = "inplace-follow-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try Self.tmux(["new-session", "-d", "-s", session, "-x", "160", "-y", "30",
                       "\(CLI.binary) journal show --follow --journal \(path) \(run); echo EXIT=$?; sleep 60"])
        defer { _ = try? Self.tmux(["kill-session", "-t", session]) }
        func screen() throws -> String { try Self.tmux(["capture-pane", "-p", "-t", session]).stdout }
        func waitFor(_ text: String) async throws -> String {
            let deadline = ContinuousClock.now + .seconds(20)
            var last = ""
            while ContinuousClock.now < deadline {
                last = try screen()
                if last.contains(text) { return last }
                try await Task.sleep(for: .milliseconds(200))
            }
            Issue.record("the screen never showed '\(text)'; it shows:\n\(last)")
            return last
        }

        let first = try await waitFor("steps 0/6 done")
        #expect(first.contains("run \(run) of nightly: running"), "\(first)")
        #expect(first.contains("shop.orders: 0/3") && first.contains("shop.items: 0/3"), "one line per table: \(first)")

        for id in ids.prefix(4) {
            try await journal.transition(id, to: .started)
            try await journal.transition(id, to: .done)
        }
        let moving = try await waitFor("steps 4/6 done")
        #expect(moving.contains("shop.orders: 3/3"), "\(moving)")
        #expect(moving.contains("shop.items: 1/3"), "\(moving)")
        #expect(!moving.contains("steps 0/6"), "redrawn in place, not appended: \(moving)")

        try await journal.transition(ids[4], to: .done)
        try await journal.transition(ids[5], to: .failed, error: "CHECK TABLE failed")
        try await journal.setRunState(run, .partlyFailed)
        let last = try await waitFor("EXIT=")
        #expect(last.contains("partly_failed"), "\(last)")
        #expect(last.contains("steps 5/6 done, 1 failed"), "\(last)")
        #expect(last.contains("EXIT=12"), "a run that did not end done exits 12: \(last)")
    }

    @Test("without a terminal, one line per change; a run whose process is gone is said so and ends")
    func pipeAndOrphan() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path("journal.sqlite")
        var run: Int64 = 0
        do {
            let journal = try Journal(path: path)
            run = try await journal.createRun(backup: "nightly", source: "local", options: "{}", events: [
                NewEvent(kind: .downloadPart, database: "shop", table: "orders", part: "all_1_1_0", disk: "default", bytes: 10),
            ])
        }
        // The writer is gone (its lock released) while the run still says running.
        let result = try await CLI.run(["journal", "show", "--follow", "--journal", path, String(run)])
        #expect(result.status == 12, "\(result.all)")
        #expect(result.stdout.contains("no process is running it"), "\(result.stdout)")
        #expect(result.stdout.split(separator: "\n").filter { $0.hasPrefix("run ") }.count == 1, "\(result.stdout)")
        #expect(!result.stdout.contains("\u{1B}["), "no terminal codes into a pipe")
    }
}
