import Foundation
import InplaceCore

/// tools/faultproxy.py in front of the test bed's S3: a real S3 behind a proxy that fails on
/// purpose (5xx answers, cut or slow bodies, refused connections), the one thing the test bed
/// cannot be made to do for real. One process per test, on free ports; `stop()` ends it.
final class FaultProxy: Sendable {
    enum Mode: Sendable {
        case pass
        /// The next `count` matching requests (all when nil) answer `status` with an S3 XML error.
        case fail(status: Int, count: Int? = nil)
        /// Answer bodies at `bytesPerSecond`, per response.
        case slow(bytesPerSecond: Int)
        /// The headers (full Content-Length) and `after` body bytes, then the connection closes.
        case truncate(after: Int, count: Int? = nil)
        /// Every connection closed and new ones refused, until the next mode.
        case stopped
    }

    /// The requests a fault hits; the others pass.
    struct Filter: Sendable {
        var methods: [String] = ["GET"]
        /// The URL path's start, e.g. `/bucket/backups/NAME/shadow/`.
        var pathPrefix: String
    }

    struct Request: Decodable, Sendable {
        /// Seconds since the proxy started.
        let t: Double
        let method: String
        let path: String
        let range: String?
        let fault: String?
        let status: Int?
    }

    struct Stats: Decodable, Sendable {
        let requests: Int
        let faults: Int
        /// Answer bytes sent to clients (headers excluded).
        let bytesRelayed: Int
        let log: [Request]

        enum CodingKeys: String, CodingKey {
            case requests, faults, log
            case bytesRelayed = "bytes_relayed"
        }
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    let process: Process
    let port: Int
    let controlPort: Int
    private let http = HTTPClient()

    /// Starts the proxy before `upstream` (`http://host:port`).
    init(upstream: String) throws {
        let hostPort = upstream.components(separatedBy: "://").last ?? upstream
        struct Started: Decodable {
            let port: Int
            let controlPort: Int
            enum CodingKeys: String, CodingKey {
                case port
                case controlPort = "control_port"
            }
        }
        let (process, started) = try ToolProcess.start("tools/faultproxy.py", ["--upstream", hostPort], answer: Started.self)
        self.process = process
        port = started.port
        controlPort = started.controlPort
    }

    deinit { stop() }

    /// The S3 endpoint to configure instead of the real one.
    var endpoint: String { "http://127.0.0.1:\(port)" }

    /// SIGKILL: the proxy keeps nothing worth a graceful stop.
    func stop() { ToolProcess.kill(process) }

    func set(_ mode: Mode, only filter: Filter? = nil) async throws {
        var spec: [String: Any]
        var count: Int?
        switch mode {
        case .pass: spec = ["mode": "pass"]
        case .fail(let status, let times):
            spec = ["mode": "fail", "status": status]
            count = times
        case .slow(let rate): spec = ["mode": "slow", "rate": rate]
        case .truncate(let after, let times):
            spec = ["mode": "truncate", "after": after]
            count = times
        case .stopped: spec = ["mode": "stopped"]
        }
        if let count { spec["count"] = count }
        if let filter {
            spec["methods"] = filter.methods
            spec["prefix"] = filter.pathPrefix
        }
        _ = try await control("POST", "/mode", body: try JSONSerialization.data(withJSONObject: spec))
    }

    /// Clears the counters and the request log.
    func reset() async throws {
        _ = try await control("POST", "/reset")
    }

    func stats() async throws -> Stats {
        try JSONDecoder().decode(Stats.self, from: Data(try await control("GET", "/stats")))
    }

    private func control(_ method: String, _ path: String, body: Data? = nil) async throws -> [UInt8] {
        let request = HTTPRequest(method: method, url: "http://127.0.0.1:\(controlPort)\(path)",
                                  headers: [HTTPHeader("Content-Type", "application/json")],
                                  body: body.map { .bytes([UInt8]($0)) } ?? .none)
        let response = try await http.send(request)
        guard response.isSuccess else {
            throw Failure(description: "faultproxy \(method) \(path): \(response.status) \(response.bodyText)")
        }
        return response.body
    }
}

/// A Python tool of tools/ run by a test: it prints one JSON line when it is ready.
enum ToolProcess {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Starts `script` (a path in the repository) and decodes its first line of standard output.
    /// Its standard input is a pipe this process holds open.
    static func start<Answer: Decodable>(
        _ script: String, _ arguments: [String], answer: Answer.Type
    ) throws -> (Process, Answer) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", TestBed.repositoryRoot.appendingPathComponent(script).path] + arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.standardError
        process.standardInput = Pipe()
        try process.run()
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line += chunk
        }
        guard let started = try? JSONDecoder().decode(Answer.self, from: line) else {
            process.terminate()
            throw Failure(description: "\(script) did not start: \(String(decoding: line, as: UTF8.self))")
        }
        return (process, started)
    }

    /// SIGKILL, then waits: the tools keep nothing worth a graceful stop.
    static func kill(_ process: Process) {
        if process.isRunning {
            Foundation.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}
