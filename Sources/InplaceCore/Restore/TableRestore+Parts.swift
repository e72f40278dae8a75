import Foundation

/// Bringing the backup's parts into a table, in the backup's order: downloads run ahead (bounded
/// across the run by the transfer slots); in order, each re-sequenced kept part is detached and
/// each part attached, then checked.
///
/// The attach protocol: `started` is committed; ATTACH PART runs with a query_id of the step;
/// the part is checked (hash, and CHECK TABLE ... PART for a downloaded part); then `done` with
/// the name ClickHouse gave the part (held for the next commit). A part without a content hash
/// has its name committed before the check (`attached as X`, still `started`): resume could not
/// find it by exclusion. Every retry and
/// every resume decides from what was recorded and what the table shows (`ResumeDecision`), so a
/// check that did not pass never counts as one that did.
extension TableRestore {
    // MARK: Bringing parts in

    /// Once a step of a partition fails, the later steps of that partition wait (failed,
    /// replayable): attaching them now would put their data before the failed part's in block
    /// order. Downloads go on; their parts wait in `detached/`.
    func bringParts(_ pairs: BringPairs) async throws {
        let detached = try await detachedFolders()
        let firsts = pairs.orderedMap(width: options.concurrency) { [self] pair in
            (pair: pair, fetched: pair.first.kind == .downloadPart ? try await fetch(pair.first, detached: detached) : true)
        }
        var results = firsts.makeAsyncIterator()
        var blocked: [String: String] = [:]
        var next: (pair: BringPairs.Element, fetched: Bool)?
        do {
            while true {
                let upcoming = next.take()
                guard let item = try await (upcoming == nil ? results.next() : upcoming) else { break }
                let folder = try detachedFolder(detached, disk: item.pair.attach.disk)
                guard let first = freshResequence(item.pair, folder: folder, blocked: blocked) else {
                    try await bringOne(item.pair, fetched: item.fetched, folder: folder, blocked: &blocked)
                    continue
                }
                // Re-sequenced kept parts in a row, of one partition and disk: detached and
                // attached again by one ALTER each (executed in order, each part journaled).
                var batch = [(part: first, pair: item.pair)]
                while batch.count < Self.resequenceBatch, let more = try await results.next() {
                    guard more.pair.attach.disk == item.pair.attach.disk,
                          let part = freshResequence(more.pair, folder: folder, blocked: blocked),
                          part.partitionID == first.partitionID
                    else {
                        next = more
                        break
                    }
                    batch.append((part, more.pair))
                }
                if batch.count == 1 {
                    try await bringOne(item.pair, fetched: true, folder: folder, blocked: &blocked)
                } else if try await !resequence(batch) {
                    // Something went wrong: each step decided and run on its own, from what the
                    // journal recorded and what the table shows.
                    for (_, pair) in batch {
                        guard let detach = try await journal.event(pair.first.id), let attach = try await journal.event(pair.attach.id)
                        else { continue }
                        try await bringOne((detach, attach), fetched: true, folder: folder, blocked: &blocked)
                    }
                }
            }
        } catch {
            await results.cancelAndWait()
            throw error
        }
    }

    /// Kept parts re-sequenced by one ALTER statement, at most.
    static let resequenceBatch = 100

    /// A re-sequenced kept part whose steps have not begun, in a partition not blocked, nothing
    /// of its name in detached/: it may go in a batch.
    private func freshResequence(_ pair: BringPairs.Element, folder: String, blocked: [String: String]) -> PartName? {
        let (first, attach) = pair
        guard first.kind == .detachPart, first.state == .pending, first.attempts == 0, attach.state == .pending,
              attach.attempts == 0, attach.detail == Self.localAttach, first.part == attach.part,
              let name = PartName(first.part ?? ""), blocked[name.partitionID] == nil,
              !FileSystem.exists(folder + name.name)
        else { return nil }
        return name
    }

