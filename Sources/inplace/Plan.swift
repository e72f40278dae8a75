import ArgumentParser
import Foundation
import InplaceCore

struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show what an in-place restore of a backup would do. Changes nothing.",
        discussion: """
            Compares each table's parts with the backup's by content (partition and hash_of_all_files), \
            and prints per table what would be kept, dropped and downloaded, the drift since the backup \
            was made, and the disk space the restore needs. Exit code 0 when the plan is complete, 11 when \
            any table (or the run, for disk space) is refused.
            """)
    @OptionGroup var global: GlobalOptions
    @Option(name: [.short, .long], help: "Comma-separated globs on db.table (default: every table in the backup).")
    var tables: String?
    @Option(help: "Read the backup from local or remote (default: local if it exists there, else remote).")
    var from: BackupLocation?
    @Flag(help: "Plan to drop and recreate tables whose schema (columns, engine, keys) differs from the backup's, instead of refusing them.")
    var dropIfSchemaChanged = false
    @Flag(help: "Plan the classic restore: drop each table and restore all its parts.")
    var full = false
    @Flag(help: "Do not refuse the plan when a disk lacks the space the restore needs.")
    var ignoreDiskSpace = false
    @Flag(help: "Plan drops before downloads (frees disk first; see restore --help).")
    var dropFirst = false
    @Flag(help: "Plan to kill a table's unfinished mutations before restoring it, instead of refusing the table.")
    var killMutations = false
    @Flag(help: "Print the plan as JSON on standard output (documented in README.md).")
    var json = false
    @Argument(help: "The backup's name.")
    var name: String

    func run() async throws {
        try await runMapped {
            let config = try global.load()
            let client = ClickHouseClient(endpoint: config.clickHouseEndpoint)
            let layout = try await localLayout(client)
            let source = try await openBackup(name, from: from, layout: layout,
                                              remote: try remoteStore(config, required: from == .remote))
            let result = try await PlanBuilder(client: client).build(.init(
                source: source, tables: TablePattern(tables), skipTables: config.clickhouse.skipTables,
                options: PlanOptions(dropIfSchemaChanged: dropIfSchemaChanged, full: full, ignoreDiskSpace: ignoreDiskSpace,
                                     dropFirst: dropFirst, killMutations: killMutations),
                concurrency: config.general.downloadConcurrency * 2))
            let threeWay = result.tables.allSatisfy { $0.current_parts != nil || ($0.parts ?? [:]).isEmpty }
            if json {
                try printJSON(PlanReport.json(result.plan, backup: name, source: source.location, threeWay: threeWay))
            } else {
                print(PlanReport.text(result.plan, backup: name, source: source.location, threeWay: threeWay))
            }
            if !result.plan.isComplete { throw ExitCode(Exit.planRefused) }
        }
    }
}
