import ArgumentParser
import InplaceCore
import Logging

@main
struct Inplace: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inplace",
        abstract: "Restore ClickHouse backups in place: make live tables equal to a backup, moving as little data as possible.",
        discussion: """
            Backups are read and written in clickhouse-backup's format, from local folders and S3, with \
            clickhouse-backup's config file and environment variables.
            Logs go to standard error; --json output goes to standard output alone.
            """,
        version: InplaceVersion.current,
        subcommands: [ConfigCommand.self, Create.self, Upload.self, List.self, PlanCommand.self, RestoreCommand.self,
                      ResumeCommand.self, VerifyCommand.self, JournalCommand.self]
    )
}

/// Options every command that talks to ClickHouse or S3 takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: [.short, .long], help: "Config file (else $CLICKHOUSE_BACKUP_CONFIG, else /etc/clickhouse-backup/config.yml).")
    var config: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (default: general.log_level, or $LOG_LEVEL).")
    var logLevel: String?

    /// Loads the config and sets up logging to standard error.
    func load() throws -> InplaceConfig {
        let config = try ConfigLoader.load(explicitPath: self.config)
        Logs.bootstrap(level: logLevel ?? config.general.logLevel)
        return config
    }
}
