import ArgumentParser
import InplaceCore

/// The flags `plan` and `restore` share, so that a plan shows what the same restore would do,
/// and the combinations both refuse (README, "Flag combinations").
struct RestoreFlags: ParsableArguments {
    @Option(name: [.short, .long], help: "Comma-separated globs on db.table (default: every table in the backup).")
    var tables: String?
    @Option(help: "Read the backup from local or remote (default: local if it exists there, else remote).")
    var from: BackupLocation?
    @Flag(help: "Data into existing tables only: create no table, drop no table (tables missing from the database stay missing).")
    var data = false
    @Flag(help: "Create missing tables only (empty): change no existing table, restore no data.")
    var schema = false
    @Flag(help: "Drop and recreate tables whose schema (columns, engine, keys) differs from the backup's (else they are refused).")
    var dropIfSchemaChanged = false
    @Flag(help: "The classic restore: replace every live part of each table by the backup's (with --data: without recreating the table).")
    var full = false
    @Flag(help: "Do not refuse when a disk lacks the space the restore needs.")
    var ignoreDiskSpace = false
    @Flag(help: "Drop a table's surplus parts before downloading, to free disk space first. By default drops wait until every backup part of the table is attached and verified, so a damaged backup never costs live data.")
    var dropFirst = false
    @Flag(help: "Kill a table's unfinished mutations (system.mutations) before restoring it; without it such a table is refused, since its mutations would go on changing the parts the restore keeps.")
    var killMutations = false
    @Option(name: .customLong("partitions"), help: ArgumentHelp(
        "Restore only these partitions, as clickhouse-backup takes them: ids or globs (202401,2024*), or values in parentheses (('2024-01-15','eu'),('2024-02-01','us')), optionally for some tables (db.t*:202401). May repeat. Other partitions are left as they are.",
        valueName: "list"))
    var partitions: [String] = []
    @Option(name: .customLong("restore-database-mapping"), help: ArgumentHelp(
        "Restore databases under other names: old:new,... (adds to general.restore_database_mapping). May repeat.",
        valueName: "old:new"))
    var restoreDatabaseMapping: [String] = []
    @Option(name: .customLong("restore-table-mapping"), help: ArgumentHelp(
        "Restore tables under other names: old:new,... where old is db.table or table and new is table or db.table (adds to general.restore_table_mapping). May repeat.",
        valueName: "old:new"))
    var restoreTableMapping: [String] = []

    /// Refuses the combinations that could not leave each table equal to the backup, or would
    /// silently ignore a flag, saying why.
    func validate() throws {
        if let reason = Self.refusal(data: data, schema: schema, full: full, dropIfSchemaChanged: dropIfSchemaChanged,
                                     dropFirst: dropFirst) {
            throw ValidationError(reason)
        }
        do {
            _ = try PartitionSelection(partitions)
            var map: [String: String] = [:]
            try TableMapping.parse(restoreDatabaseMapping, flag: "--restore-database-mapping", into: &map)
            try TableMapping.parse(restoreTableMapping, flag: "--restore-table-mapping", into: &map)
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// Why a combination is refused, or nil when it is accepted.
    static func refusal(data: Bool, schema: Bool, full: Bool, dropIfSchemaChanged: Bool, dropFirst: Bool) -> String? {
        if data && schema { return "--data and --schema exclude each other" }
        if schema && full {
            return "--schema and --full exclude each other: --schema leaves existing tables untouched, --full replaces their data"
        }
        if schema && dropIfSchemaChanged {
            return "--schema and --drop-if-schema-changed exclude each other: --schema restores no data, so a recreated table would be left empty"
        }
        if schema && dropFirst { return "--drop-first has no effect with --schema: nothing is dropped" }
        if data && dropIfSchemaChanged {
            return "--data and --drop-if-schema-changed exclude each other: recreating a table means creating it, and --data creates none"
        }
        if full && dropIfSchemaChanged { return "--full already recreates every table" }
        return nil
    }

    /// The partitions and name mappings of this restore: the config's mappings, then the flags'
    /// rules on top. Checked here, so that a bad value is refused before anything is read.
    func scope(_ config: InplaceConfig) throws -> (partitions: [String]?, databases: [String: String]?, tables: [String: String]?) {
        _ = try PartitionSelection(partitions)
        var databases = config.general.restoreDatabaseMapping
        var tables = config.general.restoreTableMapping
        try TableMapping.parse(restoreDatabaseMapping, flag: "--restore-database-mapping", into: &databases)
        try TableMapping.parse(restoreTableMapping, flag: "--restore-table-mapping", into: &tables)
        return (partitions.isEmpty ? nil : partitions, databases.isEmpty ? nil : databases, tables.isEmpty ? nil : tables)
    }

    /// The restore's options for these flags (plan builds the same, to read the backup the same way).
    func restoreOptions(_ config: InplaceConfig, concurrency: Int) throws -> RestoreOptions {
        var options = RestoreOptions(
            tables: tables, dropIfSchemaChanged: dropIfSchemaChanged, full: full, dataOnly: data, schemaOnly: schema,
            ignoreDiskSpace: ignoreDiskSpace, concurrency: concurrency, dropFirst: dropFirst,
            killMutations: killMutations)
        (options.partitions, options.databaseMapping, options.tableMapping) = try scope(config)
        return options
    }

    var planOptions: PlanOptions {
        PlanOptions(dropIfSchemaChanged: dropIfSchemaChanged, full: full, ignoreDiskSpace: ignoreDiskSpace,
                    dropFirst: dropFirst, dataOnly: data, killMutations: killMutations, schemaOnly: schema)
    }
}
