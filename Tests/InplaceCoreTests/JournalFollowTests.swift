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

    /// A tmux command on this test's own server (`-L socket`, no config file), run on a thread of
    /// its own. `quiet`: output to /dev/null instead of pipes, for the commands that start or stop the
    /// server: the server the client forks keeps its stdout and stderr, so a pipe would never reach EOF.
    @discardableResult
    static func tmux(_ socket: String, _ arguments: [String], quiet: Bool = false) async throws -> CLI.Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tmux ?? "tmux")
        process.arguments = ["-L", socket, "-f", "/dev/null"] + arguments
        guard quiet else { return try await CLI.run(process) }
        // Spawned and reaped here, not by Foundation's Process: the tmux client that forks the
        // server was seen left a zombie that Process never reported as ended.
        // Through a small exec wrapper that closes every other descriptor first: the server
        // lives on, and a pipe of another test's process that it inherited would never reach
        // EOF (a whole test run was seen hung so).
        let argv = ["python3", "-c", "import os, sys; os.closerange(3, os.sysconf('SC_OPEN_MAX')); os.execv(sys.argv[1], sys.argv[1:])",
                    tmux ?? "/usr/bin/tmux", "-L", socket, "-f", "/dev/null"] + arguments
        return try await withCheckedThrowingContinuation { continuation in
            Thread {
                var actions = posix_spawn_file_actions_t()
                posix_spawn_file_actions_init(&actions)
                defer { posix_spawn_file_actions_destroy(&actions) }
                for fd in [STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO] {
                    posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == STDIN_FILENO ? O_RDONLY : O_WRONLY, 0)
                }
                var cArguments = argv.map { strdup($0) } + [nil]
                defer { cArguments.forEach { free($0) } }
                var pid: pid_t = 0
                let spawned = posix_spawnp(&pid, argv[0], &actions, nil, &cArguments, environ)
                guard spawned == 0 else {
                    continuation.resume(throwing: TestBed.Missing(description: "cannot start tmux: \(String(cString: strerror(spawned)))"))
                    return
                }
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                continuation.resume(returning: CLI.Result(status: (status >> 8) & 0xFF, stdout: "", stderr: ""))
            }.start()
        }
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

        let session = "follow"
        let socket = "inplace-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let started = try await Self.tmux(socket, ["new-session", "-d", "-s", session, "-x", "160", "-y", "30",
                                                   "\(CLI.binary) journal show --follow --journal \(path) \(run); echo EXIT=$?; sleep 20"],
                                          quiet: true)
        #expect(started.status == 0)
        defer {
            let socket = socket
            Task { _ = try? await Self.tmux(socket, ["kill-server"], quiet: true) }
        }
        func screen() async throws -> String { try await Self.tmux(socket, ["capture-pane", "-p", "-t", session]).stdout }
        func waitFor(_ text: String) async throws -> String {
            let deadline = ContinuousClock.now + .seconds(20)
            var last = ""
            while ContinuousClock.now < deadline {
                last = try await screen()
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