    /// One part brought in (its download already fetched, or its detach to run), in order;
    /// a part that did not attach blocks the rest of its partition.
    private func bringOne(_ pair: BringPairs.Element, fetched: Bool, folder: String, blocked: inout [String: String]) async throws {
        let (first, attach) = pair
        guard attach.state != .done else { return }
        let partition = PartName(attach.part ?? "")?.partitionID ?? ""
        let firstFailed = first.kind == .downloadPart ? "its download failed" : "its detach failed"
        func block() {
            blocked[partition] = "an earlier part of partition \(partition) (\(attach.part ?? "")) did not attach; attaching this one first would put the data out of the backup's order. Fix what failed, then `inplace journal replay RUN --failed`"
        }
        if let why = blocked[partition] {
            if first.kind == .detachPart && first.state != .done && first.state != .failed {
                try await journal.transition(first.id, to: .failed, error: "withheld: \(why)")
            }
            if attach.state != .failed { try await journal.transition(attach.id, to: .failed, error: "withheld: \(why)") }
            return
        }
        if attach.state == .failed || first.state == .failed {
            // Failed before: it waits for a replay, and so does the rest of its partition.
            if attach.state != .failed { try await journal.transition(attach.id, to: .failed, error: firstFailed) }
            block()
            return
        }
        var ready = fetched
        if ready && first.kind == .detachPart && first.state != .done {
            ready = try await detachStep(first, folder: folder)
        }
        let brought = ready ? try await attachStep(attach, folder: folder) : false
        if !ready && attach.state != .failed { try await journal.transition(attach.id, to: .failed, error: firstFailed) }
        if !brought { block() }
    }

    /// One download step; whether its part is (now) in detached/.
    private func fetch(_ download: JournalEvent, detached: [TableFolder]) async throws -> Bool {
        if download.state == .done { return true }
        if download.state == .failed { return false }
        let table = try tableFolder(detached, disk: download.disk)
        let target = table.detached + (download.part ?? "")
        if download.state == .pending && download.attempts == 0 && FileSystem.exists(target) {
            if try await journal.earlierDownload(run, database: planEvent.database, table: planEvent.table,
                                                 part: download.part ?? "", other: download.id) {
                try await journal.transition(download.id, to: .done, detail: "complete in detached/, fetched by this run before its table was planned again", path: target)
                return true
            }
            // Refused before it starts, so that a folder found there on resume is known to be
            // this step's own.
            try await journal.transition(download.id, to: .failed,
                                         error: "\(target) already exists and is not this restore's; attach or remove it, then replay")
            return false
        }
        // Its `done` rides with the attach's `started`: a complete download is in detached/,
        // where a resume finds it.
        return try await transfers.withSlot {
            try await perform(download, holdDone: true, holdStart: true, check: {
                try await settled(download, .init(kind: .downloadPart)) { .init(inDetached: FileSystem.isFolder(target)) }
            }, action: { try await self.download(download, into: table) })
        }
    }

    /// A re-sequenced kept part detached, to be attached again after the parts before it in the
    /// backup's order (a local rename). Its `done` rides with its attach's `started`.
    private func detachStep(_ detach: JournalEvent, folder: String) async throws -> Bool {
        let name = try PartName.validated(detach.part ?? "", context: "detach-part")
        return try await perform(detach, holdDone: true, check: {
            try await settled(detach, .init(kind: .detachPart)) {
                var seen = try await observePart(name)
                seen.inDetached = FileSystem.isFolder(folder + name.name)
                return seen
            }
        }, action: {
            guard !FileSystem.exists(folder + name.name) else {
                throw BackupError(.io, "\(folder + name.name) already exists and is not this restore's; the kept part \(name.name) cannot be detached to keep the backup's order. Remove or attach it, then replay")
            }
            try await client.execute("ALTER TABLE \(qualified) DETACH PART \(ClickHouseSQL.string(name.name))",
                                     settings: ["query_id": queryID(detach)])
            TestCrash.afterEffect("DETACH PART \(name.name)")
            return ActionResult(detail: "detached, to attach again in the backup's order")
        })
    }

