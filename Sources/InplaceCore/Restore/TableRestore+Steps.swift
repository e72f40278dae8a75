import Foundation

extension TableRestore {
    // MARK: create-table

    func createTable(_ event: JournalEvent) async throws -> ActionResult {
        let statement = try JSONDecoder().decode(CreateStatement.self, from: Data((event.detail ?? "").utf8))
        guard !statement.table.contains("[HIDDEN]") else {
            throw BackupError(.invalidMetadata, "the backup's CREATE statement of \(event.database).\(event.table) hides secrets as [HIDDEN]; it cannot be created from this backup")
        }
        try await client.execute(statement.database)
        var table = statement.table
        if statement.dropFirst, let aside = statement.aside {
            // The old table waits under another name until the new one is complete (a
            // drop-table step removes it then): a backup part that fails costs no live data.
            let oldAside = ClickHouseSQL.qualified(event.database, aside)
            if try await tableExists(event.table) {
                guard try await !tableExists(aside) else {
                    throw BackupError(.io, "both \(qualified) and \(oldAside) exist; look at both, drop the one that is not wanted, then replay")
                }
                try await client.execute("RENAME TABLE \(qualified) TO \(oldAside)")
            }
            // The backup's CREATE may name the old table's UUID, which the renamed copy still holds.
            if let uuid = try await tableUUID(aside), table.contains(uuid) {
                table = table.replacingOccurrences(of: " UUID '\(uuid)'", with: "")
            }
            try await client.execute(table)
            return ActionResult(detail: "created; the old table waits as \(aside) until every part is attached")
        }
        if statement.dropFirst { try await client.execute("DROP TABLE IF EXISTS \(qualified) SYNC") }
        try await client.execute(table)
        return ActionResult(detail: statement.dropFirst ? "dropped and created" : "created")
    }

    /// Drops a recreated table's old copy (a drop-table step).
    func dropAside(_ event: JournalEvent) async throws -> ActionResult {
        guard let aside = event.detail, aside.hasPrefix(".inplace-old-") else {
            throw BackupError(.invalidMetadata, "drop-table step \(event.id) names no table kept aside")
        }
        try await client.execute("DROP TABLE IF EXISTS \(ClickHouseSQL.qualified(event.database, aside)) SYNC")
        return ActionResult(detail: "dropped \(aside)")
    }

    func tableExists(_ name: String) async throws -> Bool {
        try await tableUUID(name) != nil
    }

    /// The UUID of a table of this database, nil when there is no such table.
    func tableUUID(_ name: String) async throws -> String? {
        let rows = try await client.execute(
            "SELECT toString(uuid) FROM system.tables WHERE database = {db:String} AND name = {t:String}",
            parameters: ["db": planEvent.database, "t": name])
        return rows.split(separator: "\n").first.map(String.init)
    }

    /// On resume: the table exists with the backup's columns and no parts yet (attaches come
    /// after this event, so parts would mean the old table is still there).
    func createTableDone(_ event: JournalEvent) async throws -> Bool {
        let statement = try JSONDecoder().decode(CreateStatement.self, from: Data((event.detail ?? "").utf8))
        let rows = try await client.tsvRows(
            """
            SELECT create_table_query,
                   (SELECT count() FROM system.parts WHERE database = {db:String} AND table = {t:String} AND active)
            FROM system.tables WHERE database = {db:String} AND name = {t:String}
            """, as: LiveTableRow.self, settings: ["show_table_uuid_in_table_create_query_if_not_nil": "1"],
            parameters: ["db": event.database, "t": event.table])
        guard let live = rows.first else { return false }
        return Planner.schemaDifference(backup: statement.table, live: live.query) == nil
            && (!statement.dropFirst || live.parts == 0)
    }

    private struct LiveTableRow: TSVDecodable, Sendable {
        let query: String
        let parts: Int
        init(row: TSVRow) throws {
            query = try row.string(0)
            parts = try row.int(1)
        }
    }

    // MARK: drop-part

    func dropPart(_ event: JournalEvent) async throws -> ActionResult {
        // dropDone refuses a name that cannot be a part's before anything runs.
        guard try await !dropDone(event) else { return ActionResult(detail: "already gone") }
        try await client.execute("ALTER TABLE \(qualified) DROP PART \(ClickHouseSQL.string(event.part ?? ""))")
        return ActionResult()
    }

