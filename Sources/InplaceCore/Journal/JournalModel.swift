/// The journal's records, as read back (and as `journal show --json` prints them).

public enum EventKind: String, Sendable, Codable, CaseIterable {
    case planTable = "plan-table"
    case createTable = "create-table"
    case dropPart = "drop-part"
    case downloadPart = "download-part"
    case attachPart = "attach-part"
    /// Drops the old copy of a recreated table, kept aside until the new one is complete.
    case dropTable = "drop-table"
    /// Detaches a kept live part that comes after a part to attach in the backup's order; an
    /// attach-part (detail `local`) attaches it again above it (since version 3).
    case detachPart = "detach-part"
    /// Compares the table's active parts with the backup's before the table is done (since version 3).
    case verifyTable = "verify-table"
    /// Kills an unfinished mutation of the live table (`--kill-mutations`; since version 3).
    case killMutation = "kill-mutation"
}

public enum EventState: String, Sendable, Codable, CaseIterable {
    /// Journaled, not begun.
    case pending
    /// Journaled as begun: its side effect may or may not have happened (checked on resume).
    case started
    case done
    /// Gave up after its attempts; `last_error` says why. Replayable.
    case failed
    /// Stopped by Ctrl-C or SIGTERM before it finished; resumed like `started`.
    case interrupted
    /// Replaced by the steps of a new plan of its table (a merge took parts the plan named).
    case superseded
}

public enum RunState: String, Sendable, Codable {
    case running
    case interrupted
    case done
    case partlyFailed = "partly_failed"
    case failed
    /// An unfinished run that `restore --new-run` replaced: never resumed.
    case superseded
}

public struct JournalRun: Sendable, Codable, Equatable {
    public var id: Int64
    public var backup: String
    public var source: String
    public var options: String
    public var toolVersion: String
    public var state: RunState
    public var startedAt: String
    public var updatedAt: String
    public var finishedAt: String?
    /// The run that superseded this one (`restore --new-run`), when `state` is `superseded`.
    public var supersededBy: Int64?
    /// Where the run read its backup: the local folder or `s3://bucket/<effective s3.path>/NAME/`
    /// (nil for runs journaled before schema 4).
    public var location: String?

    enum CodingKeys: String, CodingKey {
        case id, backup, source, location, options, state
        case toolVersion = "tool_version"
        case startedAt = "started_at"
        case updatedAt = "updated_at"
        case finishedAt = "finished_at"
        case supersededBy = "superseded_by"
    }
}

public struct JournalEvent: Sendable, Codable, Equatable {
    public var id: Int64
    public var runID: Int64
    public var kind: EventKind
    public var database: String
    public var table: String
    public var part: String?
    public var disk: String?
    public var bytes: Int64
    public var identity: String?
    public var expectedCount: Int?
    public var sequence: Int
    public var state: EventState
    public var attempts: Int
    public var lastError: String?
    public var newPart: String?
    public var path: String?
    public var detail: String?

    enum CodingKeys: String, CodingKey {
        case id, kind, database, table, part, disk, bytes, identity, sequence, state, attempts, path, detail
        case runID = "run_id"
        case expectedCount = "expected_count"
        case lastError = "last_error"
        case newPart = "new_part"
    }
}

/// An event to journal (before it has an id).
public struct NewEvent: Sendable, Equatable {
    public var kind: EventKind
    public var database: String
    public var table: String
    public var part: String?
    public var disk: String?
    public var bytes: Int64
    public var identity: String?
    public var expectedCount: Int?
    public var sequence: Int
    public var detail: String?

    public init(kind: EventKind, database: String, table: String, part: String? = nil, disk: String? = nil,
                bytes: Int64 = 0, identity: String? = nil, expectedCount: Int? = nil, sequence: Int = 0,
                detail: String? = nil) {
        self.kind = kind
        self.database = database
        self.table = table
        self.part = part
        self.disk = disk
        self.bytes = bytes
        self.identity = identity
        self.expectedCount = expectedCount
        self.sequence = sequence
        self.detail = detail
    }
}

public struct JournalTransition: Sendable, Codable, Equatable {
    public var id: Int64
    public var eventID: Int64
    public var at: String
    public var from: EventState?
    public var to: EventState
    public var detail: String?

    enum CodingKeys: String, CodingKey {
        case id, at, from, to, detail
        case eventID = "event_id"
    }
}

/// The journal's one typed error.
public struct JournalError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// Another process holds the journal.
        case locked
        case notAJournal
        case newerSchema(found: Int, known: Int)
        case notFound
        /// The journal's file was deleted or replaced while a process used it.
        case removed
        /// The run was superseded (`restore --new-run`) by the given run, and is never resumed.
        case superseded(by: Int64?)
        /// An unfinished run of the same backup with other options: resume it or supersede it.
        case unfinishedRun(Int64)
        case sqlite
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

/// Event counts of a run by state (`Journal.counts`).
public struct RunCounts: Sendable, Equatable {
    public var byState: [EventState: Int] = [:]
    public var bytesDownloaded: Int64 = 0

    public var events: Int { byState.values.reduce(0, +) }
    public subscript(_ state: EventState) -> Int { byState[state] ?? 0 }
}