    /// One attach step, by the protocol above; whether it ended done.
    private func attachStep(_ attach: JournalEvent, folder: String) async throws -> Bool {
        let local = attach.detail == Self.localAttach
        var recorded = attach.newPart
        var begun = attach.state == .started || attach.state == .interrupted || attach.attempts > 0
        var attempt = 0
        while true {
            attempt += 1
            var target: String?
            if begun {
                switch try await settledAttach(attach, recorded: recorded, local: local, folder: folder) {
                case .check(let name):
                    target = name
                    if recorded != name {
                        try await journal.transition(attach.id, to: .started, detail: "attached as \(name) (found on resume: the active part of its partition and identity that no other step claims)", newPart: name)
                        recorded = name
                    }
                case .replan(let why): throw TableNeedsReplan(reason: why)
                case .done, .run, .wait, .skip: break
                }
            }
            try await journal.transition(attach.id, to: .started, countAttempt: true)
            begun = true
            do {
                let name: String
                if let target {
                    name = target
                } else {
                    name = try await attachNow(attach, folder: folder, local: local)
                    // With a content hash, resume finds an attached part whose name was not
                    // recorded (by exclusion): the name rides with `done`. Without one, it is
                    // committed now, before the check.
                    if attach.identity == nil {
                        try await journal.transition(attach.id, to: .started, detail: "attached as \(name)", newPart: name)
                        recorded = name
                    }
                }
                // Right after this attempt's own ATTACH, the part is in the table's folder of the
                // disk whose detached/ held it (ATTACH renames within the disk).
                let table = target == nil && folder.hasSuffix("/detached/") ? String(folder.dropLast("detached/".count)) : nil
                try await check(name, attach: attach, local: local, attachedUnder: table)
                TestCrash.afterEffect("checked \(name)")
                journal.hold(attach.id, to: .done, detail: "attached as \(name), verified", newPart: name)
                await progress.done()
                return true
            } catch {
                if error is TableNeedsReplan { throw error }
                if Self.isCancellation(error) {
                    try? await journal.transition(attach.id, to: .interrupted, detail: "stopped by a signal")
                    throw CancellationError()
                }
                guard Self.isRetryable(error) && attempt < runner.retry.maxAttempts else {
                    // A part that failed its check was detached again: the name is no longer the step's.
                    let detachedAgain = (error as? BackupError)?.kind == .missingData
                    try await journal.transition(attach.id, to: .failed, error: "\(error)", clearNewPart: detachedAgain)
                    runner.logger.error("attach-part \(attach.database).\(attach.table) \(attach.part ?? ""): \(error)")
                    return false
                }
                try await journal.transition(attach.id, to: .started, detail: "attempt \(attempt) failed, retrying: \(error)")
                try await Task.sleep(for: runner.retry.delay(afterAttempt: attempt))
            }
        }
    }

    /// The resume decision of an attach that may have happened, once no statement of it runs.
    private func settledAttach(_ attach: JournalEvent, recorded: String?, local: Bool, folder: String) async throws
        -> ResumeDecision.Action
    {
        let part = attach.part ?? ""
        return try await decision(attach, .init(kind: .attachPart, attachedAs: recorded, local: local)) {
            if let recorded { return try await observePart(try PartName.validated(recorded, context: "attach-part")) }
            var seen = ResumeDecision.Observation(inDetached: FileSystem.isFolder(folder + part))
            if !seen.inDetached {
                guard attach.identity != nil else {
                    // Without a content hash, a gone folder cannot tell attached from lost.
                    throw RestoreError("cannot tell whether \(part) was attached: the backup has no content hash for it; check the table, then replay")
                }
                seen.unclaimed = try await unclaimedPart(attach)
            }
            return seen
        }
    }

