import Foundation
import Logging

/// `inplace upload NAME`: a local backup to S3 in clickhouse-backup's remote layout.
///
/// 1. Read the local `metadata.json` (a backup without it is incomplete: refused). A remote
///    backup of that name that already has `metadata.json` is complete: nothing to do.
/// 2. List what is already under `NAME/` once: a rerun after an interruption skips every object
///    already there (S3 objects appear whole or not at all, so present means complete).
/// 3. Upload each part (several at once): an archive `<disk>_<enc part>.<ext>` written to a
///    temporary file beside the backup and then PUT (multipart when large), or, for `none`, the
///    part's files as they are under `<disk>/<part>/`.
/// 4. Then each table's JSON with its `files` map; `metadata.json` last, so a half-uploaded
///    backup is never taken for a complete one.
public struct BackupUploader: Sendable {
    public struct Options: Sendable {
        public var name: String
        /// nil uploads folders as they are (`compression_format: none`, data_format `directory`).
        public var compression: ArchiveCompression?
        public var compressionLevel: Int?
        public var concurrency: Int

        public init(name: String, compression: ArchiveCompression?, compressionLevel: Int? = nil, concurrency: Int) {
            self.name = name
            self.compression = compression
            self.compressionLevel = compressionLevel
            self.concurrency = concurrency
        }
    }

    public struct Summary: Sendable, Equatable {
        public var objectsUploaded = 0
        public var objectsAlreadyThere = 0
        public var bytesUploaded: Int64 = 0
        public var alreadyComplete = false
    }

    let store: RemoteBackupStore
    let layout: LocalBackupLayout
    let logger: Logger

    public init(store: RemoteBackupStore, layout: LocalBackupLayout, logger: Logger = Logger(label: "inplace.upload")) {
        self.store = store
        self.layout = layout
        self.logger = logger
    }

    private struct PartJob: Sendable {
        let table: Int
        let disk: String
        let part: String
        let folder: String
    }

