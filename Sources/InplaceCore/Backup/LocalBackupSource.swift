import Foundation
import Synchronization

/// A backup in `<disk>/backup/NAME/` on this host. Parts are hard-linked into the target when
/// the target is on the same file system (no bytes copied), copied otherwise.
public struct LocalBackupSource: BackupSource {
    public let name: String
    public let layout: LocalBackupLayout
    /// Where `required` parts may live when the base backup is not local.
    let remote: RemoteBackupStore?
    public var location: BackupLocation { .local }
    public var address: String { layout.folder(name) + "/" }

    /// The backups that required this one, to catch a chain that loops.
    let chain: [String]

    public init(name: String, layout: LocalBackupLayout, remote: RemoteBackupStore? = nil) {
        self.init(name: name, layout: layout, remote: remote, chain: [])
    }

    init(name: String, layout: LocalBackupLayout, remote: RemoteBackupStore?, chain: [String]) {
        self.name = name
        self.layout = layout
        self.remote = remote
        self.chain = chain
    }

    public func metadata() async throws -> BackupMetadata {
        let path = layout.metadataFile(name)
        guard FileSystem.exists(layout.folder(name)) else {
            throw BackupError(.notFound, "no local backup named '\(name)' in \(layout.root)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BackupError(.incomplete,
                              "local backup '\(name)' has no metadata.json: it is incomplete (its creation did not finish); make a new backup")
        }
        return try Self.decodeMetadata([UInt8](data), what: path)
    }

    public func tableMetadata(database: String, table: String) async throws -> TableMetadata {
        let path = layout.tableMetadataFile(name, database: database, table: table)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BackupError(.missingData, "backup \(name) has no metadata for \(database).\(table) (\(path) is missing)")
        }
        return try Self.decodeTable([UInt8](data), what: path)
    }

    public func fetchPart(database: String, table: String, disk: String, part: String, into target: String)
        async throws -> FetchedPart
    {
        let tableMetadata = try await tableMetadata(database: database, table: table)
        let entry = try Self.partEntry(tableMetadata, disk: disk, part: part, backup: name)
        if entry.isRequired {
            let base = try await requiredSource()
            var fetched = try await base.fetchPart(database: database, table: table, disk: disk, part: part, into: target)
            fetched.fromBackup = fetched.fromBackup.isEmpty ? base.name : fetched.fromBackup
            return fetched
        }
        guard let shadow = layout.shadowFolder(name, disk: disk, database: database, table: table) else {
            throw BackupError(.unsupportedDisk, "backup \(name) has parts of \(database).\(table) on disk '\(disk)', which this server does not have")
        }
        let source = shadow + "/" + part
        guard FileSystem.isFolder(source) else {
            throw BackupError(.missingData, "backup \(name) lists part \(part) of \(database).\(table) but \(source) is missing")
        }
        let destination = target + "/" + part
        let linked = Mutex(true)
        _ = try await Self.staged(part: part, in: target) { staging in
            let folder = staging + "/" + part
            let didLink = try await BlockingThreadPool.shared.run { () throws -> Bool in
                try FileSystem.linkOrCopyFolder(source, to: folder)
            }
            linked.withLock { $0 = didLink }
            return 0
        }
        return FetchedPart(folder: destination, bytes: FileSystem.size(of: destination), fromBackup: name,
                           linked: linked.withLock { $0 })
    }

    public func missingParts(_ table: TableMetadata) async throws -> Set<String> {
        var missing: Set<String> = []
        var required: [String] = []
        for (disk, parts) in table.parts ?? [:] {
            let shadow = layout.shadowFolder(name, disk: disk, database: table.database, table: table.table)
            for part in parts {
                if part.isRequired { required.append(part.name); continue }
                if let shadow, FileSystem.isFolder(shadow + "/" + part.name) { continue }
                missing.insert(part.name)
            }
        }
        if !required.isEmpty {
            guard let base = try? await requiredSource() else { return missing.union(required) }
            let baseTable = try? await base.tableMetadata(database: table.database, table: table.table)
            guard let baseTable else { return missing.union(required) }
            let listed = Set((baseTable.parts ?? [:]).values.flatMap { $0.map(\.name) })
            let baseMissing = try await base.missingParts(baseTable)
            for part in required where !listed.contains(part) || baseMissing.contains(part) { missing.insert(part) }
        }
        return missing
    }

    private func requiredSource() async throws -> any BackupSource {
        guard let base = try await metadata().required_backup, !base.isEmpty else {
            throw BackupError(.missingData, "backup \(name) marks parts as required but names no required_backup")
        }
        try Self.checkChain(chain + [name], next: base)
        let source: any BackupSource
        if FileSystem.exists(layout.folder(base)) {
            source = LocalBackupSource(name: base, layout: layout, remote: remote, chain: chain + [name])
        } else if let remote {
            source = RemoteBackupSource(name: base, store: remote, chain: chain + [name])
        } else {
            throw BackupError(.missingData, "backup \(name) needs its base backup '\(base)' (required_backup), which does not exist")
        }
        do {
            _ = try await source.metadata()
        } catch let error as BackupError where error.kind == .notFound {
            throw BackupError(.missingData, "backup \(name) needs its base backup '\(base)' (required_backup), which does not exist")
        }
        return source
    }
}
