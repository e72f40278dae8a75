import Foundation

/// One line of `inplace list`.
public struct BackupListing: Sendable, Equatable, Codable {
    public var name: String
    public var location: BackupLocation
    /// RFC 3339, or nil when unknown (an incomplete backup).
    public var creationDate: String?
    /// Bytes: data plus metadata (local), archives plus metadata (remote).
    public var size: UInt64?
    /// `complete`, or why the backup cannot be used.
    public var state: String
    public var dataFormat: String?
    public var requiredBackup: String?

    public var isComplete: Bool { state == "complete" }
}

/// Lists backups: local ones under `<default disk>/backup/`, remote ones under `s3.path`.
/// A backup without `metadata.json` is listed as incomplete, never as usable.
public enum BackupLister {
    public static func local(_ layout: LocalBackupLayout) async -> [BackupListing] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: layout.root)) ?? [])
            .filter { !$0.hasPrefix(".") && FileSystem.isFolder(layout.root + $0) }.sorted()
        var listings: [BackupListing] = []
        for name in names {
            let source = LocalBackupSource(name: name, layout: layout)
            do {
                let metadata = try await source.metadata()
                listings.append(BackupListing(
                    name: name, location: .local, creationDate: metadata.creation_date,
                    size: (metadata.data_size ?? 0) + (metadata.metadata_size ?? 0), state: "complete",
                    dataFormat: metadata.data_format, requiredBackup: metadata.required_backup))
            } catch {
                listings.append(BackupListing(name: name, location: .local, state: Self.state(error)))
            }
        }
        return sorted(listings)
    }

    public static func remote(_ store: RemoteBackupStore) async throws -> [BackupListing] {
        let folders = try await store.s3.listAll(prefix: store.prefix, delimiter: "/").commonPrefixes
        var listings: [BackupListing] = []
        for folder in folders {
            let name = String(folder.dropFirst(store.prefix.count).dropLast())
            guard !name.isEmpty else { continue }
            let source = RemoteBackupSource(name: name, store: store)
            do {
                let metadata = try await source.metadata()
                listings.append(BackupListing(
                    name: name, location: .remote, creationDate: metadata.creation_date,
                    size: (metadata.compressed_size ?? metadata.data_size ?? 0) + (metadata.metadata_size ?? 0),
                    state: "complete", dataFormat: metadata.data_format, requiredBackup: metadata.required_backup))
            } catch let error as BackupError {
                listings.append(BackupListing(name: name, location: .remote, state: Self.state(error)))
            }
        }
        return sorted(listings)
    }

    private static func state(_ error: any Error) -> String {
        guard let error = error as? BackupError else { return "broken: \(error)" }
        switch error.kind {
        case .incomplete: return "incomplete (no metadata.json: creation or upload did not finish)"
        case .embedded: return "embedded (not restorable by inplace)"
        default: return "broken: \(error.message)"
        }
    }

    private static func sorted(_ listings: [BackupListing]) -> [BackupListing] {
        listings.sorted { ($0.creationDate ?? "", $0.name) < ($1.creationDate ?? "", $1.name) }
    }
}
