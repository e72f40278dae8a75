import Foundation
import Testing

@testable import InplaceCore

private func q(_ name: String) -> String { ClickHouseSQL.identifier(name) }

/// The metrics file read by a real Prometheus parser (prometheus_client's, from the test bed's
/// venv): each sample as name, labels and value.
struct PrometheusSamples {
    struct Sample: Decodable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    var samples: [Sample]
    var families: [String: String]  // name -> type

    static var python: String {
        let venv = ProcessInfo.processInfo.environment["INPLACE_VENV"]
            ?? TestBed.repositoryRoot.appendingPathComponent(".venv").path
        return venv + "/bin/python"
    }

    static func parse(_ path: String) throws -> PrometheusSamples {
        let script = """
            import json, sys
            from prometheus_client.parser import text_string_to_metric_families
            families, samples = {}, []
            for family in text_string_to_metric_families(open(sys.argv[1]).read()):
                families[family.name] = family.type
                for s in family.samples:
                    samples.append({"name": s.name, "labels": s.labels, "value": s.value})
            print(json.dumps({"families": families, "samples": samples}))
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", script, path]
        let result = try CLI.runToEnd(process)
        guard result.status == 0 else { throw TestBed.Missing(description: "the Prometheus parser refused \(path): \(result.stderr)") }
        struct Document: Decodable {
            var families: [String: String]
            var samples: [Sample]
        }
        let document = try JSONDecoder().decode(Document.self, from: Data(result.stdout.utf8))
        return PrometheusSamples(samples: document.samples, families: document.families)
    }

    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }?.value
    }

    func sum(_ name: String, _ labels: [String: String] = [:]) -> Double {
        samples.filter { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }
            .reduce(0) { $0 + $1.value }
    }
}

@Suite("The metrics file: rendering")
struct MetricsRenderTests {
    /// A plan's detail as the journal stores it: only `keep[].bytes` and `resequence[].bytes`
    /// are read by the progress query.
    private static func plan(keep: [Int64], resequence: [Int64] = []) -> String {
        let kept = keep.map { "{\"backup\":\"p\",\"live\":\"p\",\"bytes\":\($0)}" }.joined(separator: ",")
        let again = resequence.map { "{\"backup\":\"q\",\"live\":\"q\",\"bytes\":\($0)}" }.joined(separator: ",")
        return "{\"keep\":[\(kept)],\"resequence\":[\(again)]}"
    }

    @Test("a read that reuses the previous one's kept figures equals a fresh read: after a plan is done, and after a replan rewrites one")
    func keptFiguresReused() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let journal = try Journal(path: folder.path("j.sqlite"))
        let run = try await journal.createRun(backup: "b", source: "local", options: "{}")
        // A plan is journaled with its table's plan-table event, and counts once that event is done.
        let plans = try await journal.addEvents(run, [
            NewEvent(kind: .planTable, database: "d", table: "t1", detail: Self.plan(keep: [10, 20])),
            NewEvent(kind: .planTable, database: "d", table: "t2", detail: Self.plan(keep: [5], resequence: [7])),
        ])
        #expect(try await journal.progress(run)?.keptParts == 0)
        try await journal.completePlanTable(plans[0], run: run, emitting: [], detail: "0 event(s)")
        let first = try #require(try await journal.progress(run))
        #expect(first.keptParts == 2 && first.keptBytes == 30)

        // Nothing changed: the figures are lent, and equal.
        let same = try #require(try await journal.progress(run, previous: first))
        #expect(same.keptParts == 2 && same.keptBytes == 30 && same.keptFrom == first.keptFrom)

        // One more plan done: summed again.
        try await journal.completePlanTable(plans[1], run: run, emitting: [], detail: "0 event(s)")
        let second = try #require(try await journal.progress(run, previous: first))
        #expect(second.keptParts == 4 && second.keptBytes == 42)

        // A replan rewrites t1's plan in place (same event, still done): summed again.
        try await journal.replan(plans[0], run: run, plan: Self.plan(keep: [1]), emitting: [])
        let third = try #require(try await journal.progress(run, previous: second))
        let fresh = try #require(try await journal.progress(run))
        #expect(third.keptParts == 3 && third.keptBytes == 13)
        #expect(third.keptParts == fresh.keptParts && third.keptBytes == fresh.keptBytes)
    }

    @Test("names follow Prometheus conventions, labels are escaped, every kind and state is present")
    func render() throws {
        var progress = RunProgress(run: JournalRun(
            id: 7, backup: "b\"a\\ck\nup", source: "remote", options: "{}", toolVersion: "x", state: .running,
            startedAt: "2026-12-03T10:00:00Z", updatedAt: "2026-12-03T10:00:00Z"))
        progress.steps[.downloadPart] = [.done: .init(count: 3, bytes: 300), .pending: .init(count: 1, bytes: 50)]
        progress.tables = 2
        let text = RestoreMetrics.render(progress, now: Date(timeIntervalSince1970: 1_800_000_000), lastSuccess: nil)
        #expect(text.contains("inplace_downloaded_bytes_total{backup=\"b\\\"a\\\\ck\\nup\"} 300\n"), "\(text)")
        #expect(text.contains("inplace_download_planned_bytes{backup=\"b\\\"a\\\\ck\\nup\"} 350\n"))
        #expect(text.contains("inplace_run_start_timestamp_seconds{backup=\"b\\\"a\\\\ck\\nup\"} 1796292000.000\n"))
        #expect(!text.contains("inplace_last_success_timestamp_seconds"))
        let stepLines = text.split(separator: "\n").filter { $0.hasPrefix("inplace_steps{") }
        #expect(stepLines.count == EventKind.allCases.count * EventState.allCases.count)
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let name = line.prefix { $0 != "{" }
            #expect(name.hasPrefix("inplace_"))
            #expect(text.contains("# TYPE \(name) "), "\(name) has a TYPE line")
        }

        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path("inplace.prom")
        try RestoreMetrics.replace(path, with: Array(text.utf8))
        let parsed = try PrometheusSamples.parse(path)
        #expect(parsed.value("inplace_downloaded_bytes_total") == 300)
        #expect(parsed.families["inplace_downloaded_bytes"] == "counter")
        #expect(parsed.value("inplace_run_state", ["state": "running"]) == 1)
        #expect(parsed.sum("inplace_run_state") == 1)
        #expect(parsed.samples.first?.labels["backup"] == "b\"a\\ck\nup")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.url.path) == ["inplace.prom"],
                "no temporary file is left")
    }
}

@Suite("The metrics file during and after a real restore", .enabled(if: TestBed.shouldRun))
struct MetricsIntegrationTests {
    @Test("--metrics-file is parsed by Prometheus' parser during the run and at its end, its counts equal journal show --json's")
    func duringAndAfter() async throws {
        let bed = try TestBed.load()
        let ch = try bed.clickHouse()
        let config = TestBed.envFile.replacingOccurrences(of: "/env", with: "/config.yml")
        let db = TestBed.uniqueName("it_metrics")
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        try await ch.execute("CREATE DATABASE \(q(db))")
        defer { Task { _ = try? await ch.execute("DROP DATABASE IF EXISTS \(q(db)) SYNC") } }
        for table in ["a", "b"] {
            try await ch.execute("CREATE TABLE \(q(db)).\(table) (id UInt64, s String) ENGINE = MergeTree ORDER BY id \(noMergeSettings)")
            for index in 0..<4 {
                try await ch.execute("INSERT INTO \(q(db)).\(table) SELECT number + \(index * 100_000), randomString(400) FROM numbers(10000)")
            }
        }
        let atBackup = try await TableContents.of(ch, db, "a")
        let name = TestBed.uniqueName("metrics")
        let env = ["S3_PATH": "it/\(name)"]
        #expect(try await CLI.run(["create", "--config", config, "--tables", "\(db).*", name], environment: env).status == 0)
        #expect(try await CLI.run(["upload", "--config", config, name], environment: env).status == 0)
        let layout = LocalBackupLayout(disks: try await ClickHouseCatalog(client: ch).disks())
        try FileManager.default.removeItem(atPath: layout.folder(name))
        for table in ["a", "b"] {
            for part in try await ClickHouseCatalog(client: ch).parts(of: [(db, table)]).map(\.name).prefix(3) {
                try await ch.execute("ALTER TABLE \(q(db)).\(table) DROP PART \(ClickHouseSQL.string(part))")
            }
        }
        // S3 slowed (a fault proxy: 4 MB/s per response) so that the run lasts seconds.
        let proxy = try FaultProxy(upstream: try bed.value("S3_ENDPOINT"))
        defer { proxy.stop() }
        try await proxy.set(.slow(bytesPerSecond: 4 << 20))
        let metrics = folder.path("inplace.prom")
        let journal = folder.path("journal.sqlite")
        let runEnv = env.merging(["S3_ENDPOINT": proxy.endpoint]) { $1 }
        let restore = Task {
            try await CLI.run(["restore", "--config", config, "--journal", journal, "--concurrency", "1",
                               "--metrics-file", metrics, "--metrics-interval", "0.2", "--json", name], environment: runEnv)
        }
        // During the run: a parsable file that says running, some steps done and some not.
        var during: PrometheusSamples?
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if FileManager.default.fileExists(atPath: metrics), let parsed = try? PrometheusSamples.parse(metrics),
               parsed.value("inplace_run_state", ["state": "running"]) == 1,
               parsed.sum("inplace_steps", ["state": "done"]) > 0, parsed.sum("inplace_steps", ["state": "pending"]) > 0 {
                during = parsed
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        let result = try await restore.value
        #expect(result.status == 0, "\(result.all)")
        let seen = try #require(during, "the file showed the run going on")
        #expect(seen.value("inplace_last_success_timestamp_seconds") == nil)
        #expect(seen.value("inplace_tables") == 2)

        let end = try PrometheusSamples.parse(metrics)
        let show = try await CLI.run(["journal", "show", "--config", config, "--journal", journal, "--json"])
        struct Show: Decodable {
            struct Table: Decodable { var events: Int; var done: Int; var failed: Int }
            struct Run: Decodable { var id: Int64; var state: String }
            var run: Run
            var tables: [Table]
        }
        let shown = try JSONDecoder().decode(Show.self, from: Data(show.stdout.utf8))
        #expect(end.value("inplace_run_id") == Double(shown.run.id))
        #expect(end.value("inplace_run_state", ["state": shown.run.state]) == 1 && shown.run.state == "done")
        #expect(end.sum("inplace_steps") == Double(shown.tables.reduce(0) { $0 + $1.events }))
        #expect(end.sum("inplace_steps", ["state": "done"]) == Double(shown.tables.reduce(0) { $0 + $1.done }))
        #expect(end.sum("inplace_steps", ["state": "failed"]) == 0)
        // Per table: 3 downloads attached, and the kept part after them re-sequenced (detached, attached again).
        #expect(end.value("inplace_parts_attached_total") == 8)
        #expect(end.value("inplace_parts_resequenced_total") == 2)
        #expect(end.value("inplace_kept_parts") == 2)
        #expect(end.value("inplace_tables_done") == 2)
        let summary = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        #expect(end.value("inplace_downloaded_bytes_total") == (summary?["bytes_downloaded"] as? NSNumber)?.doubleValue)
        let success = try #require(end.value("inplace_last_success_timestamp_seconds"))
        #expect(abs(success - Date().timeIntervalSince1970) < 120)
        #expect(try await TableContents.of(ch, db, "a") == atBackup)
    }
}
