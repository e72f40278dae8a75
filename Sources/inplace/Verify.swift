import ArgumentParser
import Foundation
import InplaceCore

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check that the live tables equal a backup, by content, rows and block order. Changes nothing.",
        discussion: """
            Per selected table of the backup: the live active parts must hold the backup's parts by content \
            (partition and hash_of_all_files, counted), the rows the backup records per part, and, within each \
            partition, the backup's block order. Tables only in the database are left out; schema-only tables \
            and engines without parts are reported as not compared. Exit code 0 when every table is equal, 15 \
            when any differs.
            """)
    @OptionGroup var global: GlobalOptions
    @Option(name: [.short, .long], help: "Comma-separated globs on db.table (default: every table in the backup).")
    var tables: String?
    @Option(help: "Read the backup from local or remote (default: local if it exists there, else remote).")
    var from: BackupLocation?
    @Flag(help: "Print the result as JSON on standard output (documented in README.md).")
    var json = false
    @Argument(help: "The backup's name.")
    var name: String

    func run() async throws {
        try await runMapped {
            let config = try global.load()
            let client = ClickHouseClient(endpoint: config.clickHouseEndpoint)
            let source = try await openBackup(name, from: from, layout: try await localLayout(client),
                                              remote: try await remoteStore(config, client: client, required: from == .remote))
            let report = try await BackupVerifier(client: client).verify(.init(
                source: source, tables: TablePattern(tables), skipTables: config.clickhouse.skipTables,
                concurrency: config.general.downloadConcurrency))
            if json { try printJSON(report) } else { print(report.text) }
            if !report.equal { throw ExitCode(Exit.differs) }
        }
    }
}
