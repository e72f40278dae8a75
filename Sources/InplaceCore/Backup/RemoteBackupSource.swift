import Foundation
import Synchronization

/// Backups under a prefix of an S3 bucket (`s3.path`), in clickhouse-backup's remote layout:
///
///     NAME/metadata.json                                      written last: its absence means incomplete
///     NAME/metadata/<enc db>/<enc table>.json
///     NAME/shadow/<enc db>/<enc table>/<disk>_<enc part>.<ext>   one archive per part
///     NAME/shadow/<enc db>/<enc table>/<disk>_<N>.<ext>          several parts per archive
///     NAME/shadow/<enc db>/<enc table>/<disk>/<part>/<file>      data_format "directory"
public struct RemoteBackupStore: Sendable {
    public let s3: S3Client
    /// The effective `s3.path` (macros put in) as a key prefix: `normalizedPrefix(path)`.
    public let prefix: String

    public init(s3: S3Client, path: String) {
        self.s3 = s3
        prefix = Self.normalizedPrefix(path)
    }

    /// `path` as the start of a key, as clickhouse-backup's `path.Join(path, key)` makes it: empty
    /// and `.` segments dropped, `..` removing the segment before it; empty, or ending in `/`.
    public static func normalizedPrefix(_ path: String) -> String {
        var segments: [Substring] = []
        for segment in path.split(separator: "/") where segment != "." {
            if segment == "..", let last = segments.last, last != ".." {
                segments.removeLast()
            } else {
                segments.append(segment)
            }
        }
        return segments.isEmpty ? "" : segments.joined(separator: "/") + "/"
    }

    public func key(_ backup: String, _ rest: String) -> String { prefix + backup + "/" + rest }
    public func metadataKey(_ backup: String) -> String { key(backup, "metadata.json") }

    public func tableMetadataKey(_ backup: String, database: String, table: String) -> String {
        key(backup, "metadata/" + BackupNames.encode(database) + "/" + BackupNames.encode(table) + ".json")
    }

    /// `NAME/shadow/<enc db>/<enc table>/`.
    public func shadowPrefix(_ backup: String, database: String, table: String) -> String {
        key(backup, "shadow/" + BackupNames.encode(database) + "/" + BackupNames.encode(table) + "/")
    }
}

/// A backup read from S3: metadata fetched once and kept, archives streamed and extracted as
/// they download (see `S3Client.extractArchive`).
public struct RemoteBackupSource: BackupSource {
    public let name: String
    public let store: RemoteBackupStore
    public var location: BackupLocation { .remote }
    public var address: String { "s3://\(store.s3.config.bucket)/\(store.key(name, ""))" }
    private let cache = MetadataCache()
    /// The backups that required this one, to catch a chain that loops.
    private let chain: [String]

    public init(name: String, store: RemoteBackupStore) {
        self.init(name: name, store: store, chain: [])
    }

    init(name: String, store: RemoteBackupStore, chain: [String]) {
        self.name = name
        self.store = store
        self.chain = chain
    }

    private func baseSource(_ base: String) throws -> RemoteBackupSource {
        try Self.checkChain(chain + [name], next: base)
        return RemoteBackupSource(name: base, store: store, chain: chain + [name])
    }

    public func metadata() async throws -> BackupMetadata {
        if let cached = cache.backup.withLock({ $0 }) { return cached }
        let key = store.metadataKey(name)
        let bytes: [UInt8]
        do {
            bytes = try await store.s3.getBytes(key)
        } catch {
            guard error.kind == .notFound else { throw error }
            let started = try await store.s3.listAll(prefix: store.key(name, "")).objects.isEmpty == false
            throw started
                ? BackupError(.incomplete, "remote backup '\(name)' has no metadata.json: its upload did not finish; run `inplace upload \(name)` again from the host that has it")
                : BackupError(.notFound, "no remote backup named '\(name)' in s3://\(store.s3.config.bucket)/\(store.prefix)")
        }
        let metadata = try Self.decodeMetadata(bytes, what: "s3://\(store.s3.config.bucket)/\(key)")
        cache.backup.withLock { $0 = metadata }
        return metadata
    }

    public func tableMetadata(database: String, table: String) async throws -> TableMetadata {
        let key = store.tableMetadataKey(name, database: database, table: table)
        if let cached = cache.tables.withLock({ $0[key] }) { return cached }
        let bytes: [UInt8]
        do {
            bytes = try await store.s3.getBytes(key)
        } catch {
            guard error.kind == .notFound else { throw error }
            throw BackupError(.missingData, "backup \(name) has no metadata for \(database).\(table) (s3://\(store.s3.config.bucket)/\(key) is missing)")
        }
        let metadata = try Self.decodeTable(bytes, what: "s3://\(store.s3.config.bucket)/\(key)")
        cache.tables.withLock { $0[key] = metadata }
        return metadata
    }

