import CSQLite
import Foundation
import Synchronization

/// The write-ahead journal of restores: one SQLite file (WAL, mode 0600), the only owner of its
/// connection.
///
/// 1. Opening creates the file owner-only, takes an exclusive lock on `<file>.lock` (unless
///    read-only: `journal show` reads while a restore runs), applies the embedded migrations, and
///    refuses a journal written by a newer `inplace`.
/// 2. Every state change of an event is one committed transaction that updates the event and
///    appends to `transitions`; the caller journals `started` before a side effect and
///    `done`/`failed` after it.
/// 3. A `plan-table` event commits the events it emits in the same transaction that marks it done.
/// 4. A `done` may be held back (`hold(...)`) and committed with the next write, or before the
///    next read: a download's rides with its attach's `started`, an attach's with the next
///    step's, two commits fewer per part. Only for steps whose effect resume finds by looking
///    (a download is complete once its folder is in detached/; an attach is counted live).
/// 5. A download's `started` is held too while it fetches into its own staging folder (which
///    resume removes, and nothing else reads), and committed before the part is renamed into
///    detached/ (`flush()`): most often another step's commit has taken it along by then, so a
///    part costs one commit, its attach's `started`.
public actor Journal {
    public nonisolated let path: String
    /// Internal (not private) for the extensions in Journal+*.swift; nothing else touches it.
    let db: SQLiteConnection
    private let lockDescriptor: Int32
    /// The file's device and inode when opened: a journal deleted or replaced under a running
    /// process is noticed at the end instead of reported as recorded.
    private nonisolated let identity: (device: UInt64, inode: UInt64)?
    private var transitionsCommitted = 0
    /// Transitions held back, committed with the next write or before the next read. Held
    /// without a hop onto the actor (a lock, not an await): a restore holds two per part.
    private nonisolated let held = Mutex<[Change]>([])
    /// Transitions applied in the open transaction (counted for the crash switch once committed).
    private var applied = 0
    /// Time spent in this journal's SQLite work (for the journal-cost benchmark): wall time, and
    /// the CPU time of the threads doing it (which a loaded machine does not inflate).
    public private(set) var busy: Duration = .zero
    public private(set) var busyCPU: Duration = .zero

    /// The clocks at the start of a piece of journal work; nothing in it suspends, so one
    /// thread runs it whole and its CPU clock measures it.
    struct Meter {
        let wall = ContinuousClock.now
        let cpu = Meter.threadCPU()

        static func threadCPU() -> Duration {
            var spec = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
            return .seconds(spec.tv_sec) + .nanoseconds(spec.tv_nsec)
        }
    }

    private func record(_ meter: Meter) {
        busy += ContinuousClock.now - meter.wall
        busyCPU += Meter.threadCPU() - meter.cpu
    }
    /// A test-only switch: the process kills itself with SIGKILL right after this many
    /// transitions (INPLACE_TEST_CRASH_AFTER_TRANSITION), to prove resume at every step.
    private let crashAfter: Int?

    public static var knownVersion: Int { JournalMigrations.all.count }

    public init(path: String, readOnly: Bool = false,
                environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        self.path = path
        if !readOnly {
            let folder = (path as NSString).deletingLastPathComponent
            // Its files are the owner's of the folder they are in (given when root makes them: the
            // default journal is in <default disk>/backup/, where a later run as the ClickHouse
            // user must open it); SQLite gives its -wal and -shm files the journal's owner itself.
            let owner = FileOwner.nearest(folder.isEmpty ? "." : folder)
            if !folder.isEmpty && !FileManager.default.fileExists(atPath: folder) {
                do {
                    try FileSystem.makeFolders(folder, mode: 0o700, owner: owner)
                } catch {
                    throw JournalError(.sqlite, "cannot create the journal's folder: \(error.message)")
                }
            }
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                throw JournalError(.sqlite, "cannot create the journal \(path): \(String(cString: strerror(errno)))")
            }
            defer { close(fd) }
            let lock = open(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard lock >= 0 else {
                throw JournalError(.sqlite, "cannot create \(path).lock: \(String(cString: strerror(errno)))")
            }
            do {
                try owner?.give(descriptor: fd, path: path)
                try owner?.give(descriptor: lock, path: path + ".lock")
            } catch {
                close(lock)
                throw JournalError(.sqlite, error.message)
            }
            guard flock(lock, LOCK_EX | LOCK_NB) == 0 else {
                close(lock)
                throw JournalError(.locked, "another inplace process is using the journal \(path); wait for it to finish (or stop it), then resume")
            }
            lockDescriptor = lock
        } else {
            guard FileManager.default.fileExists(atPath: path) else {
                throw JournalError(.notFound, "no journal at \(path); pass --journal PATH")
            }
            lockDescriptor = -1
        }
        do {
            // Refused before the read-write open, which would switch another application's
            // database to WAL mode.
            if !readOnly { try Self.inspectExisting(path) }
            db = try SQLiteConnection(path: path, readOnly: readOnly, busyTimeout: .seconds(10))
            // Pages stay in memory, and the WAL is folded back into the file (with an fsync)
            // every 10,000 pages rather than every 1,000: fewer syncs on a long run.
            try db.execute("PRAGMA cache_size = -16384")
            if !readOnly { try db.execute("PRAGMA wal_autocheckpoint = 10000") }
            try Self.migrate(db, readOnly: readOnly, path: path)
        } catch let error as SQLiteError {
            if lockDescriptor >= 0 { close(lockDescriptor) }
            if error.primaryCode == SQLITE_NOTADB {
                throw JournalError(.notAJournal, "\(path) is not an inplace journal (not a SQLite database); pass another --journal")
            }
            throw JournalError(.sqlite, "journal \(path): \(error)")
        } catch {
            if lockDescriptor >= 0 { close(lockDescriptor) }
            throw error
        }
        crashAfter = environment["INPLACE_TEST_CRASH_AFTER_TRANSITION"].flatMap { Int($0) }
        identity = Self.fileIdentity(path)
    }

    private static func fileIdentity(_ path: String) -> (device: UInt64, inode: UInt64)? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return (UInt64(info.st_dev), UInt64(info.st_ino))
    }

    /// Throws when the journal's file is no longer at `path` (deleted or replaced since it was
    /// opened): what this process journaled since then is lost with the old file.
    public nonisolated func verifyStillOnDisk() throws(JournalError) {
        guard let identity, let now = Self.fileIdentity(path), now == identity else {
            throw JournalError(.removed, "the journal \(path) was deleted or replaced while this process used it: the record of this run is lost. Check the tables with inplace plan; a new restore of the same backup converges from the live state")
        }
    }

    /// Refuses an existing file that is not an inplace journal, or is one of a newer schema, by
    /// reading it only.
    private static func inspectExisting(_ path: String) throws {
        var info = stat()
        guard stat(path, &info) == 0, info.st_size > 0 else { return }
        _ = try checkSchema(try SQLiteConnection(path: path, readOnly: true, busyTimeout: .seconds(10)), path: path)
    }

    /// The journal's schema version; throws for a newer schema and for another application's
    /// database.
    private static func checkSchema(_ db: SQLiteConnection, path: String) throws -> Int {
        let version = Int(try db.queryScalarInt("PRAGMA user_version") ?? 0)
        if version > knownVersion {
            throw JournalError(.newerSchema(found: version, known: knownVersion),
                               "the journal \(path) was written by a newer inplace (schema \(version), this one knows \(knownVersion)); use that version")
        }
        if version == 0, try db.queryScalarInt("SELECT count(*) FROM sqlite_master") ?? 0 > 0 {
            throw JournalError(.notAJournal, "\(path) is a SQLite database but not an inplace journal; pass another --journal")
        }
        return version
    }

    deinit {
        if lockDescriptor >= 0 { close(lockDescriptor) }
    }

    private static func migrate(_ db: SQLiteConnection, readOnly: Bool, path: String) throws {
        let version = try checkSchema(db, path: path)
        if version == 0 && readOnly {
            throw JournalError(.notFound, "the journal \(path) is empty: no run has been journaled in it yet")
        }
        guard version < knownVersion else { return }
        guard !readOnly else {
            throw JournalError(.notAJournal, "\(path) has journal schema \(version), older than \(knownVersion); open it read-write once to upgrade")
        }
        // A migration may rebuild a table others refer to (SQLite's way to change a constraint):
        // foreign keys are off while it runs (they cannot change inside a transaction) and
        // checked whole before it commits.
        try db.execute("PRAGMA foreign_keys = OFF")
        defer { try? db.execute("PRAGMA foreign_keys = ON") }
        try db.transaction {
            for (index, migration) in JournalMigrations.all.enumerated() where index >= version {
                try db.execute(migration.sql)
            }
            let broken = try db.query("PRAGMA foreign_key_check", bindings: []) { $0.string(0) ?? "" }
            guard broken.isEmpty else {
                throw JournalError(.sqlite, "upgrading the journal \(path) would break references in \(Set(broken).sorted()); nothing was changed")
            }
            try db.execute("PRAGMA user_version = \(knownVersion)")
        }
    }

    static func now() -> String { BackupMetadata.now() }

    // MARK: Runs

    /// A new run and its first events, in one transaction: a run is never journaled without them.
    /// `location`: where the backup is read (`BackupSource.address`).
    public func createRun(backup: String, source: String, location: String? = nil, options: String,
                          events: [NewEvent] = []) throws -> Int64 {
        try write {
            let now = Self.now()
            try db.run("""
                INSERT INTO runs (backup, source, location, options, tool_version, state, started_at, updated_at)
                VALUES (?, ?, ?, ?, ?, 'running', ?, ?)
                """, backup, source, location, options, InplaceVersion.current, now, now)
            let run = db.lastInsertRowID
            _ = try insert(run, events)
            return run
        }
    }

    public func setRunState(_ run: Int64, _ state: RunState) throws {
        let now = Self.now()
        let finished: String? = [.done, .partlyFailed, .failed].contains(state) ? now : nil
        try write {
            try db.run("UPDATE runs SET state = ?, updated_at = ?, finished_at = ? WHERE id = ?", state.rawValue, now,
                       finished, run)
        }
    }

    public func runs() throws -> [JournalRun] {
        try db.query("\(Self.runSelect) ORDER BY id", bindings: [], transform: Self.run)
    }

    public func run(_ id: Int64) throws -> JournalRun? {
        try db.query("\(Self.runSelect) WHERE id = ?", bindings: [id], transform: Self.run).first
    }

    /// The newest run that did not finish (running, interrupted or partly failed; never a
    /// superseded one), of this backup and options when given.
    public func unfinishedRun(backup: String? = nil, options: String? = nil) throws -> JournalRun? {
        try runs().reversed().first {
            ($0.state == .running || $0.state == .interrupted || $0.state == .partlyFailed)
                && (backup == nil || $0.backup == backup) && (options == nil || $0.options == options)
        }
    }

    // MARK: Events

    /// Journals events as pending, in one transaction; returns their ids.
    @discardableResult
    public func addEvents(_ run: Int64, _ events: [NewEvent]) throws -> [Int64] {
        try write { try insert(run, events) }
    }

    private func insert(_ run: Int64, _ events: [NewEvent]) throws -> [Int64] {
        let now = Self.now()
        var ids: [Int64] = []
        ids.reserveCapacity(events.count)
        for event in events {
            try db.run("""
                INSERT INTO events (run_id, kind, database_name, table_name, part, disk, bytes, identity, expected_count,
                                    sequence, state, detail, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)
                """, bindings: [run, event.kind.rawValue, event.database, event.table, event.part, event.disk, event.bytes,
                                event.identity, event.expectedCount, event.sequence, event.detail, now, now])
            let id = db.lastInsertRowID
            try db.run("INSERT INTO transitions (event_id, at, from_state, to_state, detail) VALUES (?, ?, NULL, 'pending', NULL)",
                       id, now)
            ids.append(id)
        }
        return ids
    }

    /// Changes an event's state (and what else is given) and appends the transition, in one
    /// committed transaction.
    public func transition(
        _ event: Int64, to state: EventState, detail: String? = nil, error: String? = nil, newPart: String? = nil,
        path: String? = nil, countAttempt: Bool = false, clearNewPart: Bool = false
    ) throws {
        let change = Change(event: event, state: state, detail: detail, error: error, newPart: newPart, path: path,
                            countAttempt: countAttempt, clearNewPart: clearNewPart)
        try write { try apply(change) }
    }

    /// Several transitions (of several events) in one committed transaction, in order: a batch
    /// of steps whose side effect is one statement (re-sequenced kept parts).
    func transition(_ changes: [Change]) throws {
        try write { for change in changes { try apply(change) } }
    }

    /// Holds a transition for the journal's next write (see 4. above), without waiting for the
    /// journal: the caller's next journal call, whatever it is, commits it or reads after it.
    public nonisolated func hold(
        _ event: Int64, to state: EventState, detail: String? = nil, newPart: String? = nil, path: String? = nil,
        countAttempt: Bool = false
    ) {
        let change = Change(event: event, state: state, detail: detail, error: nil, newPart: newPart, path: path,
                            countAttempt: countAttempt)
        held.withLock { $0.append(change) }
    }

    /// A read: held transitions are committed first, so that it sees them, and it is timed as
    /// journal work. Internal for the extensions in Journal+*.swift.
    func read<T>(_ body: () throws -> T) throws -> T {
        try flush()
        let meter = Meter()
        defer { record(meter) }
        return try body()
    }

    /// `?, ?, ...` for a list of `count` bindings.
    private static func placeholders(_ count: Int) -> String {
        Array(repeating: "?", count: count).joined(separator: ", ")
    }

    /// Commits the held transitions, if any.
    public func flush() throws {
        guard !held.withLock({ $0.isEmpty }) else { return }
        try write {}
    }

    /// One committed transaction: the held transitions first, then `body`. Held transitions
    /// that fail to commit are held again.
    func write<T>(_ body: () throws -> T) throws -> T {
        let meter = Meter()
        defer { record(meter) }
        let pending = held.withLock { queue in
            defer { queue.removeAll() }
            return queue
        }
        applied = 0
        let result: T
        do {
            result = try db.transaction { () throws -> T in
                for change in pending { try apply(change) }
                return try body()
            }
        } catch {
            held.withLock { $0.insert(contentsOf: pending, at: 0) }
            throw error
        }
        for _ in 0..<applied { committed() }
        return result
    }

    /// Marks a plan-table event done and journals the events it emits, in one transaction.
    @discardableResult
    public func completePlanTable(_ event: Int64, run: Int64, emitting events: [NewEvent], detail: String?) throws -> [Int64] {
        try write {
            let ids = try insert(run, events)
            try apply(Change(event: event, state: .done, detail: detail))
            return ids
        }
    }

    /// One transition of one event.
    struct Change: Sendable {
        var event: Int64
        var state: EventState
        var detail: String?
        var error: String?
        var newPart: String?
        var path: String?
        var countAttempt = false
        /// The recorded part is no longer the step's (an attach detached again after a failed check).
        var clearNewPart = false
    }

    private func apply(_ change: Change) throws {
        let (event, state, detail, error) = (change.event, change.state, change.detail, change.error)
        let (newPart, path, countAttempt) = (change.newPart, change.path, change.countAttempt)
        let keptPart: String? = change.clearNewPart ? nil : "keep"
        let now = Self.now()
        // The transition first: it reads the state being left.
        try db.run("""
            INSERT INTO transitions (event_id, at, from_state, to_state, detail)
            SELECT id, ?, state, ?, ? FROM events WHERE id = ?
            """, bindings: [now, state.rawValue, detail ?? error, event])
        try db.run("""
            UPDATE events SET state = ?, updated_at = ?, attempts = attempts + ?,
                last_error = CASE WHEN ? IS NULL THEN (CASE WHEN ? = 'done' THEN NULL ELSE last_error END) ELSE ? END,
                new_part = coalesce(?, CASE WHEN ? IS NULL THEN NULL ELSE new_part END), path = coalesce(?, path)
            WHERE id = ?
            """, bindings: [state.rawValue, now, countAttempt ? 1 : 0, error, state.rawValue, error, newPart, keptPart, path,
                            event])
        applied += 1
    }

    private func committed() {
        transitionsCommitted += 1
        if let crashAfter, transitionsCommitted == crashAfter {
            kill(getpid(), SIGKILL)
        }
    }

    public func events(_ run: Int64) throws -> [JournalEvent] {
        try read {
            try db.query("""
                \(Self.eventSelect) WHERE run_id = ? ORDER BY id
                """, bindings: [run], transform: Self.event)
        }
    }

    /// One table's events of a run, in order (an index serves it: a run of many tables does not
    /// read every event per table).
    public func events(_ run: Int64, database: String, table: String) throws -> [JournalEvent] {
        try read {
            return try db.query("""
                \(Self.eventSelect) WHERE run_id = ? AND database_name = ? AND table_name = ? ORDER BY sequence, id
                """, bindings: [run, database, table], transform: Self.event)
        }
    }

    /// A page of one table's events of the given kinds, in execution order after `after`
    /// (sequence, id); `JournalEventStream` reads a table this way. `sequence >= ?` lets the
    /// index start at the page (an OR alone would scan the table from its first event: a
    /// million-event table read in pages would take minutes, not seconds).
    public func events(_ run: Int64, database: String, table: String, kinds: [EventKind],
                       after: (sequence: Int, id: Int64), limit: Int) throws -> [JournalEvent] {
        try read {
            return try db.query("""
                \(Self.eventSelect) WHERE run_id = ? AND database_name = ? AND table_name = ?
                  AND sequence >= ? AND (sequence > ? OR id > ?) AND kind IN (\(Self.placeholders(kinds.count)))
                  AND state != 'superseded'
                ORDER BY sequence, id LIMIT ?
                """, bindings: [run, database, table, Int64(after.sequence), Int64(after.sequence), after.id]
                    + kinds.map(\.rawValue) + [Int64(limit)], transform: Self.event)
        }
    }

    /// The live parts a table's steps name (drops and detaches) or produced (attaches'
    /// recorded names), outside superseded steps: an attach whose name was not recorded is the
    /// active part of its identity that none of these, nor a kept part, is.
    public func claimedParts(_ run: Int64, database: String, table: String, from sequence: Int = 0) throws -> Set<String> {
        try read {
            Set(try db.query("""
                SELECT CASE WHEN kind = 'attach-part' THEN new_part ELSE part END FROM events
                WHERE run_id = ? AND database_name = ? AND table_name = ? AND sequence >= ? AND state != 'superseded'
                  AND kind IN ('attach-part', 'drop-part', 'detach-part')
                """, bindings: [run, database, table, Int64(sequence)]) { $0.string(0) }.compactMap { $0 })
        }
    }

    /// The last sequence of a table's steps (0 when it has none).
    public func lastSequence(_ run: Int64, database: String, table: String) throws -> Int {
        try read {
            try db.query("""
                SELECT coalesce(max(sequence), 0) FROM events WHERE run_id = ? AND database_name = ? AND table_name = ?
                """, bindings: [run, database, table]) { $0.int(0) }.first ?? 0
        }
    }

    /// The live parts a table's steps count on being active now: those of drops and detaches not
    /// begun, and the recorded parts of finished attaches (a resume checks them first).
    public func expectedActive(_ run: Int64, database: String, table: String, from sequence: Int = 0) throws -> Set<String> {
        try read {
            Set(try db.query("""
                SELECT CASE WHEN kind = 'attach-part' THEN new_part ELSE part END FROM events
                WHERE run_id = ? AND database_name = ? AND table_name = ? AND sequence >= ?
                  AND ((kind IN ('drop-part', 'detach-part') AND state = 'pending' AND attempts = 0)
                       OR (kind = 'attach-part' AND state = 'done'))
                """, bindings: [run, database, table, Int64(sequence)]) { $0.string(0) }.compactMap { $0 })
        }
    }

    /// Marks every unfinished part step of a table superseded (its plan is made again), and
    /// returns how many; one transaction.
    @discardableResult
    public func supersede(_ run: Int64, database: String, table: String, reason: String) throws -> Int {
        try write {
            let ids = try db.query("""
                SELECT id FROM events WHERE run_id = ? AND database_name = ? AND table_name = ?
                  AND kind NOT IN ('plan-table', 'create-table', 'drop-table') AND state NOT IN ('done', 'superseded')
                """, bindings: [run, database, table]) { $0.int64(0) }
            for id in ids { try apply(Change(event: id, state: .superseded, detail: reason)) }
            return ids.count
        }
    }

    /// Whether another download of this part in this run and table began before (one of a
    /// plan that was made again), so that a folder of the part in detached/ is this run's: a
    /// download refuses to start over a folder it did not make. A new plan's download of the
    /// same part takes it instead of fetching it again.
    public func earlierDownload(_ run: Int64, database: String, table: String, part: String, other event: Int64) throws -> Bool {
        try read {
            try db.query("""
                SELECT 1 FROM events WHERE run_id = ? AND database_name = ? AND table_name = ? AND kind = 'download-part'
                  AND part = ? AND id != ? AND attempts > 0 LIMIT 1
                """, bindings: [run, database, table, part, event]) { $0.int(0) }.isEmpty == false
        }
    }

    /// A table planned again: its new steps, after every step it has, and its new plan, in one transaction.
    @discardableResult
    /// `events` carry their final sequences (after every step the table has: see `lastSequence`).
    public func replan(_ planEvent: Int64, run: Int64, plan: String, emitting events: [NewEvent]) throws -> [Int64] {
        try write {
            try db.run("UPDATE events SET detail = ?, updated_at = ? WHERE id = ?", plan, Self.now(), planEvent)
            return try insert(run, events)
        }
    }

    /// The first event of a table (of `kinds`, or any) that is neither done nor failed, in
    /// execution order.
    public func nextUnfinished(_ run: Int64, database: String, table: String, kinds: [EventKind] = EventKind.allCases)
        throws -> JournalEvent?
    {
        try read {
            return try db.query("""
                \(Self.eventSelect) WHERE run_id = ? AND database_name = ? AND table_name = ?
                  AND state NOT IN ('done', 'failed', 'superseded') AND kind IN (\(Self.placeholders(kinds.count))) ORDER BY sequence, id LIMIT 1
                """, bindings: [run, database, table] + kinds.map(\.rawValue), transform: Self.event).first
        }
    }

    /// Replaces a plan-table event's plan (a refused table planned again on replay).
    public func replacePlan(_ event: Int64, plan: String) throws {
        try write { try db.run("UPDATE events SET detail = ?, updated_at = ? WHERE id = ?", plan, Self.now(), event) }
    }

    /// How many of a table's events of `kinds` are not done.
    public func notDone(_ run: Int64, database: String, table: String, kinds: [EventKind]) throws -> Int {
        try read {
            return Int(try db.query("""
                SELECT count(*) FROM events WHERE run_id = ? AND database_name = ? AND table_name = ?
                  AND state NOT IN ('done', 'superseded') AND kind IN (\(Self.placeholders(kinds.count)))
                """, bindings: [run, database, table] + kinds.map(\.rawValue)) { $0.int64(0) }.first ?? 0)
        }
    }

    /// A run's events of one kind, in order.
    public func events(_ run: Int64, kind: EventKind) throws -> [JournalEvent] {
        try read {
            return try db.query("""
                \(Self.eventSelect) WHERE run_id = ? AND kind = ? ORDER BY id
                """, bindings: [run, kind.rawValue], transform: Self.event)
        }
    }

    /// How many events of a run are in each state, and the bytes of its finished downloads: one
    /// aggregate query, whatever the number of events.
    public func counts(_ run: Int64) throws -> RunCounts {
        try read {
            var counts = RunCounts()
            try db.query("""
                SELECT state, count(*), sum(CASE WHEN kind = 'download-part' AND state = 'done' THEN bytes ELSE 0 END)
                FROM events WHERE run_id = ? GROUP BY state
                """, bindings: [run]) { row in
                let state = EventState(rawValue: row.string(0) ?? "") ?? .failed
                counts.byState[state, default: 0] += row.int(1)
                counts.bytesDownloaded += row.int64(2)
            }
            return counts
        }
    }

    /// Per table of a run: its events, how many are done and how many failed (`journal show`).
    public func tableCounts(_ run: Int64) throws -> [(database: String, table: String, events: Int, done: Int, failed: Int)] {
        try read {
            return try db.query("""
                SELECT database_name, table_name, count(*), sum(state = 'done'), sum(state = 'failed') FROM events
                WHERE run_id = ? GROUP BY database_name, table_name ORDER BY database_name, table_name
                """, bindings: [run]) { ($0.string(0) ?? "", $0.string(1) ?? "", $0.int(2), $0.int(3), $0.int(4)) }
        }
    }

    /// A run's events in one state, in order.
    public func events(_ run: Int64, state: EventState) throws -> [JournalEvent] {
        try read {
            return try db.query("""
                \(Self.eventSelect) WHERE run_id = ? AND state = ? ORDER BY id
                """, bindings: [run, state.rawValue], transform: Self.event)
        }
    }

    /// The first `limit` failed events of a run, in order.
    public func failedEvents(_ run: Int64, limit: Int) throws -> [JournalEvent] {
        try read {
            return try db.query("""
                \(Self.eventSelect) WHERE run_id = ? AND state = 'failed' ORDER BY id LIMIT ?
                """, bindings: [run, Int64(limit)], transform: Self.event)
        }
    }

    public func event(_ id: Int64) throws -> JournalEvent? {
        try read {
            return try db.query("""
                \(Self.eventSelect) WHERE id = ?
                """, bindings: [id], transform: Self.event).first
        }
    }

    public func transitions(_ event: Int64) throws -> [JournalTransition] {
        try read {
            try db.query("SELECT id, event_id, at, from_state, to_state, detail FROM transitions WHERE event_id = ? ORDER BY id",
                         bindings: [event], transform: Self.transition)
        }
    }

    /// Transitions of a whole run, in commit order (for checks and `journal show`).
    public func transitions(run: Int64) throws -> [JournalTransition] {
        try read {
            return try db.query("""
                SELECT t.id, t.event_id, t.at, t.from_state, t.to_state, t.detail FROM transitions t
                JOIN events e ON e.id = t.event_id WHERE e.run_id = ? ORDER BY t.id
                """, bindings: [run], transform: Self.transition)
        }
    }

    /// The columns `event(_:)` reads, in its order.
    private static let eventSelect = """
        SELECT id, run_id, kind, database_name, table_name, part, disk, bytes, identity, expected_count, sequence,
               state, attempts, last_error, new_part, path, detail FROM events
        """

    private static func run(_ row: SQLiteRow) -> JournalRun {
        JournalRun(id: row.int64(0), backup: row.string(1) ?? "", source: row.string(2) ?? "", options: row.string(3) ?? "",
                   toolVersion: row.string(4) ?? "", state: RunState(rawValue: row.string(5) ?? "") ?? .failed,
                   startedAt: row.string(6) ?? "", updatedAt: row.string(7) ?? "", finishedAt: row.string(8),
                   supersededBy: row.isNull(9) ? nil : row.int64(9), location: row.string(10))
    }

    private static func transition(_ row: SQLiteRow) -> JournalTransition {
        JournalTransition(id: row.int64(0), eventID: row.int64(1), at: row.string(2) ?? "",
                          from: row.string(3).flatMap(EventState.init(rawValue:)),
                          to: EventState(rawValue: row.string(4) ?? "") ?? .pending, detail: row.string(5))
    }

    private static func event(_ row: SQLiteRow) -> JournalEvent {
        JournalEvent(
            id: row.int64(0), runID: row.int64(1), kind: EventKind(rawValue: row.string(2) ?? "") ?? .planTable,
            database: row.string(3) ?? "", table: row.string(4) ?? "", part: row.string(5), disk: row.string(6),
            bytes: row.int64(7), identity: row.string(8), expectedCount: row.isNull(9) ? nil : row.int(9),
            sequence: row.int(10), state: EventState(rawValue: row.string(11) ?? "") ?? .pending, attempts: row.int(12),
            lastError: row.string(13), newPart: row.string(14), path: row.string(15), detail: row.string(16))
    }
}
