import CSQLite
import Foundation
import Testing

@testable import InplaceCore

@Suite("The restore journal (real SQLite files)")
struct JournalTests {
    @Test("the embedded migrations are the files in journal-schema/ (else run tools/generate-journal-migrations)")
    func embeddedMigrationsMatchFiles() throws {
        let folder = TestBed.repositoryRoot.appendingPathComponent("journal-schema")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".sql") }.sorted()
        #expect(files == JournalMigrations.all.map(\.file),
                "journal-schema/ and the embedded copy differ: run tools/generate-journal-migrations")
        for (file, sql) in JournalMigrations.all {
            let text = try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
            #expect(text.trimmingCharacters(in: .newlines) == sql.trimmingCharacters(in: .newlines),
                    "\(file) differs from its embedded copy: run tools/generate-journal-migrations")
        }
    }

    @Test("a new journal is owner-only, in WAL mode, at the known schema version")
    func createsOwnerOnly() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path("sub/journal.sqlite")
        let journal = try Journal(path: path)
        _ = try await journal.createRun(backup: "b", source: "local", options: "{}")
        var info = stat()
        #expect(stat(path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        #expect(stat(folder.path("sub"), &info) == 0 && info.st_mode & 0o077 == 0)
        let raw = try SQLiteConnection(path: path, readOnly: true)
        #expect(try raw.queryScalarText("PRAGMA journal_mode") == "wal")
        #expect(try raw.queryScalarInt("PRAGMA user_version") == Int64(Journal.knownVersion))
    }

    @Test("a second writer on the same journal gets a clear error; readers are allowed")
    func oneWriterAtATime() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path("j.sqlite")
        let first = try Journal(path: path)
        do {
            _ = try Journal(path: path)
            Issue.record("two writers opened one journal")
        } catch let error as JournalError {
            #expect(error.kind == .locked)
            #expect(error.message.contains("another inplace process"))
        }
        let reader = try Journal(path: path, readOnly: true)
        #expect(try await reader.runs().isEmpty)
        _ = first
    }

    @Test("a journal of schema 1 is upgraded on open: its runs, events and transitions kept, drop-table steps allowed")
    func upgradesVersionOne() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path("old.sqlite")
        do {
            let raw = try SQLiteConnection(path: path)
            try raw.execute(JournalMigrations.all[0].sql)
            try raw.execute("PRAGMA user_version = 1")
            try raw.execute("""
                INSERT INTO runs VALUES (1, 'b', 'local', '{}', '0.1.0', 'partly_failed', 't0', 't1', NULL);
                INSERT INTO events (id, run_id, kind, database_name, table_name, part, bytes, sequence, state, attempts,
                                    last_error, created_at, updated_at)
                VALUES (7, 1, 'download-part', 'db', 't', 'all_1_1_0', 42, 3, 'failed', 2, 'S3 down', 't0', 't1');
                INSERT INTO transitions (event_id, at, from_state, to_state, detail) VALUES (7, 't0', NULL, 'pending', NULL);
                """)
        }
        let journal = try Journal(path: path)
        let raw = try SQLiteConnection(path: path, readOnly: true)
        #expect(try raw.queryScalarInt("PRAGMA user_version") == Int64(Journal.knownVersion))
        let event = try await journal.event(7)
        #expect(event?.state == .failed && event?.lastError == "S3 down" && event?.bytes == 42 && event?.attempts == 2)
        #expect(try await journal.transitions(7).count == 1)
        #expect(try await journal.events(1, database: "db", table: "t").map(\.id) == [7])
        let ids = try await journal.addEvents(1, [NewEvent(kind: .dropTable, database: "db", table: "t", detail: ".inplace-old-x")])
        #expect(try await journal.event(ids[0])?.kind == .dropTable)
    }

    @Test("a file that is not a journal, and a journal from a newer inplace, are refused untouched")
    func refusesForeignFiles() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let junk = folder.path("junk")
        try Data(repeating: 7, count: 5000).write(to: URL(fileURLWithPath: junk))
        #expect { try Journal(path: junk) } throws: { ($0 as? JournalError)?.kind == .notAJournal }
        #expect(try Data(contentsOf: URL(fileURLWithPath: junk)) == Data(repeating: 7, count: 5000))

        let other = folder.path("other.sqlite")
        do {
            let db = try SQLiteConnection(path: other)
            try db.execute("CREATE TABLE mine (x)")
        }
        #expect { try Journal(path: other) } throws: { ($0 as? JournalError)?.kind == .notAJournal }

        let newer = folder.path("newer.sqlite")
        do {
            let db = try SQLiteConnection(path: newer)
            try db.execute("CREATE TABLE runs (x); PRAGMA user_version = \(Journal.knownVersion + 1)")
        }
        #expect { try Journal(path: newer) } throws: {
            ($0 as? JournalError)?.kind == .newerSchema(found: Journal.knownVersion + 1, known: Journal.knownVersion)
        }
    }

    @Test("transitions are appended in order; plan-table commits its events with its own completion")
    func transitionsAndPlanTable() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let journal = try Journal(path: folder.path("j.sqlite"))
        let run = try await journal.createRun(backup: "b", source: "remote", options: "{\"full\":false}")
        let plan = try await journal.addEvents(run, [NewEvent(kind: .planTable, database: "d", table: "t")])[0]
        try await journal.transition(plan, to: .started)
        let emitted = try await journal.completePlanTable(plan, run: run, emitting: [
            NewEvent(kind: .dropPart, database: "d", table: "t", part: "all_1_1_0", sequence: 1),
            NewEvent(kind: .downloadPart, database: "d", table: "t", part: "all_2_2_0", sequence: 2),
        ], detail: "2 events")
        #expect(emitted.count == 2)
        try await journal.transition(emitted[0], to: .started, countAttempt: true)
        try await journal.transition(emitted[0], to: .failed, error: "Code: 999")
        try await journal.transition(emitted[0], to: .started, countAttempt: true)
        try await journal.transition(emitted[0], to: .done)
        let drop = try #require(try await journal.event(emitted[0]))
        #expect(drop.state == .done && drop.attempts == 2 && drop.lastError == nil)
        let steps = try await journal.transitions(emitted[0]).map(\.to)
        #expect(steps == [.pending, .started, .failed, .started, .done])
        #expect(try await journal.transitions(plan).map(\.to) == [.pending, .started, .done])
        #expect(try await journal.events(run, state: .pending).map(\.id) == [emitted[1]])
        try await journal.setRunState(run, .done)
        #expect(try await journal.run(run)?.state == .done)
        #expect(try await journal.unfinishedRun() == nil)
    }

    /// A run of backup `backup` with one step per state in `steps`, left in `state`.
    private func run(_ journal: Journal, _ backup: String, _ state: RunState, steps: [EventState]) async throws -> Int64 {
        let events = steps.indices.map { NewEvent(kind: .downloadPart, database: "d", table: "t", part: "all_\($0)_\($0)_0", sequence: $0) }
        let run = try await journal.createRun(backup: backup, source: "local", options: "{}", events: events)
        for (event, step) in zip(try await journal.events(run), steps) where step != .pending {
            if step != .started { try await journal.transition(event.id, to: .started) }
            try await journal.transition(event.id, to: step, error: step == .failed ? "S3 down" : nil)
        }
        try await journal.setRunState(run, state)
        return run
    }

    @Test("--new-run supersedes every unfinished run of the backup (not ended runs, not other backups) by the run created next")
    func supersedesUnfinishedRuns() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let journal = try Journal(path: folder.path("j.sqlite"))
        let running = try await run(journal, "b", .running, steps: [.done, .pending, .started])
        let interrupted = try await run(journal, "b", .interrupted, steps: [.done, .interrupted, .pending])
        let partly = try await run(journal, "b", .partlyFailed, steps: [.failed, .done])
        let done = try await run(journal, "b", .done, steps: [.done])
        let failed = try await run(journal, "b", .failed, steps: [.failed])
        let other = try await run(journal, "other", .interrupted, steps: [.interrupted])
        let allDone = try await run(journal, "b", .running, steps: [.done, .done])

        let superseded = try await journal.supersedeUnfinishedRuns(backup: "b")
        #expect(superseded.runs == [running, interrupted, partly, allDone])
        #expect(superseded.by == allDone + 1)
        let next = try await journal.createRun(backup: "b", source: "local", options: "{}",
                                               events: [NewEvent(kind: .planTable, database: "d", table: "t")])
        #expect(next == superseded.by)

        for id in superseded.runs {
            let found = try #require(try await journal.run(id))
            #expect(found.state == .superseded && found.supersededBy == next && found.finishedAt != nil, "run \(id)")
        }
        for (id, state) in [(done, RunState.done), (failed, .failed), (other, .interrupted)] {
            let found = try #require(try await journal.run(id))
            #expect(found.state == state && found.supersededBy == nil, "run \(id)")
        }
        // The open steps are superseded, each with a transition naming the new run; done steps stay done.
        #expect(try await journal.events(running).map(\.state) == [.done, .superseded, .superseded])
        #expect(try await journal.events(interrupted).map(\.state) == [.done, .superseded, .superseded])
        #expect(try await journal.events(partly).map(\.state) == [.superseded, .done])
        #expect(try await journal.events(failed).map(\.state) == [.failed])
        #expect(try await journal.events(other).map(\.state) == [.interrupted])
        let open = try await journal.events(interrupted)[1]
        let timeline = try await journal.transitions(open.id)
        #expect(timeline.map(\.to) == [.pending, .started, .interrupted, .superseded])
        #expect(timeline.last?.from == .interrupted && timeline.last?.detail == "run superseded by run \(next) (restore --new-run)")
        // A run whose steps were all done carries the record on its last step, which stays done.
        let last = try await journal.events(allDone)[1]
        #expect(try await journal.transitions(last.id).map(\.to) == [.pending, .started, .done, .done])
        #expect(try await journal.event(last.id)?.state == .done)

        // Nothing picks them again: not restore NAME, not resume, and resume/replay RUN_ID refuse.
        try await journal.setRunState(next, .done)
        #expect(try await journal.unfinishedRun(backup: "b", options: "{}") == nil)
        #expect(try await journal.unfinishedRun()?.id == other)
        await #expect { try await journal.resumableRun(interrupted) } throws: { error in
            guard let error = error as? JournalError else { return false }
            return error.kind == .superseded(by: next)
                && error.message.contains("run \(interrupted) of b was superseded by run \(next)")
        }
        #expect(try await journal.resumableRun(other).id == other)
        await #expect { try await journal.resumableRun(99) } throws: { ($0 as? JournalError)?.kind == .notFound }

        // A reader sees the same; a later --new-run supersedes only what is unfinished then.
        let reader = try Journal(path: folder.path("j.sqlite"), readOnly: true)
        #expect(try await reader.runs().filter { $0.state == .superseded }.map(\.id) == superseded.runs)
        #expect(try await reader.runs().map(\.supersededBy) == [next, next, next, nil, nil, nil, next, nil])
        try await journal.setRunState(next, .interrupted)
        let again = try await journal.supersedeUnfinishedRuns(backup: "b")
        #expect(again.runs == [next] && again.by == next + 1)
        #expect(try await journal.run(running)?.supersededBy == next)
        #expect(try await journal.run(next)?.supersededBy == next + 1)
    }

    @Test("a superseded run without steps has no record of its successor, and is refused all the same")
    func supersedesRunWithoutSteps() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let journal = try Journal(path: folder.path("j.sqlite"))
        let empty = try await journal.createRun(backup: "b", source: "remote", options: "{}")
        #expect(try await journal.supersedeUnfinishedRuns(backup: "b") == ([empty], empty + 1))
        let found = try #require(try await journal.run(empty))
        #expect(found.state == .superseded && found.supersededBy == nil)
        await #expect { try await journal.resumableRun(empty) } throws: { error in
            (error as? JournalError)?.kind == .superseded(by: nil)
                && (error as? JournalError)?.message.contains("superseded by a later run") == true
        }
        #expect(try await journal.supersedeUnfinishedRuns(backup: "b") == ([], empty + 1))
    }
}
