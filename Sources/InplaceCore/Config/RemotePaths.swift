/// `s3.path` and `s3.object_disk_path` as clickhouse-backup uses them, with the server's macros
/// put in (clickhouse-backup's `ApplyMacros`, which every command that touches remote storage
/// applies to both paths):
///
/// 1. At load, both values are trimmed of `/` and whitespace at both ends.
/// 2. A path without `{` is used as written, and no query is sent.
/// 3. Otherwise one query, `SELECT macro, substitution FROM system.macros`, serves both paths:
///    every `{name}` of a macro the server has is replaced by its substitution, scanning left to
///    right; a substitution is never scanned again, names are case-sensitive, nothing else (not
///    `{version}`) is special. An empty `system.macros` leaves the paths as written.
/// 4. A `{name}` the server has no macro for stays as written, as in clickhouse-backup, and is
///    reported (`unresolved`): the commands warn, and `upload` refuses to write under it.
/// 5. Object keys are made as Go's `path.Join` makes them: empty and `.` segments dropped, `..`
///    taking the segment before it away (`RemoteBackupStore.normalizedPrefix`).
public struct RemotePaths: Sendable, Equatable {
    /// The values as configured (trimmed).
    public var configuredPath: String
    public var configuredObjectDiskPath: String
    /// The values with the macros put in.
    public var path: String
    public var objectDiskPath: String
    /// The `{name}`s left in either path, in order, each once.
    public var unresolved: [String]
    /// The server's macros, when they were asked for (nil: no path contains `{`).
    public var macros: [String: String]?

    /// The paths as written, when neither needs the server's macros; nil otherwise.
    public static func withoutMacros(path: String, objectDiskPath: String) -> RemotePaths? {
        guard !path.contains("{"), !objectDiskPath.contains("{") else { return nil }
        return RemotePaths(configuredPath: path, configuredObjectDiskPath: objectDiskPath, path: path,
                           objectDiskPath: objectDiskPath, unresolved: [], macros: nil)
    }

    /// Both paths with `macros` put in.
    public init(path: String, objectDiskPath: String, macros: [String: String]) {
        let (newPath, left) = Self.substitute(path, macros: macros)
        let (newObjectDiskPath, leftInObjectDiskPath) = Self.substitute(objectDiskPath, macros: macros)
        self.init(configuredPath: path, configuredObjectDiskPath: objectDiskPath, path: newPath,
                  objectDiskPath: newObjectDiskPath, unresolved: Self.unique(left + leftInObjectDiskPath),
                  macros: macros)
    }

    init(configuredPath: String, configuredObjectDiskPath: String, path: String, objectDiskPath: String,
         unresolved: [String], macros: [String: String]?) {
        self.configuredPath = configuredPath
        self.configuredObjectDiskPath = configuredObjectDiskPath
        self.path = path
        self.objectDiskPath = objectDiskPath
        self.unresolved = unresolved
        self.macros = macros
    }

    /// Resolves both paths, asking `macros` (one query) only when a path contains `{`.
    public static func resolve(
        path: String, objectDiskPath: String, macros: () async throws -> [String: String]
    ) async rethrows -> RemotePaths {
        if let plain = withoutMacros(path: path, objectDiskPath: objectDiskPath) { return plain }
        return RemotePaths(path: path, objectDiskPath: objectDiskPath, macros: try await macros())
    }

    /// `text` with each `{name}` of `macros` replaced (one pass, left to right, as Go's
    /// strings.Replacer does), and the `{name}`s left as written.
    public static func substitute(_ text: String, macros: [String: String]) -> (text: String, unresolved: [String]) {
        guard text.contains("{") else { return (text, []) }
        var result = ""
        var unresolved: [String] = []
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "{") {
            result += rest[..<open]
            rest = rest[open...]
            let afterOpen = rest.index(after: rest.startIndex)
            guard let close = rest[afterOpen...].firstIndex(where: { $0 == "}" || $0 == "{" }), rest[close] == "}" else {
                // A `{` without its `}` (or another `{` first) is text.
                result.append("{")
                rest = rest[afterOpen...]
                continue
            }
            let name = String(rest[afterOpen..<close])
            if let value = macros[name] {
                result += value
            } else {
                result += "{\(name)}"
                unresolved.append("{\(name)}")
            }
            rest = rest[rest.index(after: close)...]
        }
        return (result + rest, unique(unresolved))
    }

    private static func unique(_ names: [String]) -> [String] {
        var seen = Set<String>()
        return names.filter { seen.insert($0).inserted }
    }

    /// One line for an operator when a `{name}` was left in a path; nil when none was.
    public var warning: String? {
        guard !unresolved.isEmpty else { return nil }
        let known = (macros ?? [:]).keys.sorted().map { "{\($0)}" }.joined(separator: ", ")
        return "s3.path '\(configuredPath)'\(configuredObjectDiskPath.isEmpty ? "" : " / s3.object_disk_path '\(configuredObjectDiskPath)'") "
            + "names \(unresolved.joined(separator: ", ")), which the server's system.macros lacks "
            + "(it has \(known.isEmpty ? "none" : known))"
    }
}

extension InplaceConfig {
    /// `s3.path` and `s3.object_disk_path` with the server's macros put in; the server is asked
    /// (one query) only when a path contains `{`. A failure names the path it was asked for.
    public func remotePaths(client: ClickHouseClient) async throws(ClickHouseError) -> RemotePaths {
        do {
            return try await RemotePaths.resolve(path: s3.path, objectDiskPath: s3.objectDiskPath) {
                try await ClickHouseCatalog(client: client).macros()
            }
        } catch let error as ClickHouseError {
            throw ClickHouseError(
                kind: error.kind, message: "s3.path '\(s3.path)' or s3.object_disk_path '\(s3.objectDiskPath)' names macros ({...}) and system.macros could not be read: \(error.message)",
                query: error.query, server: error.server, httpStatus: error.httpStatus)
        } catch {
            throw ClickHouseError(kind: .badResponse, message: "\(error)", query: nil, server: "")
        }
    }
}
