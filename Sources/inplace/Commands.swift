import ArgumentParser
import Foundation
import InplaceCore
import Logging

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Inspect the configuration.", subcommands: [Show.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the effective configuration (file, then environment), secrets masked.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            try await runMapped {
                let config = try global.load()
                let effective: EffectivePaths
                do {
                    effective = .resolved(try await config.remotePaths(client: ClickHouseClient(endpoint: config.clickHouseEndpoint)))
                } catch {
                    effective = .failed("\(error)")
                }
                print(config.renderYAML(effective: effective), terminator: "")
            }
        }
    }
}

struct Create: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a local backup in clickhouse-backup's format, recording the live parts (current_parts).")
    @OptionGroup var global: GlobalOptions
    @Option(name: [.short, .long], help: "Comma-separated globs on db.table (default: every table).")
    var tables: String?
    @Flag(help: "Back up table definitions only, no data.")
    var schema = false
    @Option(name: .customLong("wait-lock"), help: ArgumentHelp(
        "Wait up to SECONDS for each table a restore holds locked; 0 refuses at once (exit 16).",
        valueName: "SECONDS"))
    var waitLock = 0
    @Option(name: .customLong("partitions"), help: ArgumentHelp(
        "Back up only these partitions (clickhouse-backup's syntax: ids, globs, values in parentheses, db.t*: for some tables; may repeat). Each table's JSON records them, and a restore of the backup changes those partitions only.",
        valueName: "list"))
    var partitions: [String] = []
    @Flag(help: "Print the result as JSON on standard output.")
    var json = false
    @Argument(help: "The backup's name.")
    var name: String

    func validate() throws {
        guard waitLock >= 0 else { throw ValidationError("--wait-lock takes a number of seconds, 0 or more") }
        do { _ = try PartitionSelection(partitions) } catch { throw ValidationError(error.description) }
    }

    func run() async throws {
        try await runMapped {
            let config = try global.load()
            let creator = BackupCreator(client: ClickHouseClient(endpoint: config.clickHouseEndpoint))
            let summary = try await creator.create(.init(
                name: name, tables: TablePattern(tables), schemaOnly: schema, skipTables: config.clickhouse.skipTables,
                concurrency: config.general.uploadConcurrency, waitLock: .seconds(waitLock),
                partitions: try PartitionSelection(partitions)))
            if json {
                try printJSON(["name": summary.name, "folder": summary.folder, "tables": String(summary.tables),
                               "parts": String(summary.parts), "bytes": String(summary.bytes)])
            } else {
                print("created \(summary.name) in \(summary.folder): \(summary.tables) table(s), \(summary.parts) part(s), \(summary.bytes) bytes")
            }
        }
    }
}

struct Upload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Upload a local backup to S3 (s3.path), resuming where an interrupted upload stopped.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The local backup's name.")
    var name: String

    func run() async throws {
        try await runMapped {
            let config = try global.load()
            let client = ClickHouseClient(endpoint: config.clickHouseEndpoint)
            guard let store = try await remoteStore(config, client: client, required: true, writing: true) else { return }
            let layout = try await localLayout(client, writing: true)
            let uploader = BackupUploader(store: store, layout: layout)
            let summary = try await uploader.upload(.init(
                name: name, compression: try config.archiveCompression(), compressionLevel: config.s3.compressionLevel,
                concurrency: config.general.uploadConcurrency))
            if summary.alreadyComplete {
                print("\(name) is already on s3://\(config.s3.bucket)/\(store.prefix)\(name)/; nothing to do")
            } else {
                print("uploaded \(name): \(summary.objectsUploaded) object(s), \(summary.bytesUploaded) bytes (\(summary.objectsAlreadyThere) already there)")
            }
        }
    }
}

struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List backups: local (on the ClickHouse host), remote (S3), or both.")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Print the list as JSON on standard output.")
    var json = false
    @Argument(help: "local, remote, or nothing for both.")
    var location: BackupLocation?

    func run() async throws {
        try await runMapped {
            let config = try global.load()
            let client = ClickHouseClient(endpoint: config.clickHouseEndpoint)
            var listings: [BackupListing] = []
            if location != .remote {
                listings += await BackupLister.local(try await localLayout(client))
            }
            if location != .local, let store = try await remoteStore(config, client: client, required: location == .remote) {
                listings += try await BackupLister.remote(store)
            }
            if json {
                try printJSON(listings)
                return
            }
            for item in listings {
                let size = item.size.map { PlanReport.bytes(Int64(clamping: $0)) } ?? "???"
                print([item.name, item.creationDate.map(Format.date) ?? "-", item.location.rawValue, size, item.state]
                    .joined(separator: "\t"))
            }
        }
    }
}

extension BackupLocation: ExpressibleByArgument {}

enum Format {
    static func date(_ rfc3339: String) -> String {
        // 2026-11-26T19:30:11.123456789Z -> 2026-11-26 19:30:11
        String(rfc3339.prefix(19)).replacingOccurrences(of: "T", with: " ")
    }
}
