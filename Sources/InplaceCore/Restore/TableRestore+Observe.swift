import Foundation

/// What the executor looks at before it decides (ResumeDecision): the table's active parts, the
/// statements of a step still running on the server, `detached/`. Queries are per table (or per
/// partition), never per part of a whole server.
extension TableRestore {
    struct ActivePart: Sendable {
        var name: String
        var partitionID: String
        var minBlock: Int64
        var maxBlock: Int64
        var hash: String
        /// Absolute folder of the part, ending in `/`.
        var path: String
    }

    /// The table's active parts (of one partition, or the one of that name, when given): one query.
    func activeParts(partition: String? = nil, name: String? = nil) async throws -> [ActivePart] {
        var parameters = ["db": planEvent.database, "t": planEvent.table]
        if let partition { parameters["p"] = partition }
        if let name { parameters["n"] = name }
        let rows = try await client.execute(
            """
            SELECT name, partition_id, min_block_number, max_block_number, lower(hash_of_all_files), path
            FROM system.parts WHERE database = {db:String} AND table = {t:String} AND active
            \(partition == nil ? "" : "AND partition_id = {p:String}") \(name == nil ? "" : "AND name = {n:String}")
            ORDER BY partition_id, min_block_number
            """, parameters: parameters)
        return rows.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard fields.count >= 6, let low = Int64(fields[2]), let high = Int64(fields[3]) else { return nil }
            let path = fields[5].hasSuffix("/") ? fields[5] : fields[5] + "/"
            return ActivePart(name: fields[0], partitionID: fields[1], minBlock: low, maxBlock: high, hash: fields[4], path: path)
        }
    }

    /// Whether a part is active, or which active part covers its blocks (a merge of it).
    func observePart(_ name: PartName) async throws -> ResumeDecision.Observation {
        let active = try await activeParts(partition: name.partitionID)
        var seen = ResumeDecision.Observation()
        seen.partActive = active.contains { $0.name == name.name }
        if !seen.partActive {
            seen.coveredBy = active.first { $0.minBlock <= name.minBlock && $0.maxBlock >= name.maxBlock }?.name
        }
        return seen
    }

    /// A content identity computed the way the plan computed it: `hash_of_all_files`, or the
    /// CRC-64 of checksums.txt.
    func identityOf(_ part: ActivePart, crc: Bool) throws -> String {
        guard crc else { return part.hash }
        return "crc64:\(CRC64.checksum(try FileSystem.readFile(part.path + "checksums.txt")))"
    }

    /// The same identity from the part's folder alone (ending in `/`): `hash_of_all_files`
    /// computed from checksums.txt, or its CRC-64; nil when the file cannot be read or parsed.
    static func identityOnDisk(_ folder: String, crc: Bool) -> String? {
        guard let file = try? FileSystem.readFile(folder + "checksums.txt") else { return nil }
        return crc ? "crc64:\(CRC64.checksum(file))" : PartChecksums.hashOfAllFiles(checksumsFile: file)
    }

    /// An attach whose name was not recorded (killed right after ATTACH returned): the active
    /// part of its partition and identity that no step of the run and no kept part claims. By
    /// exclusion, never by counting parts of an identity.
    func unclaimedPart(_ attach: JournalEvent) async throws -> String? {
        guard let identity = attach.identity, let name = PartName(attach.part ?? "") else { return nil }
        let plan = try await currentPlan()
        var claimed = try await journal.claimedParts(run, database: planEvent.database, table: planEvent.table,
                                                     from: plan.firstStep)
        claimed.formUnion(plan.keep.map(\.live))
        let candidates = try await activeParts(partition: name.partitionID).filter { part in
            !claimed.contains(part.name) && (try? identityOf(part, crc: identity.hasPrefix("crc64:"))) == identity
        }
        return candidates.max { $0.minBlock < $1.minBlock }?.name
    }

    // MARK: Statements of a step

    /// Seconds a resume waits for a statement of a step still running on the server.
    static var statementWaits: Int { 3600 }

    /// The query_id prefix of a step's statements: the journal, the run and the event.
    func queryIDPrefix(_ event: JournalEvent) -> String { "inplace-" + runner.stagingPrefix(run) + "event-\(event.id)-" }

    /// A query_id for one statement of a step (ClickHouse refuses a second query with an id
    /// still running, so each statement gets its own).
    func queryID(_ event: JournalEvent) -> String { queryIDPrefix(event) + String(UInt32.random(in: 0...UInt32.max), radix: 16) }

    /// The resume decision of a step that may have happened, once no statement of it still runs
    /// on the server (downloads send none). `observe` gathers what the table and the disk show.
    func decision(_ event: JournalEvent, _ facts: ResumeDecision.Facts,
                  observe: () async throws -> ResumeDecision.Observation) async throws -> ResumeDecision.Action {
        for _ in 0..<Self.statementWaits {
            var seen = try await observe()
            if facts.kind != .downloadPart {
                seen.statementRunning = try await runner.statementsRunning(prefix: queryIDPrefix(event))
            }
            let action = ResumeDecision.decide(facts, seen)
            guard action == .wait else { return action }
            try await Task.sleep(for: .seconds(1))
        }
        throw RestoreError("a statement of step \(event.id) is still running on the server after \(Self.statementWaits) s; wait for it (system.processes), then resume")
    }

    /// The same, for `perform`'s check: true when done, false when the step must run; a table
    /// to plan again throws.
    func settled(_ event: JournalEvent, _ facts: ResumeDecision.Facts,
                 observe: () async throws -> ResumeDecision.Observation) async throws -> Bool {
        switch try await decision(event, facts, observe: observe) {
        case .done, .skip: return true
        case .run, .check, .wait: return false
        case .replan(let why): throw TableNeedsReplan(reason: why)
        }
    }

    // MARK: Before planning again

    /// Kept parts this run detached and did not attach again are attached back, so that the new
    /// plan sees them live (in whatever order: the new plan re-sequences what it must).
    func attachBackDetached() async throws {
        let detached = try await detachedFolders()
        for try await (first, attach) in BringPairs(events: stream([.detachPart, .attachPart]))
        where first.kind == .detachPart && attach.state != .done && (first.state != .pending || first.attempts > 0) {
            let folder = try detachedFolder(detached, disk: first.disk)
            guard let part = first.part, FileSystem.isFolder(folder + part) else { continue }
            try await client.execute("ALTER TABLE \(qualified) ATTACH PART \(ClickHouseSQL.string(part))",
                                     settings: ["query_id": queryID(attach)])
            runner.logger.info("\(planEvent.database).\(planEvent.table): kept part \(part) attached back before planning again")
        }
    }

    /// Parts that downloads of the first plan left in detached/ and the new plan does not download.
    func removeUnusedDownloads(keeping parts: Set<String>) async throws {
        let detached = try await detachedFolders()
        for event in try await journal.events(run, database: planEvent.database, table: planEvent.table)
        where event.kind == .downloadPart && event.attempts > 0 {
            guard let part = event.part, !parts.contains(part) else { continue }
            let folder = try detachedFolder(detached, disk: event.disk) + part
            if FileSystem.isFolder(folder) { try? FileManager.default.removeItem(atPath: folder) }
        }
    }
}
