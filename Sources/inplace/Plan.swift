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
    @OptionGroup var flags: RestoreFlags
    @Flag(help: "Print the plan as JSON on standard output (documented in README.md).")
    var json = false
    @Argument(help: "The backup's name.")
    var name: String

    func run() async throws {
        try await runMapped {
            let config = try global.load()
            let client = ClickHouseClient(endpoint: config.clickHouseEndpoint)
            let layout = try await localLayout(client)
            let options = try flags.restoreOptions(config, concurrency: config.general.downloadConcurrency)
            let source = try await options.scoped(
                try await openBackup(name, from: flags.from, layout: layout,
                                     remote: try await remoteStore(config, client: client, required: flags.from == .remote)),
                client: client)
            let result = try await PlanBuilder(client: client).build(.init(
                source: source, tables: TablePattern(flags.tables), skipTables: config.clickhouse.skipTables,
                options: flags.planOptions, concurrency: config.general.downloadConcurrency * 2))
            let plan = result.plan.narrowed(dataOnly: flags.data, schemaOnly: flags.schema)
            let threeWay = result.tables.allSatisfy { $0.current_parts != nil || ($0.parts ?? [:]).isEmpty }
            if json {
                try printJSON(PlanReport.json(plan, backup: name, source: source.location, threeWay: threeWay))
            } else {
                print(PlanReport.text(plan, backup: name, source: source.location, threeWay: threeWay))
            }
            if !plan.isComplete { throw ExitCode(Exit.planRefused) }
        }
    }
}

extension RestorePlan {
    /// The part of the plan that `restore --data` or `--schema` runs (the restore leaves out the
    /// rest as it journals each table's steps): with --data, tables missing from the database are
    /// neither created nor filled; with --schema, missing tables are created empty and no part
    /// is dropped or downloaded. The disk check is the full plan's.
    func narrowed(dataOnly: Bool, schemaOnly: Bool) -> RestorePlan {
        var plan = self
        if dataOnly { plan.tables.removeAll { $0.create } }
        if schemaOnly {
            for index in plan.tables.indices {
                plan.tables[index].drop = []
                plan.tables[index].download = []
            }
        }
        return plan
    }
}
