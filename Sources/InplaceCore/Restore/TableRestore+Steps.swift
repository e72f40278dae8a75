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
                TestCrash.afterEffect("RENAME TABLE \(qualified) TO \(oldAside)")
            }
            // The backup's CREATE may name the old table's UUID, which the renamed copy still holds.
            if let uuid = try await tableUUID(aside), table.contains(uuid) {
                table = table.replacingOccurrences(of: " UUID '\(uuid)'", with: "")
            }
            try await client.execute(table)
            TestCrash.afterEffect("CREATE TABLE \(qualified)")
            return ActionResult(detail: "created; the old table waits as \(aside) until every part is attached")
        }
        if statement.dropFirst { try await client.execute("DROP TABLE IF EXISTS \(qualified) SYNC") }
        try await client.execute(table)
        TestCrash.afterEffect("CREATE TABLE \(qualified)")
        return ActionResult(detail: statement.dropFirst ? "dropped and created" : "created")
    }

    /// Drops a recreated table's old copy (a drop-table step).
    func dropAside(_ event: JournalEvent) async throws -> ActionResult {
        guard let aside = event.detail, aside.hasPrefix(".inplace-old-") else {
            throw BackupError(.invalidMetadata, "drop-table step \(event.id) names no table kept aside")
        }
        try await client.execute("DROP TABLE IF EXISTS \(ClickHouseSQL.qualified(event.database, aside)) SYNC")
        TestCrash.afterEffect("DROP TABLE \(aside)")
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
        let part = try PartName.validated(event.part ?? "", context: "drop-part").name
        try await client.execute("ALTER TABLE \(qualified) DROP PART \(ClickHouseSQL.string(part))",
                                 settings: ["query_id": queryID(event)])
        TestCrash.afterEffect("DROP PART \(part)")
        return ActionResult()
    }

    /// A begun drop decided: done when its part is neither active nor covered by an active part
    /// that a merge made of it (its rows live on there, with rows the backup has too).
    func dropSettled(_ event: JournalEvent) async throws -> Bool {
        let name = try PartName.validated(event.part ?? "", context: "drop-part")
        return try await settled(event, .init(kind: .dropPart)) { try await observePart(name) }
    }
}
