import Foundation
import InplaceCore

/// `journal show --follow`: a run's per-table progress, read from the journal every second while
/// another process writes it, until the run ends. On a terminal the screen is redrawn in place;
/// otherwise one line is printed per change.
struct JournalFollower {
    let journal: Journal
    let run: Int64
    let interval: Duration
    let terminal = isatty(STDOUT_FILENO) == 1

    /// Returns the run's last state.
    func follow() async throws -> RunState {
        var lastLine = ""
        while true {
            guard let progress = try await journal.progress(run, perTable: true) else {
                throw JournalError(.notFound, "the journal has no run \(run)")
            }
            let ended = progress.run.state != .running
            let orphaned = !ended && !Self.journalInUse(journal.path)
            let summary = Self.summary(progress) + (orphaned ? "; no process is running it (it stopped without finishing: inplace resume \(run))" : "")
            if terminal {
                let lines = [summary] + Self.tableLines(progress)
                Self.emit("\u{1B}[H\u{1B}[2J" + lines.joined(separator: "\n"))
            } else if summary != lastLine {
                Self.emit(summary)
            }
            lastLine = summary
            if ended || orphaned {
                if !terminal { Self.tableLines(progress).forEach(Self.emit) }
                return progress.run.state
            }
            try await Task.sleep(for: interval)
        }
    }

    /// A line on standard output, written at once (unbuffered: another program reads it live).
    static func emit(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    static func summary(_ p: RunProgress) -> String {
        let live = p.total - p.count(.superseded)
        var text = "run \(p.run.id) of \(p.run.backup): \(p.run.state.rawValue); steps \(p.count(.done))/\(live) done"
        if p.count(.failed) > 0 { text += ", \(p.count(.failed)) failed" }
        if p.count(.started) > 0 { text += ", \(p.count(.started)) running" }
        if p.count(.interrupted) > 0 { text += ", \(p.count(.interrupted)) interrupted" }
        let planned = EventState.allCases.filter { $0 != .superseded }.reduce(Int64(0)) { $0 + p.bytes(.downloadPart, $1) }
        text += "; tables \(p.tablesDone)/\(p.tables) done; \(PlanReport.bytes(p.bytes(.downloadPart, .done))) of \(PlanReport.bytes(planned)) downloaded"
        return text
    }

    static func tableLines(_ p: RunProgress) -> [String] {
        (p.perTable ?? []).map { table in
            let width = 20
            let filled = table.events == 0 ? width : width * table.done / table.events
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            return "  [\(bar)] \(table.database).\(table.table): \(table.done)/\(table.events)"
                + (table.failed > 0 ? ", \(table.failed) failed" : "")
        }
    }

    /// Whether a process holds the journal's lock (`<journal>.lock`, flock'ed by every writer),
    /// read from /proc/locks without taking it: taking it, even for an instant, could make a
    /// writer starting then refuse the journal. True when it cannot be told.
    static func journalInUse(_ path: String) -> Bool {
        var info = stat()
        guard stat(path + ".lock", &info) == 0,
              let locks = try? String(contentsOfFile: "/proc/locks", encoding: .utf8) else { return true }
        let suffix = ":\(info.st_ino)"
        return locks.split(separator: "\n").contains { line in
            line.contains("FLOCK") && line.split(separator: " ").contains { $0.hasSuffix(suffix) }
        }
    }
}
