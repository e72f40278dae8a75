/// Where a local backup's files live, from the server's disks (clickhouse-backup's layout):
///
///     <default disk>/backup/NAME/metadata.json
///     <default disk>/backup/NAME/metadata/<enc db>/<enc table>.json
///     <each disk>/backup/NAME/shadow/<enc db>/<enc table>/<disk>/<part>/
public struct LocalBackupLayout: Sendable {
    /// Disk name -> path ending in `/`.
    public let diskPaths: [String: String]

    public init(diskPaths: [String: String]) {
        self.diskPaths = diskPaths.mapValues { $0.hasSuffix("/") ? $0 : $0 + "/" }
    }

    public init(disks: [ClickHouseCatalog.Disk]) {
        self.init(diskPaths: Dictionary(disks.map { ($0.name, $0.path) }, uniquingKeysWith: { first, _ in first }))
    }

    public var defaultDiskPath: String { diskPaths["default"] ?? diskPaths.values.sorted().first ?? "/var/lib/clickhouse/" }

    /// `<default disk>/backup/`.
    public var root: String { defaultDiskPath + "backup/" }

    public func folder(_ backup: String) -> String { root + backup }

    /// `<default disk>/backup/.inplace-locks`: the table locks (TableLocks), one place per host
    /// whatever `--journal` says. A dot-name, so never listed as a backup.
    public var locksFolder: String { root + ".inplace-locks" }
    public func metadataFile(_ backup: String) -> String { folder(backup) + "/metadata.json" }

    public func tableMetadataFile(_ backup: String, database: String, table: String) -> String {
        folder(backup) + "/metadata/" + BackupNames.encode(database) + "/" + BackupNames.encode(table) + ".json"
    }

    /// The folder holding a table's parts on `disk` (nil when this server has no such disk).
    public func shadowFolder(_ backup: String, disk: String, database: String, table: String) -> String? {
        guard let path = diskPaths[disk] else { return nil }
        return path + "backup/" + backup + "/shadow/" + BackupNames.encode(database) + "/" + BackupNames.encode(table)
            + "/" + disk
    }

    /// Backup names become folder names and S3 key segments: letters, digits and `._:+-`, not
    /// starting with a dot.
    public static func validateName(_ name: String) throws(BackupError) {
        let allowed = name.utf8.allSatisfy {
            (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0)
                || [0x2E, 0x5F, 0x3A, 0x2B, 0x2D].contains($0)
        }
        guard !name.isEmpty, name.utf8.count <= 200, allowed, !name.hasPrefix(".") else {
            throw BackupError(.invalidName,
                              "'\(name)' is not a usable backup name: use letters, digits and . _ : + - (not starting with a dot)")
        }
    }
}