    /// ATTACH PART; the name ClickHouse gave the part. A refused downloaded part goes to the
    /// quarantine (so that a replay after the backup is repaired fetches it again); a refused
    /// kept part stays in detached/ (it is live data).
    private func attachNow(_ attach: JournalEvent, folder: String, local: Bool) async throws -> String {
        let part = attach.part ?? ""
        let answer: String
        do {
            answer = try await client.execute("ALTER TABLE \(qualified) ATTACH PART \(ClickHouseSQL.string(part))",
                                              settings: ["alter_partition_verbose_result": "1", "query_id": queryID(attach)])
        } catch {
            guard !error.isRetryable else { throw error }
            if local {
                throw BackupError(.io, "ClickHouse refused to attach again the kept part \(part), detached by this run to keep the backup's order: \(error). It is in \(folder + part): find why, then `inplace journal replay RUN --failed`")
            }
            let kept = quarantine(folder + part, event: attach)
            throw BackupError(.missingData, "ClickHouse refused the backup's part \(part): \(error)\n\(kept); \(Self.repairAdvice)")
        }
        TestCrash.afterEffect("ATTACH PART \(part)")
        // command_type, partition_id, part_name, old_part_name
        let fields = answer.split(separator: "\n").first?.split(separator: "\t", omittingEmptySubsequences: false) ?? []
        guard fields.count >= 3, PartName(String(fields[2])) != nil else {
            // Never assume a name: the step stays unrecorded, and a replay finds the part by exclusion.
            throw RestoreError("ATTACH PART \(part) answered without the attached part's name (\(answer.prefix(200))); `inplace journal replay RUN --failed` finds the part in the table")
        }
        return String(fields[2])
    }

    /// The attached part holds the backup's content and, for a downloaded part, ClickHouse's
    /// CHECK passes (ATTACH accepts a flipped byte in a data file); otherwise it is detached
    /// again, quarantined, and the step fails. A kept part attached again is checked by hash
    /// only: its bytes did not move.
    ///
    /// `attachedUnder`, the table's folder on the part's disk, is given right after this step's
    /// own ATTACH: the content hash is then computed from the attached part's checksums.txt
    /// (what system.parts would answer, without a query per part). Anything else (no hash in
    /// the backup, a file that cannot be read or does not match, a CHECK that cannot find the
    /// part) asks system.parts, which also tells a part merged away from one never attached.
    private func check(_ part: String, attach: JournalEvent, local: Bool, attachedUnder table: String? = nil) async throws {
        let name = try PartName.validated(part, context: "attach-part")
        var folder = table.map { $0 + "detached/" } ?? ""
        var problem: String?
        var confirmed = false
        if let table, let identity = attach.identity {
            if Self.identityOnDisk(table + part + "/", crc: identity.hasPrefix("crc64:")) == identity {
                do {
                    if !local { problem = try await checkTablePart(part) }
                    confirmed = true
                } catch let error as ClickHouseError where !error.isRetryable {
                    runner.logger.debug("\(qualified) \(part): CHECK TABLE PART failed (\(error)); asking system.parts")
                }
            } else {
                runner.logger.debug("\(qualified) \(part): \(table + part)/checksums.txt does not show \(identity); asking system.parts")
            }
        }
        if !confirmed {
            guard let live = try await activeParts(partition: name.partitionID, name: part).first else {
                let seen = try await observePart(name)
                throw TableNeedsReplan(reason: seen.coveredBy.map { "the attached part \(part) was merged into \($0) before it was checked" }
                    ?? "the attached part \(part) is not in the table")
            }
            folder = (live.path as NSString).deletingLastPathComponent + "/detached/"
            if let identity = attach.identity, try identityOf(live, crc: identity.hasPrefix("crc64:")) != identity {
                problem = "the attached part \(part) is not the backup's (its content hash differs from \(identity))"
            } else if !local {
                problem = try await checkTablePart(part)
            }
        }
        guard let problem else { return }
        if local { throw RestoreError("\(problem); it stays attached") }
        try await client.execute("ALTER TABLE \(qualified) DETACH PART \(ClickHouseSQL.string(part))",
                                 settings: ["query_id": queryID(attach)])
        TestCrash.afterEffect("DETACH PART \(part) (failed its check)")
        let kept = quarantine(folder + part, event: attach)
        throw BackupError(.missingData, "\(problem); the part was detached again; \(kept); \(Self.repairAdvice)")
    }

