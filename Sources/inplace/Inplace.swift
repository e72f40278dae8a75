import ArgumentParser
import InplaceCore
import Logging

@main
struct Inplace: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inplace",
        abstract: "Restore ClickHouse backups in place: make live tables equal to a backup, moving as little data as possible.",
        discussion: """
            Backups are read and written in clickhouse-backup's format, from local folders and S3.
            Logs go to standard error; --json output goes to standard output alone.
            """,
        version: InplaceVersion.current,
        subcommands: []
    )
}
