import Foundation
import InplaceCore
import Testing

/// The running test bed (tools/testbed up): a real ClickHouse engine behind its HTTP interface and
/// a real S3 server. Its endpoints and credentials come from `.testbed/env` (or the file named by
/// INPLACE_TESTBED_ENV).
///
/// Integration tests are enabled when the test bed is up, and always under CI=true: there a
/// missing test bed fails them loudly instead of skipping them.
struct TestBed: Sendable {
    let values: [String: String]

    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var envFile: String {
        ProcessInfo.processInfo.environment["INPLACE_TESTBED_ENV"]
            ?? repositoryRoot.appendingPathComponent(".testbed/env").path
    }

    static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// For `.enabled(if:)`: run when the test bed's env file exists, and always in CI.
    static var shouldRun: Bool { isCI || FileManager.default.fileExists(atPath: envFile) }

    struct Missing: Error, CustomStringConvertible {
        let description: String
    }

    /// Loads the env file; throws (failing the test) when it is missing.
    static func load() throws -> TestBed {
        guard let text = try? String(contentsOfFile: envFile, encoding: .utf8) else {
            throw Missing(description: "the test bed is not running: \(envFile) is missing. Start it with tools/testbed up (tools/test does it).")
        }
        var values: [String: String] = [:]
        for rawLine in text.split(separator: "\n") {
            var line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("#") || line.isEmpty { continue }
            if line.hasPrefix("export ") { line.removeFirst(7) }
            guard let eq = line.firstIndex(of: "=") else { continue }
            let key = String(line[..<eq])
            var value = String(line[line.index(after: eq)...])
            if value.hasPrefix("'") && value.hasSuffix("'") && value.count >= 2 {
                value = String(value.dropFirst().dropLast()).replacingOccurrences(of: "'\\''", with: "'")
            } else if value.hasPrefix("\"") && value.hasSuffix("\"") && value.count >= 2 {
                value = String(value.dropFirst().dropLast())
            }
            values[key] = value
        }
        return TestBed(values: values)
    }

    func value(_ key: String) throws -> String {
        guard let value = values[key], !value.isEmpty else {
            throw Missing(description: "\(TestBed.envFile) has no \(key)")
        }
        return value
    }

    /// The running test bed, a client of its ClickHouse and its config file (clickhouse-backup's
    /// format): what an integration suite holds.
    static func clients() throws -> (TestBed, ClickHouseClient, String) {
        let bed = try load()
        return (bed, try bed.clickHouse(), envFile.replacingOccurrences(of: "/env", with: "/config.yml"))
    }

    var clickHousePassword: String { values["CLICKHOUSE_PASSWORD"] ?? "" }
    var s3SecretKey: String { values["S3_SECRET_KEY"] ?? "" }

    func clickHouseEndpoint(password: String? = nil) throws -> ClickHouseEndpoint {
        ClickHouseEndpoint(
            host: try value("CLICKHOUSE_HOST"), port: Int(try value("CLICKHOUSE_HTTP_PORT")) ?? 8123,
            username: try value("CLICKHOUSE_USERNAME"), password: password ?? clickHousePassword,
            timeout: .seconds(120))
    }

    func clickHouse(password: String? = nil) throws -> ClickHouseClient {
        ClickHouseClient(endpoint: try clickHouseEndpoint(password: password))
    }

    func s3Config(secretKey: String? = nil) throws -> S3Config {
        S3Config(
            endpoint: try value("S3_ENDPOINT"), region: values["S3_REGION"] ?? "us-east-1",
            bucket: try value("S3_BUCKET"), accessKey: try value("S3_ACCESS_KEY"),
            secretKey: secretKey ?? s3SecretKey, forcePathStyle: true, disableSSL: true,
            retry: RetryPolicy(maxAttempts: 4, baseDelay: .milliseconds(50), maxDelay: .milliseconds(500)))
    }

    func s3(secretKey: String? = nil) throws -> S3Client {
        S3Client(config: try s3Config(secretKey: secretKey))
    }

    /// A name no other test (or earlier run) uses: tests run in parallel against one engine.
    static func uniqueName(_ prefix: String) -> String {
        "\(prefix)_\(UInt32.random(in: 0...UInt32.max))_\(ProcessInfo.processInfo.processIdentifier)"
    }
}

/// A fresh temporary folder, removed by the caller with `remove()`.
struct TemporaryFolder {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("inplace-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    func remove() { try? FileManager.default.removeItem(at: url) }
}
