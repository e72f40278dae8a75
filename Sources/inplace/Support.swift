import ArgumentParser
import Foundation
import InplaceCore
import Logging

enum Logs {
    /// Logs and progress go to standard error; standard output is for results (`--json`).
    static func bootstrap(level: String) {
        let parsed = Logger.Level(rawValue: level.lowercased()) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = parsed
            return handler
        }
    }
}

/// Exit codes (documented in README.md): one per kind of failure, so scripts can tell them apart.
enum Exit {
    static let failure: Int32 = 1
    static let config: Int32 = 3
    static let clickHouse: Int32 = 4
    static let unsupportedServer: Int32 = 5
    static let storage: Int32 = 6
    static let backupInvalid: Int32 = 7
    static let archiveRefused: Int32 = 8
    static let nothingMatched: Int32 = 9
    static let alreadyExists: Int32 = 10
    static let planRefused: Int32 = 11
    static let restoreIncomplete: Int32 = 12
    static let interrupted: Int32 = 13
    static let journal: Int32 = 14
    /// `verify`: the live tables differ from the backup.
    static let differs: Int32 = 15
    /// A table is locked by another inplace process (a restore), or its lock file is unusable.
    static let tableLocked: Int32 = 16
    /// A flag's value that cannot be used, found once the server or the backup is read (as a
    /// flag refused by the parser: 64).
    static let usage: Int32 = 64
    /// Run as a user who can write into ClickHouse's folders neither as their owner nor as root.
    static let wrongUser: Int32 = 17

    /// Prints `error` for an operator and returns the exit code for it.
    static func report(_ error: any Error) -> ExitCode {
        let code: Int32
        switch error {
        case let error as ConfigError: code = config; _ = error
        case let error as ClickHouseError:
            if case .unsupportedVersion = error.kind { code = unsupportedServer } else { code = clickHouse }
        case is S3Error: code = storage
        case let error as BackupError:
            switch error.kind {
            case .noTablesMatched: code = nothingMatched
            case .alreadyExists: code = alreadyExists
            case .invalidArgument: code = usage
            default: code = backupInvalid
            }
        case is ArchiveError: code = archiveRefused
        case is JournalError: code = journal
        case is TableLockError: code = tableLocked
        case is OwnershipError: code = wrongUser
        default: code = failure
        }
        FileHandle.standardError.write(Data("inplace: error: \(error)\n".utf8))
        return ExitCode(code)
    }
}

/// Runs a command body, mapping every error to a message and an exit code in one place.
func runMapped(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ExitCode {
        throw error
    } catch let error as ValidationError {
        throw error
    } catch {
        throw Exit.report(error)
    }
}

/// Writes a JSON document to standard output alone.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
    FileHandle.standardOutput.write(try encoder.encode(value))
    FileHandle.standardOutput.write(Data("\n".utf8))
}

/// The server's disks, giving where local backups live.
/// The server's disks as a backup layout. `writing`: the command will write into the disks'
/// folders, and is refused first unless it runs as root or as their owner (FileOwner).
func localLayout(_ client: ClickHouseClient, writing: Bool = false) async throws -> LocalBackupLayout {
    try await client.requireSupportedVersion()
    let disks = try await ClickHouseCatalog(client: client).disks()
    if writing { try FileOwner.requireWriter(disks: disks) }
    return LocalBackupLayout(disks: disks)
}

/// The S3 store under the effective `s3.path` (the server's macros put in: `RemotePaths`), or nil
/// when remote storage is off and not `required`. A `{name}` the server lacks is left as written,
/// as clickhouse-backup does, with a warning; `writing` (upload) refuses it instead: nothing
/// should be written to a folder literally named `{shard}`.
func remoteStore(_ config: InplaceConfig, client: ClickHouseClient, required: Bool,
                 writing: Bool = false) async throws -> RemoteBackupStore? {
    guard config.general.remoteStorage.lowercased() == "s3" else {
        if required {
            throw ConfigError(key: "general.remote_storage",
                              message: "is '\(config.general.remoteStorage)'; set it to s3 (and the s3 section) to use remote backups",
                              file: config.sourceFile)
        }
        return nil
    }
    let s3 = try config.s3Config()
    let paths = try await config.remotePaths(client: client)
    if let warning = paths.warning {
        if writing {
            throw ConfigError(key: "s3.path", message: "\(warning); refusing to write there: define the macro in the server's <macros> or change the path",
                              file: config.sourceFile)
        }
        FileHandle.standardError.write(Data("inplace: warning: \(warning); left as written, as clickhouse-backup does: backups are read from a folder of that literal name\n".utf8))
    }
    return RemoteBackupStore(s3: S3Client(config: s3), path: paths.path)
}