    /// CHECK TABLE ... PART: nil when it passes, else what failed. Sent without settings (each
    /// costs the test bed's engine two statements): servers since 23.x answer a row per part
    /// (`part, is_passed, message`), older ones one value (`check_query_single_value_result`'s
    /// old default); a failure in that form is asked again with the rows, for the message.
    private func checkTablePart(_ part: String) async throws -> String? {
        let statement = "CHECK TABLE \(qualified) PART \(ClickHouseSQL.string(part))"
        func failures(_ answer: String) -> [Substring] {
            answer.split(separator: "\n").filter { line in
                let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
                return (fields.count == 1 ? fields.first : fields.dropFirst().first) == "0"
            }
        }
        var failed = failures(try await client.execute(statement))
        guard !failed.isEmpty else { return nil }
        if failed.allSatisfy({ !$0.contains("\t") }) {
            failed = failures(try await client.execute(statement, settings: ["check_query_single_value_result": "0"]))
            if failed.isEmpty { failed = ["0"] }
        }
        return "CHECK TABLE failed for \(part): \(failed.joined(separator: "; "))"
    }

    static let repairAdvice = "repair the backup (or take this part from another), then `inplace journal replay RUN --failed`"

    /// Before the table is planned again: a downloaded part this plan attached but did not check
    /// (killed during CHECK, or before its name was recorded) would be taken by the new plan as
    /// kept, unchecked. Each is found (by its recorded name, or by exclusion) and checked now:
    /// done when it passes, detached again and quarantined when it does not (then the new plan
    /// downloads it again). One merged away is not found: the new plan drops what holds it.
    func checkAttachedBeforeReplan() async throws {
        let plan = try await currentPlan()
        let detached = try await detachedFolders()
        for try await attach in stream([.attachPart])
        where attach.sequence >= plan.firstStep && attach.detail != Self.localAttach && attach.identity != nil
            && (attach.state == .started || attach.state == .interrupted || attach.attempts > 0) && attach.state != .done {
            let folder = try detachedFolder(detached, disk: attach.disk)
            var name = attach.newPart
            if name == nil, !FileSystem.isFolder(folder + (attach.part ?? "")) { name = try await unclaimedPart(attach) }
            guard let part = name, let parsed = PartName(part), try await observePart(parsed).partActive else { continue }
            do {
                try await check(part, attach: attach, local: false)
                try await journal.transition(attach.id, to: .done, detail: "attached as \(part), checked before the table was planned again",
                                             newPart: part)
            } catch let error as BackupError where error.kind == .missingData {
                try await journal.transition(attach.id, to: .failed, error: "\(error)", clearNewPart: true)
            }
        }
    }