    /// Whether a drop's part is gone. Gone by a merge is not gone: its rows live on in the part
    /// that covers its blocks, with rows the backup has too, so the step fails and asks for a
    /// new plan rather than report the drop done (merges are stopped on a run's tables when it
    /// starts; one that ran between the plan and then, or after a server restart, can do this).
    func dropDone(_ event: JournalEvent) async throws -> Bool {
        let part = event.part ?? ""
        let name = try PartName.validated(part, context: "drop-part")
        // The active parts holding its blocks: itself while it is there, or what it merged into.
        let covering = try await client.execute(
            """
            SELECT name FROM system.parts WHERE database = {db:String} AND table = {t:String} AND active
              AND partition_id = {p:String} AND min_block_number <= {lo:Int64} AND max_block_number >= {hi:Int64}
            """,
            parameters: ["db": planEvent.database, "t": planEvent.table, "p": name.partitionID,
                         "lo": String(name.minBlock), "hi": String(name.maxBlock)]
        ).split(separator: "\n").map(String.init)
        if covering.contains(part) { return false }
        guard let merged = covering.first else { return true }
        throw RestoreError("the live part \(part) was merged into \(merged) since the plan; dropping \(merged) would drop rows the backup has too. Start a new run to plan again: inplace restore --new-run NAME")
    }

    // MARK: download-part and attach-part

    /// Downloads run ahead of the attaches, `--concurrency` at a time per table and bounded
    /// across the run by the transfer slots; attaches follow one by one in the plan's order.
    func downloadAndAttach(_ pairs: DownloadAttachPairs) async throws {
        let detached = try await detachedFolders()
        let downloads = pairs.orderedMap(width: options.concurrency) { [self] pair in
            (pair, try await fetch(pair.download, detached: detached))
        }
        var results = downloads.makeAsyncIterator()
        do {
            while let (pair, downloaded) = try await results.next() {
                let attach = pair.attach
                guard attach.state != .done else { continue }
                guard downloaded else {
                    if attach.state != .failed {
                        try await journal.transition(attach.id, to: .failed, error: "its download failed")
                    }
                    continue
                }
                try await attachPart(attach, download: pair.download,
                                     folder: try detachedFolder(detached, disk: attach.disk))
            }
        } catch {
            await results.cancelAndWait()
            throw error
        }
    }

    /// One download step; whether its part is (now) in detached/.
    private func fetch(_ download: JournalEvent, detached: [String]) async throws -> Bool {
        if download.state == .done { return true }
        if download.state == .failed { return false }
        let folder = try detachedFolder(detached, disk: download.disk)
        let target = folder + (download.part ?? "")
        if download.state == .pending && download.attempts == 0 && FileSystem.exists(target) {
            // Refused before it starts, so that a folder found there on resume is known to be
            // this step's own.
            try await journal.transition(download.id, to: .failed,
                                         error: "\(target) already exists and is not this restore's; attach or remove it, then replay")
            return false
        }
        // Its `done` rides with the attach's `started`: a complete download is in detached/,
        // where a resume finds it.
        return try await transfers.withSlot {
            try await perform(download, holdDone: true, check: { FileSystem.isFolder(target) },
                              action: { try await self.download(download, into: folder) })
        }
    }

    private func attachPart(_ attach: JournalEvent, download: JournalEvent, folder: String) async throws {
        let part = attach.part ?? ""
        let mayHaveHappened = attach.state == .started || attach.state == .interrupted || attach.attempts > 0
        if mayHaveHappened, !FileSystem.isFolder(folder + part) {
            guard attach.identity != nil else {
                // Without a content hash, a gone folder cannot tell attached from lost.
                try await journal.transition(attach.id, to: .failed, error: "cannot tell whether \(part) was attached: the backup has no content hash for it; check the table, then replay")
                return
            }
            if try await attachedAlready(attach) {
                try await journal.transition(attach.id, to: .done, detail: "found attached on resume")
                await progress.done()
                return
            }
            // Gone from detached/ but not attached: fetch it again, then attach.
            let refetch = try await journal.event(download.id) ?? download
            try await journal.transition(refetch.id, to: .pending, detail: "part gone from detached/ before its attach")
            var pending = refetch
            pending.state = .pending
            pending.attempts = 0
            let fetched = try await transfers.withSlot {
                try await perform(pending, check: { false }, action: { try await self.download(pending, into: folder) })
            }
            guard fetched else {
                try await journal.transition(attach.id, to: .failed, error: "its download failed")
                return
            }
        }
        var fresh = attach
        fresh.state = .pending  // reality checked above; retries check again below
        fresh.attempts = 0
        // With a content identity, its `done` rides with the journal's next write: a resume that
        // finds it `started` counts the live parts of that identity and sees it attached.
        _ = try await perform(fresh, holdDone: attach.identity != nil, check: {
            guard !FileSystem.isFolder(folder + part), attach.identity != nil else { return false }
            return try await attachedAlready(attach)
        }, action: { try await self.attach(attach, folder: folder) })
    }

