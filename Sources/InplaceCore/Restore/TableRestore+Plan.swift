import Foundation

extension TableRestore {
    // MARK: plan-table

    /// Plans the table's events when that has not happened yet; false when refused. `stale`:
    /// another run changed the table since this run planned it.
    func planned(stale: String? = nil) async throws -> Bool {
        if planEvent.state != .done {
            guard planEvent.state != .failed else { return false }
            try await journal.transition(planEvent.id, to: .started)
            var plan = try JSONDecoder().decode(TablePlan.self, from: Data((planEvent.detail ?? "").utf8))
            let refusedBefore = try await journal.transitions(planEvent.id).contains { $0.to == .failed }
            if stale != nil || refusedBefore {
                // Replayed after a refusal (the operator may have fixed its cause, or the lock's
                // holder is gone), or changed by another run: the table is planned again against
                // the live state rather than from memory.
                plan = try await planNow(options: planOptions) ?? plan
                try await journal.replacePlan(planEvent.id, plan: Self.encode(plan))
                runner.logger.info("\(planEvent.database).\(planEvent.table): planned again\(stale.map { " (\($0))" } ?? ""): \(plan.refused.map { "still refused: \($0)" } ?? (refusedBefore ? "no longer refused" : "not refused"))")
            }
            if let refused = plan.refused {
                try await journal.transition(planEvent.id, to: .failed, error: "refused: \(refused)")
                runner.logger.warning("\(planEvent.database).\(planEvent.table): refused: \(refused)")
                return false
            }
            let metadata = try await runner.source.tableMetadata(database: plan.database, table: plan.table)
            let backup = try await runner.source.metadata()
            let events = Self.events(for: plan, table: metadata, backup: backup, options: options, aside: asideName)
            try await journal.completePlanTable(planEvent.id, run: run, emitting: events,
                                                detail: "\(events.count) event(s)")
        }
        return true
    }

    var planOptions: PlanOptions {
        PlanOptions(dropIfSchemaChanged: options.dropIfSchemaChanged, full: options.full,
                    ignoreDiskSpace: options.ignoreDiskSpace, dropFirst: options.dropFirst, dataOnly: options.dataOnly,
                    killMutations: options.killMutations, schemaOnly: options.schemaOnly)
    }

    /// The table planned now against the live state.
    func planNow(options: PlanOptions) async throws -> TablePlan? {
        let result = try await PlanBuilder(client: client).build(.init(
            source: runner.source, tables: .exactly(database: planEvent.database, table: planEvent.table),
            skipTables: [], options: options))
        guard var table = result.plan.tables.first else { return nil }
        if table.refused == nil, let refused = result.plan.refused { table.refused = refused }
        return table
    }

    /// A table plan as the journal holds it (plan-table detail): sorted keys, stable text.
    static func encode(_ plan: TablePlan) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(plan), as: UTF8.self)
    }

    /// The table's plan as last journaled (the first, or the one made again).
    func currentPlan() async throws -> TablePlan {
        let event = try await journal.event(planEvent.id) ?? planEvent
        return try JSONDecoder().decode(TablePlan.self, from: Data((event.detail ?? "").utf8))
    }

    /// Where a recreated table's old copy waits until the new one is complete: a name of this
    /// journal's run and this table, short whatever the table's name.
    var asideName: String {
        var hash = CRC64()
        hash.update(Array("\(planEvent.database)\u{0}\(planEvent.table)".utf8))
        return ".inplace-old-" + runner.stagingPrefix(run) + String(hash.value, radix: 16)
    }

    // MARK: Planning again

    /// A resumed table against its plan: the parts it keeps, the drops and detaches not begun,
    /// and the parts its attaches produced must all be active. One that is not was merged (or
    /// dropped) while no run watched: the plan no longer describes the table.
    func checkStillAsPlanned() async throws {
        let plan = try await currentPlan()
        guard plan.refused == nil else { return }
        var expected = Set(plan.keep.map(\.live))
        expected.formUnion(try await journal.expectedActive(run, database: planEvent.database, table: planEvent.table,
                                                            from: plan.firstStep))
        guard !expected.isEmpty else { return }
        let active = try await activeParts()
        let names = Set(active.map(\.name))
        let gone = expected.subtracting(names).sorted()
        guard let first = gone.first else { return }
        let covering = PartName(first).flatMap { name in
            active.first { $0.partitionID == name.partitionID && $0.minBlock <= name.minBlock && $0.maxBlock >= name.maxBlock }
        }
        throw TableNeedsReplan(reason: "\(gone.count) part(s) the run counts on are no longer active (\(first)\(covering.map { " was merged into \($0.name)" } ?? " is gone"))")
    }

    /// Supersedes the table's unfinished steps and plans it again, in place, against the table
    /// as it is. First: kept parts it detached are attached back (a live part never waits in
    /// `detached/` for a plan that no longer names it), and parts it attached but did not check
    /// are checked now (a new plan would take them as kept, unchecked) or, failing, quarantined.
    /// Complete downloads are taken by the new plan's downloads of the same parts instead of
    /// fetched again. A `--data --full` run plans again as `--data --full`: the live parts from
    /// before the run are never kept.
    func replan(because reason: String) async throws {
        runner.logger.warning("\(planEvent.database).\(planEvent.table): planning the table again: \(reason)")
        try await attachBackDetached()
        try await checkAttachedBeforeReplan()
        try await journal.supersede(run, database: planEvent.database, table: planEvent.table,
                                    reason: "superseded: the table was planned again (\(reason))")
        // In place, whatever the run's options: the table exists (created or recreated by this
        // run already), and every part it holds that the backup has was checked.
        var options = planOptions
        options.full = self.options.full && self.options.dataOnly
        options.dropIfSchemaChanged = false
        guard var plan = try await planNow(options: options) else {
            throw RestoreError("\(planEvent.database).\(planEvent.table) is no longer in the backup's plan")
        }
        if let refused = plan.refused { throw RestoreError("planned again after \(reason), and refused: \(refused)") }
        let metadata = try await runner.source.tableMetadata(database: plan.database, table: plan.table)
        let backup = try await runner.source.metadata()
        var inPlace = self.options
        inPlace.full = options.full
        let last = try await journal.lastSequence(run, database: planEvent.database, table: planEvent.table)
        plan.firstStep = last + 1
        let events = Self.events(for: plan, table: metadata, backup: backup, options: inPlace, aside: asideName)
            .map { var event = $0; event.sequence += last; return event }
        try await journal.replan(planEvent.id, run: run, plan: try Self.encode(plan), emitting: events)
        await progress.add(steps: plan.drop.count + 2 * (plan.download.count + plan.resequence.count),
                           bytes: plan.downloadBytes)
        try await removeUnusedDownloads(keeping: Set(plan.download.map(\.name)))
    }
}

