import Foundation

/// The options of a restore, as journaled with its run (never a password or a secret).
public struct RestoreOptions: Sendable, Codable, Equatable {
    public var tables: String?
    public var dropIfSchemaChanged: Bool
    public var full: Bool
    /// Restore data into existing tables only: no table is created.
    public var dataOnly: Bool
    /// Create missing tables only: no part is dropped or downloaded.
    public var schemaOnly: Bool
    public var ignoreDiskSpace: Bool
    public var concurrency: Int
    /// A table's drops run before its downloads, to free disk space first, trusting that the
    /// backup's parts that are listed will download and attach. By default drops wait until
    /// every part of the backup for the table is attached and verified.
    public var dropFirst: Bool
    /// Kill a live table's unfinished mutations before restoring it, instead of refusing it.
    public var killMutations: Bool

    public init(tables: String? = nil, dropIfSchemaChanged: Bool = false, full: Bool = false, dataOnly: Bool = false,
                schemaOnly: Bool = false, ignoreDiskSpace: Bool = false, concurrency: Int = 4, dropFirst: Bool = false,
                killMutations: Bool = false) {
        self.killMutations = killMutations
        self.tables = tables
        self.dropIfSchemaChanged = dropIfSchemaChanged
        self.full = full
        self.dataOnly = dataOnly
        self.schemaOnly = schemaOnly
        self.ignoreDiskSpace = ignoreDiskSpace
        self.concurrency = concurrency
        self.dropFirst = dropFirst
    }

    enum CodingKeys: String, CodingKey {
        case tables, dropIfSchemaChanged, full, dataOnly, schemaOnly, ignoreDiskSpace, concurrency, dropFirst,
             killMutations
    }

    /// Runs journaled before `dropFirst` or `killMutations` existed decode with their defaults.
    public init(from decoder: any Decoder) throws {
        let values = try decoder.container(keyedBy: CodingKeys.self)
        tables = try values.decodeIfPresent(String.self, forKey: .tables)
        dropIfSchemaChanged = try values.decode(Bool.self, forKey: .dropIfSchemaChanged)
        full = try values.decode(Bool.self, forKey: .full)
        dataOnly = try values.decode(Bool.self, forKey: .dataOnly)
        schemaOnly = try values.decode(Bool.self, forKey: .schemaOnly)
        ignoreDiskSpace = try values.decode(Bool.self, forKey: .ignoreDiskSpace)
        concurrency = try values.decode(Int.self, forKey: .concurrency)
        dropFirst = try values.decodeIfPresent(Bool.self, forKey: .dropFirst) ?? false
        killMutations = try values.decodeIfPresent(Bool.self, forKey: .killMutations) ?? false
    }

    /// `killMutations` is written only when set, so the options of a run without it read as
    /// they did before it existed (an unfinished run is found again by its options' text).
    public func encode(to encoder: any Encoder) throws {
        var values = encoder.container(keyedBy: CodingKeys.self)
        try values.encodeIfPresent(tables, forKey: .tables)
        try values.encode(dropIfSchemaChanged, forKey: .dropIfSchemaChanged)
        try values.encode(full, forKey: .full)
        try values.encode(dataOnly, forKey: .dataOnly)
        try values.encode(schemaOnly, forKey: .schemaOnly)
        try values.encode(ignoreDiskSpace, forKey: .ignoreDiskSpace)
        try values.encode(concurrency, forKey: .concurrency)
        try values.encode(dropFirst, forKey: .dropFirst)
        if killMutations { try values.encode(true, forKey: .killMutations) }
    }

    /// Stable JSON (sorted keys): two runs with equal options journal equal text.
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }
}

/// A counting semaphore for async tasks: bounds transfers across all tables of a run.
actor AsyncSemaphore {
    private var available: Int
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(_ count: Int) { available = max(1, count) }

    func acquire() async {
        if available > 0 {
            available -= 1
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty {
            available += 1
        } else {
            waiters.removeFirst().resume()
        }
    }

    /// Runs `body` holding one slot, released however it ends.
    nonisolated func withSlot<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        await acquire()
        do {
            let result = try await body()
            await release()
            return result
        } catch {
            await release()
            throw error
        }
    }
}