    private func download(_ event: JournalEvent, into table: TableFolder) async throws -> ActionResult {
        let part = event.part ?? ""
        _ = try PartName.validated(part, context: "download-part")
        guard let disk = runner.disks.first(where: { $0.name == event.disk }) else {
            throw BackupError(.unsupportedDisk, "disk '\(event.disk ?? "")' is not on this server")
        }
        // Staging on the table's disk (so the final rename stays on one file system), owner-only,
        // the table folder's owner's as everything the download writes.
        let staging = disk.path + "backup/.inplace-staging/" + runner.stagingPrefix(run) + "event-\(event.id)"
        try? FileManager.default.removeItem(atPath: staging)
        try FileSystem.makeFolders(staging, mode: 0o700, owner: table.owner)
        defer { try? FileManager.default.removeItem(atPath: staging) }
        let fetched = try await runner.source.fetchPart(database: event.database, table: event.table,
                                                        disk: event.disk ?? "default", part: part, into: staging)
        let destination = table.detached + part
        guard !FileSystem.exists(destination) else {
            throw BackupError(.io, "\(destination) already exists and is not this restore's; attach or remove it, then replay")
        }
        // The step's `started` (held while the part was fetched into its staging folder) is
        // committed before the part can be seen in detached/.
        try await journal.flush()
        // Whoever wrote them (extracted, copied, hard-linked), the part's files are the server's
        // before the part appears in detached/.
        if table.owner.needsGiving {
            try await BlockingThreadPool.shared.run { () throws -> Void in try table.owner.giveTree(fetched.folder) }
        }
        guard rename(fetched.folder, destination) == 0 else {
            throw FileSystem.ioError("cannot move \(fetched.folder) to \(destination)")
        }
        FileSystem.syncFolder(table.detached)
        TestCrash.afterEffect("download of \(part) renamed into detached/")
        return ActionResult(detail: fetched.linked ? "hard-linked" : "\(fetched.bytes) bytes", path: destination)
    }

    /// Moves a part the table refused out of detached/ into the disk's quarantine folder
    /// (owner-only, named after the journal's run and the step); says where it went.
    func quarantine(_ path: String, event: JournalEvent) -> String {
        guard FileSystem.isFolder(path) else { return "nothing was left in detached/" }
        guard let disk = runner.disk(holding: path) else { return "the part stays in \(path) for inspection; remove it before restoring this part again" }
        let root = disk.path + "backup/.inplace-quarantine/"
        let target = root + runner.stagingPrefix(run) + "event-\(event.id)-" + ((path as NSString).lastPathComponent)
        do {
            try FileSystem.makeFolders(root, mode: 0o700, owner: try FileOwner.of(disk.path))
            try? FileManager.default.removeItem(atPath: target)
            guard rename(path, target) == 0 else { throw FileSystem.ioError("cannot move \(path) to \(target)") }
            return "the part was moved to \(target) for inspection"
        } catch {
            return "the part stays in \(path) for inspection (\(error)); remove it before restoring this part again"
        }
    }

    /// The table's data folders, each with its owner (one query of this table's row, one stat
    /// per folder).
    func detachedFolders() async throws -> [TableFolder] {
        let paths = try await client.tsvRows(
            "SELECT data_paths FROM system.tables WHERE database = {db:String} AND name = {t:String}",
            as: DataPathsRow.self, parameters: ["db": planEvent.database, "t": planEvent.table]).first?.paths ?? []
        return try paths.map { path throws(BackupError) in
            TableFolder(path: path.hasSuffix("/") ? path : path + "/", owner: try FileOwner.of(path))
        }
    }

    /// The table's folder on `disk`, its `detached/` made (the owner's) when missing.
    func tableFolder(_ folders: [TableFolder], disk: String?) throws -> TableFolder {
        // A data path belongs to the disk with the longest matching path: another disk may be
        // mounted inside the default disk's folder.
        guard let disk = runner.disks.first(where: { $0.name == (disk ?? "default") }),
              let folder = folders.first(where: { runner.disk(holding: $0.path)?.name == disk.name })
        else {
            throw BackupError(.unsupportedDisk, "\(planEvent.database).\(planEvent.table) has no data folder on disk '\(disk ?? "default")'")
        }
        try FileSystem.makeFolders(folder.detached, owner: folder.owner)
        return folder
    }

    func detachedFolder(_ folders: [TableFolder], disk: String?) throws -> String {
        try tableFolder(folders, disk: disk).detached
    }
}

private struct DataPathsRow: TSVDecodable, Sendable {
    let paths: [String]
    init(row: TSVRow) throws { paths = try row.stringArray(0) }
}

/// A table's data folder on one disk (ending in `/`) and its owner: what the restore writes
/// there is the owner's (FileOwner).
struct TableFolder: Sendable {
    let path: String
    let owner: FileOwner
    var detached: String { path + "detached/" }
}