extension TableRestore {
    /// The events a table plan emits, in execution order: create-table (a recreated table's old
    /// copy kept under `aside`, unless `--drop-first`), mutations to kill, the parts to bring in
    /// the backup's order (a download and its attach, or a re-sequenced kept part's detach and
    /// attach), the drops (first instead with `--drop-first`), a recreated table's drop-table,
    /// and verify-table.
    static func events(for plan: TablePlan, table: TableMetadata, backup: BackupMetadata, options: RestoreOptions,
                       aside: String) -> [NewEvent]
    {
        var events: [NewEvent] = []
        func add(_ event: NewEvent) {
            var event = event
            event.sequence = events.count + 1
            events.append(event)
        }
        let db = plan.database, name = plan.table
        if (plan.create || plan.recreate) && !options.dataOnly {
            let engine = backup.databases?.first { $0.name == db }?.engine ?? "Atomic"
            let statement = CreateStatement(
                database: "CREATE DATABASE IF NOT EXISTS \(ClickHouseSQL.identifier(db))"
                    + (engine.allSatisfy { $0.isLetter } ? " ENGINE = \(engine)" : ""),
                dropFirst: plan.recreate, table: table.query,
                aside: plan.recreate && !options.dropFirst ? aside : nil)
            add(NewEvent(kind: .createTable, database: db, table: name, detail: statement.json))
        } else if plan.create {
            return []  // --data: tables that do not exist are not created, nor filled
        }
        if options.schemaOnly { return events }
        for mutation in plan.killMutations {
            add(NewEvent(kind: .killMutation, database: db, table: name, detail: mutation.id))
        }
        func drops() {
            for part in plan.drop {
                add(NewEvent(kind: .dropPart, database: db, table: name, part: part.name, disk: part.disk,
                             bytes: part.bytes, identity: part.identity))
            }
        }
        if options.dropFirst { drops() }
        for item in bringOrder(plan) {
            switch item {
            case .download(let part):
                add(NewEvent(kind: .downloadPart, database: db, table: name, part: part.name, disk: part.disk,
                             bytes: part.bytes, identity: part.identity))
                add(NewEvent(kind: .attachPart, database: db, table: name, part: part.name, disk: part.disk,
                             bytes: part.bytes, identity: part.identity))
            case .resequence(let part):
                add(NewEvent(kind: .detachPart, database: db, table: name, part: part.live, disk: part.disk,
                             bytes: part.bytes, identity: part.identity, detail: part.backup))
                add(NewEvent(kind: .attachPart, database: db, table: name, part: part.live, disk: part.disk,
                             bytes: part.bytes, identity: part.identity, detail: Self.localAttach))
            }
        }
        if !options.dropFirst { drops() }
        if plan.recreate && !options.dataOnly && !options.dropFirst {
            add(NewEvent(kind: .dropTable, database: db, table: name, detail: aside))
        }
        if CreateQuery.engine(table.query)?.hasSuffix("MergeTree") == true && !(table.metadata_only ?? false) {
            add(NewEvent(kind: .verifyTable, database: db, table: name))
        }
        return events
    }

    /// An attach-part's detail when it attaches a kept part this run detached (no download).
    static let localAttach = "local"

    enum Bring {
        case download(TablePlan.PartAction)
        case resequence(TablePlan.Resequenced)
    }

    /// Downloads and re-sequenced parts merged in the backup's order: partition, then min block.
    static func bringOrder(_ plan: TablePlan) -> [Bring] {
        func key(_ name: String) -> PartName? { PartName(name) }
        var items = plan.download.map { (key($0.name), $0.name, Bring.download($0)) }
            + plan.resequence.map { (key($0.backup), $0.backup, Bring.resequence($0)) }
        items.sort { a, b in
            switch (a.0, b.0) {
            case let (x?, y?): return x < y
            default: return a.1 < b.1
            }
        }
        return items.map(\.2)
    }
}