    /// Whether the table already holds this attach's part: live parts of its identity number at
    /// least the kept ones, plus the attaches of that identity before it that are done, plus one.
    /// Counted, never "some part has this hash": identical data gives identical hashes.
    private func attachedAlready(_ attach: JournalEvent) async throws -> Bool {
        guard let identity = attach.identity else { return false }
        let earlier = try await journal.earlierAttaches(run, database: planEvent.database, table: planEvent.table,
                                                        identity: identity, before: attach.sequence)
        let kept = (attach.expectedCount ?? 1) - earlier.count - 1
        let expected = kept + earlier.done + 1
        return try await liveCount(identity) >= expected
    }

    private func download(_ event: JournalEvent, into detached: String) async throws -> ActionResult {
        let part = event.part ?? ""
        _ = try PartName.validated(part, context: "download-part")
        guard let disk = runner.disks.first(where: { $0.name == event.disk }) else {
            throw BackupError(.unsupportedDisk, "disk '\(event.disk ?? "")' is not on this server")
        }
        // Staging on the table's disk (so the final rename stays on one file system), owner-only.
        let staging = disk.path + "backup/.inplace-staging/" + runner.stagingPrefix(run) + "event-\(event.id)"
        try? FileManager.default.removeItem(atPath: staging)
        try FileSystem.makeFolders(staging, mode: 0o700)
        defer { try? FileManager.default.removeItem(atPath: staging) }
        let fetched = try await runner.source.fetchPart(database: event.database, table: event.table,
                                                        disk: event.disk ?? "default", part: part, into: staging)
        let destination = detached + part
        guard !FileSystem.exists(destination) else {
            throw BackupError(.io, "\(destination) already exists and is not this restore's; attach or remove it, then replay")
        }
        guard rename(fetched.folder, destination) == 0 else {
            throw FileSystem.ioError("cannot move \(fetched.folder) to \(destination)")
        }
        FileSystem.syncFolder(detached)
        return ActionResult(detail: fetched.linked ? "hard-linked" : "\(fetched.bytes) bytes", path: destination)
    }

    private func attach(_ event: JournalEvent, folder: String) async throws -> ActionResult {
        let part = event.part ?? ""
        let answer: String
        do {
            answer = try await client.execute("ALTER TABLE \(qualified) ATTACH PART \(ClickHouseSQL.string(part))",
                                              settings: ["alter_partition_verbose_result": "1"])
        } catch {
            guard !error.isRetryable else { throw error }
            // A refused part (a damaged checksums.txt, a missing file) leaves detached/, so that
            // a replay after the backup is repaired fetches it again without anyone's help.
            let kept = quarantine(folder + part, event: event)
            throw BackupError(.missingData, "ClickHouse refused the backup's part \(part): \(error)\n\(kept); \(Self.repairAdvice)")
        }
        // command_type, partition_id, part_name, old_part_name
        let fields = answer.split(separator: "\n").first?.split(separator: "\t", omittingEmptySubsequences: false) ?? []
        let newName = fields.count >= 3 ? String(fields[2]) : part
        do {
            try await verify(newName, identity: event.identity)
        } catch let error as BackupError where error.kind == .missingData {
            let kept = quarantine(folder + newName, event: event)
            throw BackupError(.missingData, "\(error.message); \(kept); \(Self.repairAdvice)")
        }
        return ActionResult(detail: "attached as \(newName)", newPart: newName)
    }

