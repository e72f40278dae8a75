import Foundation
import Synchronization
import Testing

@testable import InplaceCore

@Suite("The restore pipeline's stages (real SQLite journal)")
struct PipelineTests {
    /// Counts work in flight and remembers the most seen at once.
    final class Gauge: Sendable {
        private let state = Mutex<(now: Int, most: Int, started: Int)>((0, 0, 0))
        func enter() { state.withLock { $0.now += 1; $0.started += 1; $0.most = max($0.most, $0.now) } }
        func leave() { state.withLock { $0.now -= 1 } }
        var most: Int { state.withLock { $0.most } }
        var started: Int { state.withLock { $0.started } }
        var now: Int { state.withLock { $0.now } }
    }

    struct Numbers: AsyncSequence, Sendable {
        let count: Int
        let taken: Gauge
        func makeAsyncIterator() -> Iterator { Iterator(count: count, taken: taken) }
        struct Iterator: AsyncIteratorProtocol {
            let count: Int
            let taken: Gauge
            var next = 0
            mutating func next() async -> Int? {
                guard next < count else { return nil }
                defer { next += 1 }
                taken.enter()
                return next
            }
        }
    }

    @Test("orderedMap yields in input order, never runs more than its width, never reads far ahead")
    func orderedMapIsOrderedAndBounded() async throws {
        let running = Gauge(), taken = Gauge()
        let mapped = Numbers(count: 200, taken: taken).orderedMap(width: 4) { value in
            running.enter()
            defer { running.leave() }
            // Later elements finish first: the order must come from the stage, not from timing.
            try await Task.sleep(for: .microseconds(200 * (7 - value % 7)))
            return value * 2
        }
        var seen: [Int] = []
        for try await value in mapped {
            seen.append(value)
            // Taken from the base sequence: what was consumed plus at most the window.
            #expect(taken.started <= seen.count + 4)
        }
        #expect(seen == (0..<200).map { $0 * 2 })
        #expect(running.most <= 4)
        #expect(running.most >= 2, "the stage ran nothing concurrently")
    }

    @Test("a consumer that stops early cancels the work in flight and waits for it")
    func orderedMapCancelsOnStop() async throws {
        let running = Gauge(), taken = Gauge()
        let mapped = Numbers(count: 1000, taken: taken).orderedMap(width: 3) { value in
            running.enter()
            defer { running.leave() }
            if value == 5 { throw CancellationError() }
            try await Task.sleep(for: value > 5 ? .seconds(60) : .milliseconds(1))
            return value
        }
        var iterator = mapped.makeAsyncIterator()
        let clock = ContinuousClock.now
        do {
            while try await iterator.next() != nil {}
            Issue.record("the failing element did not stop the consumer")
        } catch {
            await iterator.cancelAndWait()
        }
        #expect(running.now == 0, "work still running after cancelAndWait")
        #expect(ContinuousClock.now - clock < .seconds(30), "sleeping work was not cancelled")
        #expect(taken.started <= 6 + 3)
    }

    @Test("a table's events stream from the journal in pages, in execution order, filtered by kind")
    func journalStreamPages() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let journal = try Journal(path: folder.path("j.sqlite"))
        let run = try await journal.createRun(backup: "b", source: "local", options: "{}")
        // Inserted out of order (sequence descending), with another table's events between.
        var events: [NewEvent] = []
        for index in stride(from: 999, through: 0, by: -1) {
            var event = NewEvent(kind: index < 10 ? .dropPart : (index % 2 == 0 ? .downloadPart : .attachPart),
                                 database: "db", table: "t", part: "p\(index)")
            event.sequence = index
            events.append(event)
            var other = NewEvent(kind: .downloadPart, database: "db", table: "u", part: "q\(index)")
            other.sequence = index
            events.append(other)
        }
        try await journal.addEvents(run, events)
        var stream = JournalEventStream(journal: journal, run: run, database: "db", table: "t",
                                        kinds: [.downloadPart, .attachPart])
        stream.pageSize = 7
        var parts: [String] = []
        for try await event in stream { parts.append(event.part ?? "") }
        #expect(parts == (10..<1000).map { "p\($0)" })

        var pairs: [String] = []
        for try await pair in BringPairs(events: stream) {
            pairs.append("\(pair.first.part ?? "")+\(pair.attach.part ?? "")")
        }
        #expect(pairs == stride(from: 10, to: 1000, by: 2).map { "p\($0)+p\($0 + 1)" })
    }

    @Test("a held transition is committed with the next write, and before any read")
    func heldTransitions() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path("j.sqlite")
        let journal = try Journal(path: path)
        let run = try await journal.createRun(backup: "b", source: "local", options: "{}", events: [
            NewEvent(kind: .downloadPart, database: "db", table: "t", part: "a"),
            NewEvent(kind: .attachPart, database: "db", table: "t", part: "a"),
        ])
        let ids = try await journal.events(run).map(\.id)
        try await journal.transition(ids[0], to: .started)
        journal.hold(ids[0], to: .done)
        // Another connection sees the file: the held `done` is not there yet.
        let reader = try SQLiteConnection(path: path, readOnly: true)
        #expect(try reader.queryScalarText("SELECT state FROM events WHERE id = \(ids[0])") == "started")
        try await journal.transition(ids[1], to: .started)
        #expect(try reader.queryScalarText("SELECT state FROM events WHERE id = \(ids[0])") == "done")
        let order = try await journal.transitions(run: run).filter { $0.from != nil }.map { "\($0.eventID):\($0.to.rawValue)" }
        #expect(order == ["\(ids[0]):started", "\(ids[0]):done", "\(ids[1]):started"])

        journal.hold(ids[1], to: .done)
        #expect(try await journal.event(ids[1])?.state == .done)
        let counts = try await journal.counts(run)
        #expect(counts[.done] == 2 && counts.events == 2)
    }
}
