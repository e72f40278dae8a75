import Foundation
import InplaceCore
import Testing

/// Runs the built `inplace` binary as an operator would, and checks its output streams, exit
/// codes and that secrets never appear.
struct CLI {
    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
        var all: String { stdout + stderr }
    }

    static var binary: String {
        let debug = TestBed.repositoryRoot.appendingPathComponent(".build/debug/inplace").path
        return ProcessInfo.processInfo.environment["INPLACE_BINARY"] ?? debug
    }

    /// The binary with `arguments`, in this process's environment less its ClickHouse and S3
    /// variables, plus `environment`.
    static func process(_ arguments: [String], environment: [String: String]) -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for key in env.keys where key.hasPrefix("CLICKHOUSE_") || key.hasPrefix("S3_") { env[key] = nil }
        env.merge(environment) { $1 }
        process.environment = env
        return process
    }

    /// Runs the binary to its end, waiting on a thread of its own: a test waiting for a child
    /// process must not hold one of the few threads of Swift's cooperative pool (on 2 cores,
    /// parallel tests doing so stalled every other test for seconds).
    static func run(_ arguments: [String], environment: [String: String] = [:]) async throws -> Result {
        try await run(process(arguments, environment: environment))
    }

    /// Runs `process` (any program) to its end on a thread of its own.
    static func run(_ process: Process) async throws -> Result {
        nonisolated(unsafe) let process = process
        return try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Swift.Result { try runToEnd(process) }) }.start()
        }
    }

    /// Runs `process` (any program), collecting its output streams, until it exits.
    static func runToEnd(_ process: Process) throws -> Result {
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self))
    }
}

@Suite("The inplace command line")
struct CommandLineTests {
    @Test("--version and --help answer")
    func versionAndHelp() async throws {
        let version = try await CLI.run(["--version"])
        #expect(version.status == 0)
        #expect(version.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0.1.0")
        let help = try await CLI.run(["--help"])
        #expect(help.status == 0)
        for command in ["config", "create", "upload", "list"] { #expect(help.stdout.contains(command)) }
    }

    @Test("a malformed config file exits 3 with the file named on stderr, nothing on stdout")
    func malformedConfig() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        try "general: [oops\n".write(toFile: folder.path("c.yml"), atomically: true, encoding: .utf8)
        let result = try await CLI.run(["config", "show", "--config", folder.path("c.yml")])
        #expect(result.status == 3)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains(folder.path("c.yml")))
        #expect(result.stderr.contains("not valid YAML"))
    }

    @Test("config show masks secrets given by file or environment")
    func configShowMasks() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        try "clickhouse:\n  password: FilePassw0rd\n".write(toFile: folder.path("c.yml"), atomically: true, encoding: .utf8)
        let result = try await CLI.run(["config", "show", "--config", folder.path("c.yml")],
                                 environment: ["S3_SECRET_KEY": "EnvS3cret77", "REMOTE_STORAGE": "s3", "S3_BUCKET": "b"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!result.all.contains("FilePassw0rd"))
        #expect(!result.all.contains("EnvS3cret77"))
        #expect(result.stdout.contains("remote_storage: \"s3\""))
    }

    @Test("create, list, upload through the binary: JSON on stdout alone, logs on stderr, no secret anywhere",
          .enabled(if: TestBed.shouldRun))
    func backupCommands() async throws {
        let bed = try TestBed.load()
        let ch = try bed.clickHouse()
        let sample = try await SampleDatabase.make(ch, prefix: "it_cli", tables: ["t"])
        let config = TestBed.envFile.replacingOccurrences(of: "/env", with: "/config.yml")
        let env = ["S3_PATH": "it/\(TestBed.uniqueName("cli"))"]
        let name = TestBed.uniqueName("cli")
        var outputs: [String] = []

        let created = try await CLI.run(["create", "--config", config, "--tables", "\(sample.name).*", "--json", name], environment: env)
        outputs.append(created.all)
        #expect(created.status == 0, "\(created.stderr)")
        let summary = try JSONSerialization.jsonObject(with: Data(created.stdout.utf8)) as? [String: String]
        #expect(summary?["parts"] == "3")
        #expect(created.stderr.contains("info"))

        let again = try await CLI.run(["create", "--config", config, "--tables", "\(sample.name).*", name], environment: env)
        outputs.append(again.all)
        #expect(again.status == 10, "an existing name is refused with its own exit code")

        let nothing = try await CLI.run(["create", "--config", config, "--tables", "no_such_db_q.*", TestBed.uniqueName("n")],
                                  environment: env)
        outputs.append(nothing.all)
        #expect(nothing.status == 9)
        #expect(nothing.stderr.contains("matches no table"))

        let uploaded = try await CLI.run(["upload", "--config", config, name], environment: env)
        outputs.append(uploaded.all)
        #expect(uploaded.status == 0, "\(uploaded.stderr)")

        let listed = try await CLI.run(["list", "--config", config, "--json"], environment: env)
        outputs.append(listed.all)
        #expect(listed.status == 0, "\(listed.stderr)")
        let items = try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]] ?? []
        let mine = items.filter { $0["name"] as? String == name }
        #expect(Set(mine.compactMap { $0["location"] as? String }) == ["local", "remote"])
        #expect(mine.allSatisfy { $0["state"] as? String == "complete" })

        let text = try await CLI.run(["list", "remote", "--config", config], environment: env)
        outputs.append(text.all)
        #expect(text.stdout.contains(name) && text.stdout.contains("remote"))

        for output in outputs {
            #expect(!output.contains(bed.clickHousePassword))
            #expect(!output.contains(bed.s3SecretKey))
        }
        let layout = try await ClickHouseCatalog(client: ch).disks()
        try? FileManager.default.removeItem(atPath: (layout.first { $0.name == "default" }?.path ?? "/nonexistent/") + "backup/" + name)
        await sample.drop()
    }
}