    public func fetchPart(database: String, table: String, disk: String, part: String, into target: String)
        async throws -> FetchedPart
    {
        let backup = try await metadata()
        let tableMetadata = try await tableMetadata(database: database, table: table)
        let entry = try Self.partEntry(tableMetadata, disk: disk, part: part, backup: name)
        if entry.isRequired {
            guard let base = backup.required_backup, !base.isEmpty else {
                throw BackupError(.missingData, "backup \(name) marks part \(part) as required but names no required_backup")
            }
            let baseSource = try baseSource(base)
            do {
                _ = try await baseSource.metadata()
            } catch let error as BackupError where error.kind == .notFound {
                throw BackupError(.missingData, "backup \(name) needs its base backup '\(base)' (required_backup), which does not exist")
            }
            return try await baseSource.fetchPart(database: database, table: table, disk: disk, part: part, into: target)
        }
        if let diskType = backup.disk_types?[disk], diskType != "local" {
            throw BackupError(.unsupportedDisk, "part \(part) of \(database).\(table) is on disk '\(disk)' of type \(diskType): parts on object-storage disks are not supported yet")
        }
        let shadow = store.shadowPrefix(name, database: database, table: table)
        let bytes = try await Self.staged(part: part, in: target) { staging in
            if backup.data_format == "directory" {
                return try await fetchFolder(shadow + disk + "/" + part + "/", part: part, into: staging)
            }
            return try await fetchFromArchives(tableMetadata, shadow: shadow, disk: disk, part: part, into: staging)
        }
        return FetchedPart(folder: target + "/" + part, bytes: bytes, fromBackup: name, linked: false)
    }

    public func missingParts(_ table: TableMetadata) async throws -> Set<String> {
        let backup = try await metadata()
        let tableKey = BackupNames.encode(table.database) + "/" + BackupNames.encode(table.table)
        // Objects under the table's shadow folder, relative to it.
        let present = try await shadowIndex()[tableKey] ?? []
        var missing: Set<String> = []
        var required: [String] = []
        for (disk, parts) in table.parts ?? [:] {
            let archives = table.files?[disk] ?? []
            let allArchivesThere = !archives.isEmpty && archives.allSatisfy { present.contains($0) }
            let perPart = Self.perPartArchives(archives, disk: disk)
            for part in parts {
                if part.isRequired {
                    required.append(part.name)
                } else if backup.data_format == "directory" {
                    if !present.contains(disk + "/" + part.name + "/") { missing.insert(part.name) }
                } else if let archive = perPart[Substring(BackupNames.encode(part.name))] {
                    if !present.contains(archive) { missing.insert(part.name) }
                } else if !allArchivesThere {
                    missing.insert(part.name)
                }
            }
        }
        if !required.isEmpty {
            guard let base = backup.required_backup, !base.isEmpty else { return missing.union(required) }
            let baseSource = try baseSource(base)
            guard (try? await baseSource.metadata()) != nil,
                  let baseTable = try? await baseSource.tableMetadata(database: table.database, table: table.table)
            else { return missing.union(required) }
            let listed = Set((baseTable.parts ?? [:]).values.flatMap { $0.map(\.name) })
            let baseMissing = try await baseSource.missingParts(baseTable)
            for part in required where !listed.contains(part) || baseMissing.contains(part) { missing.insert(part) }
        }
        return missing
    }

    /// `<enc part>` -> the first archive named `<disk>_<enc part>.<ext>`: one pass over the table's
    /// archives instead of one per part (an encoded name holds no `.`, so it ends at the first one).
    static func perPartArchives(_ archives: [String], disk: String) -> [Substring: String] {
        let start = disk + "_"
        var byPart: [Substring: String] = [:]
        for archive in archives where archive.hasPrefix(start) {
            let rest = archive.dropFirst(start.count)
            guard let dot = rest.firstIndex(of: ".") else { continue }
            if byPart[rest[..<dot]] == nil { byPart[rest[..<dot]] = archive }
        }
        return byPart
    }

    /// Starts the listing of the shadow folder.
    public func prepareMissingParts() { _ = shadowListing() }

    /// `<enc db>/<enc table>` -> what is under that table's shadow folder: archive names, and
    /// `<disk>/<part>/` for folders of the directory format. One listing of `NAME/shadow/`, made
    /// once however many tables ask at the same time (the planner checks several at once), kept.
    private func shadowIndex() async throws -> [String: Set<String>] {
        let listing = shadowListing()
        do {
            return try await listing.value
        } catch {
            // A failed listing is not kept: the next caller asks S3 again.
            cache.shadowIndex.withLock { if $0 == listing { $0 = nil } }
            throw error
        }
    }

    private func shadowListing() -> Task<[String: Set<String>], any Error> {
        cache.shadowIndex.withLock { task in
            if let task { return task }
            let started = Task { [store, name] in try await Self.listShadow(store: store, backup: name) }
            task = started
            return started
        }
    }

    private static func listShadow(store: RemoteBackupStore, backup: String) async throws -> [String: Set<String>] {
        let prefix = store.key(backup, "shadow/")
        var builder = ShadowIndexBuilder(prefixLength: prefix.utf8.count)
        try await store.s3.list(prefix: prefix) { page in
            for object in page.objects { builder.add(object.key) }
        }
        return builder.finish()
    }

