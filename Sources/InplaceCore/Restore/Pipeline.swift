import Synchronization

/// The stages a restore's events flow through: a table's events read from the journal a page at
/// a time, and a concurrent map that keeps its input order. Nothing between stages buffers more
/// than a page of events plus the map's width, so memory stays flat however many events a run has.

/// A table's events of some kinds, in execution order (sequence, id), read from the journal in
/// pages by key: a million events are never in memory at once.
public struct JournalEventStream: AsyncSequence, Sendable {
    public typealias Element = JournalEvent

    let journal: Journal
    let run: Int64
    let database: String
    let table: String
    let kinds: [EventKind]
    var pageSize = 256

    public init(journal: Journal, run: Int64, database: String, table: String, kinds: [EventKind]) {
        self.journal = journal
        self.run = run
        self.database = database
        self.table = table
        self.kinds = kinds
    }

    public func makeAsyncIterator() -> Iterator {
        Iterator(stream: self)
    }

    public struct Iterator: AsyncIteratorProtocol {
        let stream: JournalEventStream
        var page: [JournalEvent] = []
        var index = 0
        var after: (sequence: Int, id: Int64) = (Int.min, Int64.min)
        var exhausted = false

        public mutating func next() async throws -> JournalEvent? {
            if index == page.count {
                guard !exhausted else { return nil }
                page = try await stream.journal.events(
                    stream.run, database: stream.database, table: stream.table, kinds: stream.kinds,
                    after: after, limit: stream.pageSize)
                index = 0
                exhausted = page.count < stream.pageSize
                guard let last = page.last else { return nil }
                after = (last.sequence, last.id)
            }
            defer { index += 1 }
            return page[index]
        }
    }
}

/// A table's steps that bring a part in, each with the attach-part that follows it: a
/// download-part (the backup's part fetched into `detached/`), or a detach-part (a kept part
/// re-sequenced: detached, then attached again in the backup's order).
public struct BringPairs: AsyncSequence, Sendable {
    public typealias Element = (first: JournalEvent, attach: JournalEvent)

    let events: JournalEventStream

    public init(events: JournalEventStream) { self.events = events }

    public func makeAsyncIterator() -> Iterator { Iterator(events: events.makeAsyncIterator()) }

    public struct Iterator: AsyncIteratorProtocol {
        var events: JournalEventStream.Iterator
        var pending: JournalEvent?

        public mutating func next() async throws -> Element? {
            while let event = try await events.next() {
                if event.kind == .attachPart, let first = pending {
                    pending = nil
                    return (first, event)
                }
                pending = event.kind == .downloadPart || event.kind == .detachPart ? event : nil
            }
            return nil
        }
    }
}

extension AsyncSequence where Self: Sendable, Element: Sendable {
    /// Runs `transform` on up to `width` elements at once and yields the results in input
    /// order. At most `width` elements are taken from the base sequence ahead of the consumer.
    public func orderedMap<T: Sendable>(width: Int, _ transform: @escaping @Sendable (Element) async throws -> T)
        -> OrderedBoundedMap<Self, T>
    {
        OrderedBoundedMap(base: self, width: Swift.max(1, width), transform: transform)
    }
}

/// See `AsyncSequence.orderedMap(width:_:)`. Work in flight is cancelled when the consumer stops
/// iterating or its task is cancelled.
public struct OrderedBoundedMap<Base: AsyncSequence & Sendable, T: Sendable>: AsyncSequence, Sendable
where Base.Element: Sendable {
    public typealias Element = T

    let base: Base
    let width: Int
    let transform: @Sendable (Base.Element) async throws -> T

    public func makeAsyncIterator() -> Iterator {
        Iterator(base: base.makeAsyncIterator(), window: Window(), width: width, transform: transform)
    }

    /// The tasks in flight, oldest first; cancelled when the iterator goes away.
    public final class Window: Sendable {
        private let tasks = Mutex<[Task<T, any Error>]>([])

        var count: Int { tasks.withLock { $0.count } }

        func append(_ task: Task<T, any Error>) { tasks.withLock { $0.append(task) } }

        func removeFirst() -> Task<T, any Error>? {
            tasks.withLock { $0.isEmpty ? nil : $0.removeFirst() }
        }

        func cancelAll() {
            for task in tasks.withLock({ $0 }) { task.cancel() }
        }

        deinit { cancelAll() }
    }

    public struct Iterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let window: Window
        let width: Int
        let transform: @Sendable (Base.Element) async throws -> T
        var baseDone = false

        public mutating func next() async throws -> T? {
            while !baseDone && window.count < width {
                guard let element = try await base.next() else {
                    baseDone = true
                    break
                }
                let transform = self.transform
                window.append(Task { try await transform(element) })
            }
            // At most `width` tasks: removing the first of them is cheap.
            guard let task = window.removeFirst() else { return nil }
            let window = self.window
            return try await withTaskCancellationHandler {
                try await task.value
            } onCancel: {
                task.cancel()
                window.cancelAll()
            }
        }

        /// Cancels the work still in flight and waits for it to end: a consumer that stops early
        /// calls it, so no step runs on after its table has given up.
        public func cancelAndWait() async {
            window.cancelAll()
            while let task = window.removeFirst() { _ = try? await task.value }
        }
    }
}