    /// The attached part holds the backup's content and ClickHouse's CHECK passes; otherwise it
    /// is detached again and the event fails (ATTACH accepts a flipped byte in a data file).
    private func verify(_ part: String, identity: String?) async throws {
        let row = try await client.execute(
            "SELECT lower(hash_of_all_files), active FROM system.parts WHERE database = {db:String} AND table = {t:String} AND name = {p:String}",
            parameters: ["db": planEvent.database, "t": planEvent.table, "p": part]
        ).split(separator: "\n").first?.split(separator: "\t").map(String.init) ?? []
        let hash = row.first ?? ""
        var problem: String?
        if hash.isEmpty {
            problem = "the attached part \(part) is not in the table"
        } else if let identity, !identity.hasPrefix("crc64:"), hash != identity {
            problem = "the attached part \(part) has hash \(hash), the backup's is \(identity)"
        } else if let identity, identity.hasPrefix("crc64:"),
                  let live = try await ClickHouseCatalog(client: client).parts(of: [(planEvent.database, planEvent.table)])
                    .first(where: { $0.name == part }),
                  let bytes = try? FileSystem.readFile(live.path + "checksums.txt"),
                  "crc64:\(CRC64.checksum(bytes))" != identity
        {
            problem = "the attached part \(part) is not the backup's (its checksums.txt differs)"
        } else if row.count > 1 && row[1] == "0" {
            // Merged into another part already: the merge read every byte of it, and its hash is
            // the backup's. Nothing is left to CHECK.
            return
        } else {
            let check = try await client.execute("CHECK TABLE \(qualified) PART \(ClickHouseSQL.string(part))",
                                                 settings: ["check_query_single_value_result": "0"])
            let failed = check.split(separator: "\n").filter { $0.split(separator: "\t").dropFirst().first == "0" }
            if !failed.isEmpty { problem = "CHECK TABLE failed for \(part): \(failed.joined(separator: "; "))" }
        }
        if let problem {
            _ = try? await client.execute("ALTER TABLE \(qualified) DETACH PART \(ClickHouseSQL.string(part))")
            throw BackupError(.missingData, "\(problem); the part was detached again")
        }
    }

    static let repairAdvice = "repair the backup (or take this part from another), then `inplace journal replay RUN --failed`"

    /// Moves a part the table refused out of detached/ into the disk's quarantine folder
    /// (owner-only, named after the journal's run and the step); says where it went.
    func quarantine(_ path: String, event: JournalEvent) -> String {
        guard FileSystem.isFolder(path) else { return "nothing was left in detached/" }
        guard let disk = runner.disk(holding: path) else { return "the part stays in \(path) for inspection; remove it before restoring this part again" }
        let root = disk.path + "backup/.inplace-quarantine/"
        let target = root + runner.stagingPrefix(run) + "event-\(event.id)-" + ((path as NSString).lastPathComponent)
        do {
            try FileSystem.makeFolders(root, mode: 0o700)
            try? FileManager.default.removeItem(atPath: target)
            guard rename(path, target) == 0 else { throw FileSystem.ioError("cannot move \(path) to \(target)") }
            return "the part was moved to \(target) for inspection"
        } catch {
            return "the part stays in \(path) for inspection (\(error)); remove it before restoring this part again"
        }
    }

    /// Active parts of this table with the identity (hash, or CRC-64 of checksums.txt).
    private func liveCount(_ identity: String?) async throws -> Int {
        guard let identity else { return 0 }
        let parts = try await ClickHouseCatalog(client: client).parts(of: [(planEvent.database, planEvent.table)])
        if identity.hasPrefix("crc64:") {
            return parts.filter { part in
                (try? FileSystem.readFile(part.path + "checksums.txt")).map { "crc64:\(CRC64.checksum($0))" } == identity
            }.count
        }
        return parts.filter { $0.hash == identity }.count
    }

    private func detachedFolders() async throws -> [String] {
        let tables = try await ClickHouseCatalog(client: client).tables()
        return tables.first { $0.database == planEvent.database && $0.name == planEvent.table }?.dataPaths ?? []
    }

    private func detachedFolder(_ dataPaths: [String], disk: String?) throws -> String {
        // A data path belongs to the disk with the longest matching path: another disk may be
        // mounted inside the default disk's folder.
        guard let disk = runner.disks.first(where: { $0.name == (disk ?? "default") }),
              let path = dataPaths.first(where: { runner.disk(holding: $0)?.name == disk.name })
        else {
            throw BackupError(.unsupportedDisk, "\(planEvent.database).\(planEvent.table) has no data folder on disk '\(disk ?? "default")'")
        }
        let folder = (path.hasSuffix("/") ? path : path + "/") + "detached/"
        try FileSystem.makeFolders(folder)
        return folder
    }
}