@Suite("No secret in any output or file", .enabled(if: TestBed.shouldRun))
struct SecretScanTests {
    @Test("every command, run with the test bed's password and secret key, prints neither, nor writes them to the journal")
    func noSecretAnywhere() async throws {
        let bed = try TestBed.load()
        let ch = try bed.clickHouse()
        let sample = try await SampleDatabase.make(ch, prefix: "it_secret", tables: ["t"])
        let config = TestBed.envFile.replacingOccurrences(of: "/env", with: "/config.yml")
        let env = ["S3_PATH": "it/\(TestBed.uniqueName("secret"))"]
        let name = TestBed.uniqueName("secret")
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let journal = folder.path("journal.sqlite")
        let commands: [[String]] = [
            ["config", "show"],
            ["create", "--tables", "\(sample.name).*", name],
            ["upload", name],
            ["list"], ["list", "remote", "--json"],
            ["plan", name], ["plan", "--from", "remote", "--json", name],
            ["restore", "--journal", journal, "--json", name],
            ["restore", "--journal", journal, "--new-run", "--from", "remote", name],
            ["journal", "list", "--journal", journal], ["journal", "list", "--journal", journal, "--json"],
            ["journal", "show", "--journal", journal, "--json"], ["journal", "show", "--journal", journal, "1"],
            ["journal", "show", "--journal", journal, "--event", "2"],
            ["journal", "show", "--journal", journal, "--event", "2", "--json"],
            ["journal", "replay", "1", "--failed", "--journal", journal],
            ["list", "local", "--json"], ["list", "local"],
            // Error paths.
            ["resume", "--journal", journal], ["resume", "99", "--journal", journal, "--json"],
            ["create", "--tables", "nothing_here.*", TestBed.uniqueName("n")],
            ["upload", "no_such_backup_\(UUID().uuidString.prefix(8))"],
            ["plan", "--from", "remote", "no_such_backup"],
        ]
        var outputs: [String] = []
        for command in commands {
            let result = try await CLI.run(command + ["--config", config, "--log-level", "trace"], environment: env)
            outputs.append(result.all)
        }
        // Wrong credentials: the errors name the setting, never the value given.
        let wrongPassword = "Wr0ngPassw0rd-\(UUID().uuidString)"
        let wrongSecret = "Wr0ngSecret-\(UUID().uuidString)"
        let refused = try await CLI.run(["list", "--config", config],
                                  environment: env.merging(["CLICKHOUSE_PASSWORD": wrongPassword]) { $1 })
        #expect(refused.status == 4)
        let denied = try await CLI.run(["list", "remote", "--config", config],
                                 environment: env.merging(["S3_SECRET_KEY": wrongSecret]) { $1 })
        #expect(denied.status == 6)
        outputs += [refused.all, denied.all]
        let wrongPasswordCommands: [[String]] = [
            ["plan", "--json", name], ["restore", "--journal", journal, name], ["resume", "--journal", journal],
            ["journal", "replay", "1", "--failed", "--journal", journal], ["create", TestBed.uniqueName("n")],
        ]
        for command in wrongPasswordCommands {
            let result = try await CLI.run(command + ["--config", config, "--log-level", "trace"],
                                     environment: env.merging(["CLICKHOUSE_PASSWORD": wrongPassword]) { $1 })
            #expect(result.status == 4, "\(command): \(result.stderr)")
            outputs.append(result.all)
        }
        for command in [["upload", name], ["plan", "--from", "remote", name], ["restore", "--from", "remote", "--journal", journal, name]] {
            let result = try await CLI.run(command + ["--config", config, "--log-level", "trace"],
                                     environment: env.merging(["S3_SECRET_KEY": wrongSecret]) { $1 })
            #expect(result.status == 6, "\(command): \(result.stderr)")
            outputs.append(result.all)
        }

        let secrets = [bed.clickHousePassword, bed.s3SecretKey, wrongPassword, wrongSecret]
        for (index, output) in outputs.enumerated() {
            for secret in secrets { #expect(!output.contains(secret), "output of command \(index) holds a secret") }
        }
        #expect(outputs.contains { $0.contains("\"complete\"") }, "the commands really ran")
        #expect(FileManager.default.fileExists(atPath: journal))
        for file in [journal, journal + "-wal", journal + "-shm"] where FileManager.default.fileExists(atPath: file) {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
            for secret in secrets { #expect(bytes.range(of: Data(secret.utf8)) == nil, "\(file) holds a secret") }
        }
        let disks = try await ClickHouseCatalog(client: ch).disks()
        try? FileManager.default.removeItem(atPath: (disks.first { $0.name == "default" }?.path ?? "/nonexistent/") + "backup/" + name)
        await sample.drop()
    }
}