    private func fetchFromArchives(_ table: TableMetadata, shadow: String, disk: String, part: String,
                                   into target: String) async throws -> Int64 {
        let archives = table.files?[disk] ?? []
        let perPart = disk + "_" + BackupNames.encode(part) + "."
        let allParts = Set((table.parts?[disk] ?? []).map(\.name))
        if let archive = archives.first(where: { $0.hasPrefix(perPart) }) {
            return try await extract(shadow + archive, wanted: part, expected: [part], into: target)
        }
        // Several parts per archive: the metadata does not say which holds which; try each.
        for archive in archives where !archive.hasPrefix(perPart) {
            do {
                return try await extract(shadow + archive, wanted: part, expected: allParts, into: target)
            } catch let error as ArchiveError where error.kind == .missingPart {
                continue
            }
        }
        throw BackupError(.missingData, "backup \(name) has no archive holding part \(part) of \(table.database).\(table.table) on disk \(disk) (files: \(archives.joined(separator: ", ")))")
    }

    private func extract(_ key: String, wanted: String, expected: Set<String>, into target: String) async throws -> Int64 {
        let extractor = ArchiveExtractor(wanted: [wanted], expected: expected, archiveName: "s3://\(store.s3.config.bucket)/\(key)")
        do {
            return try await store.s3.extractArchive(key, with: extractor, into: target).bytesWritten
        } catch let error as ArchiveError {
            // A download that failed for lack of the object says so plainly.
            if error.kind == .corrupt, error.message.contains("NoSuchKey") || error.message.contains("NotFound") {
                throw BackupError(.missingData, "archive s3://\(store.s3.config.bucket)/\(key) is missing from the backup")
            }
            throw error
        }
    }

    private func fetchFolder(_ folderPrefix: String, part: String, into target: String) async throws -> Int64 {
        let objects = try await store.s3.listAll(prefix: folderPrefix).objects
        guard !objects.isEmpty else {
            throw BackupError(.missingData, "backup \(name) has no files under s3://\(store.s3.config.bucket)/\(folderPrefix)")
        }
        var total: Int64 = 0
        try FileSystem.makeFolders(target + "/" + part)
        for object in objects {
            let relative = String(object.key.dropFirst(folderPrefix.count))
            let components = try ArchiveExtractor.safeComponents(relative, archive: folderPrefix)
            guard !components.isEmpty else { continue }
            let path = target + "/" + part + "/" + components.joined(separator: "/")
            try FileSystem.makeFolders((path as NSString).deletingLastPathComponent)
            guard !FileSystem.exists(path) else {
                throw BackupError(.io, "\(path) already exists; refusing to overwrite it")
            }
            total += try await store.s3.get(object.key, to: .file(path: path)).size
        }
        return total
    }
}

private final class MetadataCache: Sendable {
    let backup = Mutex<BackupMetadata?>(nil)
    let tables = Mutex<[String: TableMetadata]>([:])
    let shadowIndex = Mutex<Task<[String: Set<String>], any Error>?>(nil)
}

/// Builds the shadow index from listed keys `<prefix><enc db>/<enc table>/<rest>`, over their
/// UTF-8 bytes: in a listing the keys of one table follow each other, so the table's name is
/// compared with the previous key's, not looked up per key. Not every store lists in strict key
/// order (the test bed's SeaweedFS does not), so a table seen again is merged, not replaced.
struct ShadowIndexBuilder {
    let prefixLength: Int
    private(set) var index: [String: Set<String>] = [:]
    private var table: [UInt8] = []
    private var entries: Set<String> = []

    init(prefixLength: Int) { self.prefixLength = prefixLength }

    /// `<rest>` is kept as it is for an archive, as `<disk>/<part>/` for a file under a part's
    /// folder (`<disk>/<part>/<file...>`); a key not under a table's folder is ignored.
    mutating func add(_ key: String) {
        var key = key
        key.withUTF8 { bytes in
            let slash = UInt8(ascii: "/")
            guard bytes.count > prefixLength,
                  let database = bytes[prefixLength...].firstIndex(of: slash),
                  let tableEnd = bytes[(database + 1)...].firstIndex(of: slash)
            else { return }
            let rest = bytes[(tableEnd + 1)...]
            var entry = rest
            if let disk = rest.firstIndex(of: slash), let part = rest[(disk + 1)...].firstIndex(of: slash) {
                entry = rest[..<(part + 1)]
            }
            let name = bytes[prefixLength..<tableEnd]
            if !name.elementsEqual(table) {
                flush()
                table = Array(name)
            }
            entries.insert(String(decoding: entry, as: UTF8.self))
        }
    }

    mutating func finish() -> [String: Set<String>] {
        flush()
        return index
    }

    private mutating func flush() {
        guard !table.isEmpty else { return }
        let name = String(decoding: table, as: UTF8.self)
        if index[name] == nil {
            index[name] = entries
        } else {
            index[name]!.formUnion(entries)
        }
        entries = []
    }
}