    public func upload(_ options: Options) async throws -> Summary {
        try LocalBackupLayout.validateName(options.name)
        let local = LocalBackupSource(name: options.name, layout: layout)
        var backup = try await local.metadata()
        let place = "s3://\(store.s3.config.bucket)/\(store.key(options.name, ""))"
        if try await store.s3.exists(store.metadataKey(options.name)) {
            let remote = try await RemoteBackupSource(name: options.name, store: store).metadata()
            guard remote.creation_date == backup.creation_date else {
                throw BackupError(.alreadyExists, "\(place) already holds another backup named \(options.name) (created \(remote.creation_date)); choose another name or delete it there")
            }
            logger.info("remote backup \(options.name) is already complete; nothing to upload")
            return Summary(alreadyComplete: true)
        }
        // A marker names the local backup an upload belongs to: an interrupted upload of this
        // backup resumes, but objects of another backup with the same name are never taken over.
        let marker = store.key(options.name, ".inplace-upload")
        let stamp = Array(backup.creation_date.utf8)
        let existing = Set(try await store.s3.listAll(prefix: store.key(options.name, "")).objects.map(\.key))
        if !existing.isEmpty {
            let found = existing.contains(marker) ? try await store.s3.getBytes(marker) : nil
            guard found == stamp else {
                throw BackupError(.alreadyExists, "\(place) holds a partial upload of another backup named \(options.name); delete it there or choose another name")
            }
            logger.info("resuming the interrupted upload of \(options.name)")
        } else {
            try await store.s3.put(marker, bytes: stamp, contentType: "text/plain")
        }
        var loaded: [TableMetadata] = []
        for title in backup.tables ?? [] {
            loaded.append(try await local.tableMetadata(database: title.database, table: title.table))
        }
        let tables = loaded
        var jobs: [PartJob] = []
        for (index, table) in tables.enumerated() {
            for (disk, parts) in (table.parts ?? [:]).sorted(by: { $0.key < $1.key }) {
                guard let shadow = layout.shadowFolder(options.name, disk: disk, database: table.database, table: table.table)
                else { throw BackupError(.unsupportedDisk, "disk '\(disk)' of \(table.database).\(table.table) is not on this server") }
                for part in parts where !part.isRequired {
                    _ = try PartName.validated(part.name, context: "\(table.database).\(table.table)")
                    jobs.append(PartJob(table: index, disk: disk, part: part.name, folder: shadow + "/" + part.name))
                }
            }
        }
        let staging = layout.root + ".inplace-upload-" + options.name + "-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileSystem.makeFolders(staging, mode: 0o700)
        defer { try? FileManager.default.removeItem(atPath: staging) }
        logger.info("uploading \(jobs.count) part(s) of \(tables.count) table(s) to s3://\(store.s3.config.bucket)/\(store.key(options.name, ""))")

        let results = try await concurrentMap(jobs, width: options.concurrency) { job -> (Int, String, String?, Summary) in
            let table = tables[job.table]
            let shadow = store.shadowPrefix(options.name, database: table.database, table: table.table)
            var summary = Summary()
            guard let compression = options.compression else {
                for relative in FileSystem.files(under: job.folder) {
                    let key = shadow + job.disk + "/" + job.part + "/" + relative
                    if existing.contains(key) { summary.objectsAlreadyThere += 1; continue }
                    try await store.s3.put(key, file: job.folder + "/" + relative)
                    summary.objectsUploaded += 1
                    summary.bytesUploaded += FileSystem.size(ofFile: job.folder + "/" + relative)
                }
                return (job.table, job.disk, nil, summary)
            }
            let archiveName = job.disk + "_" + BackupNames.encode(job.part) + "." + compression.fileExtension
            let key = shadow + archiveName
            if existing.contains(key) {
                summary.objectsAlreadyThere += 1
                return (job.table, job.disk, archiveName, summary)
            }
            let temporary = staging + "/" + UUID().uuidString + "." + compression.fileExtension
            defer { unlink(temporary) }
            let size = try await BlockingThreadPool.shared.run { () throws -> Int64 in
                try ArchiveWriter.write(parts: [(job.part, job.folder)], to: temporary, compression: compression,
                                        level: options.compressionLevel, leadingSlash: true)
            }
            try await store.s3.put(key, file: temporary)
            summary.objectsUploaded += 1
            summary.bytesUploaded += size
            return (job.table, job.disk, archiveName, summary)
        }

        var total = Summary()
        var files: [Int: [String: [String]]] = [:]
        var compressedSize: UInt64 = 0
        for (table, disk, archive, summary) in results {
            total.objectsUploaded += summary.objectsUploaded
            total.objectsAlreadyThere += summary.objectsAlreadyThere
            total.bytesUploaded += summary.bytesUploaded
            if let archive { files[table, default: [:]][disk, default: []].append(archive) }
        }
        // Remote sizes, for metadata.json's compressed_size (already-present archives included).
        for object in try await store.s3.listAll(prefix: store.key(options.name, "shadow/")).objects {
            compressedSize += UInt64(object.size)
        }
        var metadataSize: UInt64 = 0
        for (index, var table) in tables.enumerated() {
            if options.compression != nil {
                table.files = files[index]?.mapValues { $0.sorted() }
            }
            let data = Array(try JSONEncoder.backup.encode(table))
            metadataSize += UInt64(data.count)
            try await store.s3.put(store.tableMetadataKey(options.name, database: table.database, table: table.table),
                                   bytes: data, contentType: "application/json")
        }
        backup.data_format = options.compression?.rawValue ?? "directory"
        backup.compressed_size = compressedSize
        backup.metadata_size = metadataSize
        try await store.s3.put(store.metadataKey(options.name), bytes: Array(try JSONEncoder.backup.encode(backup)),
                               contentType: "application/json")
        try await store.s3.delete(marker)
        logger.info("uploaded \(options.name): \(total.objectsUploaded) object(s), \(total.bytesUploaded) bytes; \(total.objectsAlreadyThere) already there")
        return total
    }
}
