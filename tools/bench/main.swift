// Benchmark driver: each subcommand measures one thing and prints one JSON line on stdout, so
// that the scripts in tools/ can alternate it with a baseline and compute ratios.
//
//   inplace-bench sqlite-commits COUNT PATH
//   inplace-bench s3-get KEY OUTPUT          (S3 settings from the environment, as in .testbed/env)
//   inplace-bench s3-put KEY FILE
//   inplace-bench s3-delete KEY
//   inplace-bench plan TABLES PARTS_PER_TABLE
//   inplace-bench s3-extract KEY PART TARGET
//   inplace-bench archive PART FOLDER OUTPUT COMPRESSION
//   inplace-bench pipeline EVENTS PATH stream|all
//   inplace-bench journal-replay RESTORED_JOURNAL PATH
//   inplace-bench report-journal STEPS TABLES PATH HTML
import Foundation
import InplaceCore

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("inplace-bench: \(message)\n".utf8))
    exit(2)
}

func env(_ name: String) -> String {
    guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else { fail("\(name) is not set") }
    return value
}

func s3FromEnvironment() -> S3Client {
    S3Client(config: S3Config(
        endpoint: env("S3_ENDPOINT"), region: ProcessInfo.processInfo.environment["S3_REGION"] ?? "us-east-1",
        bucket: env("S3_BUCKET"), accessKey: env("S3_ACCESS_KEY"), secretKey: env("S3_SECRET_KEY"),
        forcePathStyle: ProcessInfo.processInfo.environment["S3_FORCE_PATH_STYLE"] != "false", disableSSL: true))
}

func report(_ fields: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}

/// 100,000 single-row transactions by default: each is BEGIN IMMEDIATE, one INSERT, COMMIT,
/// in WAL mode with synchronous=NORMAL (the journal's settings).
func sqliteCommits(count: Int, path: String) throws {
    for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    let db = try SQLiteConnection(path: path, journalMode: .wal, synchronous: .normal)
    try db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, state TEXT NOT NULL, at INTEGER NOT NULL)")
    let clock = ContinuousClock()
    let started = clock.now
    for index in 0..<count {
        try db.transaction { try db.run("INSERT INTO events (state, at) VALUES (?, ?)", "started", index) }
    }
    let elapsed = clock.now - started
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    guard try db.queryScalarInt("SELECT count(*) FROM events") == Int64(count) else { fail("rows missing") }
    report(["benchmark": "sqlite-commits", "commits": count, "seconds": seconds, "commits_per_second": Double(count) / seconds])
}

/// Peak resident memory of this process, in bytes.
func maxRSS() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_maxrss * 1024
}

func timed(_ body: () async throws -> Void) async rethrows -> Double {
    let clock = ContinuousClock()
    let started = clock.now
    try await body()
    let elapsed = clock.now - started
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

func benchPlan(tables: Int, partsPerTable: Int) {
    let query = "CREATE TABLE db.t (`d` Date, `id` UInt64, `s` String) ENGINE = MergeTree PARTITION BY toYYYYMM(d) ORDER BY id"
    var backup: [BackupTableState] = []
    var live: [TableKey: LiveState.Table] = [:]
    backup.reserveCapacity(tables)
    for table in 0..<tables {
        var backupParts: [BackupTableState.Part] = []
        var liveParts: [LiveState.Part] = []
        backupParts.reserveCapacity(partsPerTable)
        liveParts.reserveCapacity(partsPerTable)
        for part in 0..<partsPerTable {
            let partition = "2024\(String(format: "%02d", part % 12 + 1))"
            let hash = String(format: "%016llx%016llx", UInt64(table), UInt64(part))
            backupParts.append(.init(name: "\(partition)_\(part + 1)_\(part + 1)_0", disk: "default", hash: hash,
                                     checksumsCRC: nil, bytes: 1 << 20))
            let changed = part % 20 == 0
            liveParts.append(.init(name: "\(partition)_\(part + 1000)_\(part + 1000)_0", partitionID: partition,
                                   disk: "default", hash: changed ? hash + "x" : hash, bytes: 1 << 20))
        }
        let name = "t\(table)"
        backup.append(BackupTableState(database: "db", table: name, query: query, parts: backupParts,
                                       currentParts: backupParts))
        live[TableKey("db", name)] = .init(engine: "MergeTree", createQuery: query, parts: liveParts)
    }
    let state = LiveState(databases: ["db": "Atomic"], tables: live, disks: ["default": 1 << 50])
    let rssBefore = maxRSS()
    let clock = ContinuousClock()
    let started = clock.now
    let plan = Planner.plan(backup: backup, live: state)
    let elapsed = clock.now - started
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let downloads = plan.tables.reduce(0) { $0 + $1.download.count }
    let keeps = plan.tables.reduce(0) { $0 + $1.keep.count }
    let resequenced = plan.tables.reduce(0) { $0 + $1.resequence.count }
    guard downloads == tables * ((partsPerTable + 19) / 20), keeps + resequenced + downloads == tables * partsPerTable else {
        fail("unexpected plan: \(keeps) kept, \(resequenced) re-sequenced, \(downloads) downloaded")
    }
    report(["benchmark": "plan", "tables": tables, "parts": tables * partsPerTable, "seconds": seconds,
            "max_rss_bytes": maxRSS(), "rss_before_planning_bytes": rssBefore, "kept": keeps,
            "resequenced": resequenced, "downloaded": downloads])
}

/// A finished run of `steps` steps over `tables` tables journaled at PATH through the real
/// journal API, as a restore journals them: per table a plan-table (its plan keeping ten parts for
/// each one it downloads), download/attach pairs, a few drops and a verify-table, the tables'
/// steps interleaved (as tables run side by side); one attach failed with an error holding HTML's
/// special characters, a few steps interrupted. Then the report is written to HTML once, in
/// process, and timed.
func benchReportJournal(steps: Int, tables: Int, path: String, html: String) async throws {
    for suffix in ["", "-wal", "-shm", ".lock"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    let perTable = steps / tables
    let pairs = (perTable - 2) * 9 / 20  // 90 % of the part steps are download/attach pairs, the rest drops
    let drops = perTable - 2 - 2 * pairs
    func part(_ table: Int, _ index: Int) -> String { "2024\(index % 12 + 1 < 10 ? "0" : "")\(index % 12 + 1)_\(index)_\(index)_0" }
    func plan(_ table: Int) -> String {
        let partBytes = 1 << 20
        let object: [String: Any] = [
            "database": "bench", "table": "t\(table)", "create": false, "createDatabase": false, "recreate": false,
            "identity": "hash_of_all_files", "refused": NSNull(), "resequence": [], "killMutations": [],
            "keep": (0..<(10 * pairs)).map { ["backup": "k_\($0)", "live": "k_\($0)", "bytes": partBytes] },
            "download": (0..<pairs).map { ["name": part(table, $0), "partition": "x", "disk": "default", "bytes": partBytes] },
            "drop": (0..<drops).map { ["name": "d_\($0)", "partition": "x", "disk": "default", "bytes": partBytes] },
        ]
        return String(decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }
    let journal = try Journal(path: path)
    let buildStarted = ContinuousClock.now
    let run = try await journal.createRun(backup: "bench-report", source: "local", options: "{}", events: (0..<tables).map {
        NewEvent(kind: .planTable, database: "bench", table: "t\($0)", detail: plan($0))
    })
    let planIDs = try await journal.events(run, kind: .planTable).map(\.id)
    var queues: [[(id: Int64, step: NewEvent)]] = []
    for table in 0..<tables {
        var emitted: [NewEvent] = []
        for index in 0..<pairs {
            emitted.append(NewEvent(kind: .downloadPart, database: "bench", table: "t\(table)", part: part(table, index),
                                    disk: "default", bytes: 1 << 20, sequence: 2 * index + 1))
            emitted.append(NewEvent(kind: .attachPart, database: "bench", table: "t\(table)", part: part(table, index),
                                    disk: "default", bytes: 1 << 20, sequence: 2 * index + 2))
        }
        for index in 0..<drops {
            emitted.append(NewEvent(kind: .dropPart, database: "bench", table: "t\(table)", part: "d_\(index)",
                                    bytes: 1 << 20, sequence: 2 * pairs + 1 + index))
        }
        emitted.append(NewEvent(kind: .verifyTable, database: "bench", table: "t\(table)", sequence: perTable))
        try await journal.transition(planIDs[table], to: .started)
        let ids = try await journal.completePlanTable(planIDs[table], run: run, emitting: emitted,
                                                      detail: "\(emitted.count) event(s)")
        queues.append(Array(zip(ids, emitted).map { (id: $0, step: $1) }))
    }
    var next = Array(repeating: 0, count: tables)
    var remaining = queues.reduce(0) { $0 + $1.count }
    while remaining > 0 {
        for table in 0..<tables where next[table] < queues[table].count {
            let (id, step) = queues[table][next[table]]
            next[table] += 1
            remaining -= 1
            try await journal.transition(id, to: .started, countAttempt: true)
            if table == 0 && step.kind == .attachPart && next[table] == 4 {
                try await journal.transition(id, to: .failed, error: "CHECK TABLE failed for <part> \"\(step.part ?? "")\" & its checksums")
            } else if step.kind == .dropPart && next[table] % 997 == 0 {
                try await journal.transition(id, to: .interrupted, detail: "stopped (SIGTERM)")
            } else {
                try await journal.transition(id, to: .done)
            }
        }
    }
    try await journal.setRunState(run, .partlyFailed)
    let built = ContinuousClock.now - buildStarted
    let reader = try Journal(path: path, readOnly: true)
    guard let finished = try await reader.run(run) else { fail("run \(run) is not in \(path)") }
    var size = 0
    var figures: RunReport?
    let loading = try await timed { figures = try await RunReport.load(reader, run: finished) }
    let writing = try await timed { size = try await figures!.writeHTML(reader, to: html) }
    let seconds = loading + writing
    let events = try await reader.counts(run).events
    report(["benchmark": "report-journal", "steps": events, "tables": tables,
            "build_seconds": Double(built.components.seconds) + Double(built.components.attoseconds) / 1e18,
            "report_seconds": seconds, "figures_seconds": loading, "html_seconds": writing, "html_bytes": size, "max_rss_bytes": maxRSS()])
}

let arguments = CommandLine.arguments.dropFirst()
do {
    switch arguments.first {
    case "sqlite-commits":
        let rest = Array(arguments.dropFirst())
        guard rest.count == 2, let count = Int(rest[0]) else { fail("usage: sqlite-commits COUNT PATH") }
        try sqliteCommits(count: count, path: rest[1])
    case "s3-get":
        let rest = Array(arguments.dropFirst())
        guard rest.count == 2 else { fail("usage: s3-get KEY OUTPUT") }
        let s3 = s3FromEnvironment()
        var info: S3ObjectInfo?
        let seconds = try await timed { info = try await s3.get(rest[0], to: .file(path: rest[1])) }
        report(["benchmark": "s3-get", "bytes": info?.size ?? 0, "seconds": seconds, "max_rss_bytes": maxRSS()])
    case "s3-put":
        let rest = Array(arguments.dropFirst())
        guard rest.count == 2 else { fail("usage: s3-put KEY FILE") }
        let s3 = s3FromEnvironment()
        let seconds = try await timed { try await s3.put(rest[0], file: rest[1]) }
        report(["benchmark": "s3-put", "seconds": seconds])
    case "s3-extract":
        // Streams the archive at KEY and extracts part PART into TARGET while it downloads.
        let rest = Array(arguments.dropFirst())
        guard rest.count == 3 else { fail("usage: s3-extract KEY PART TARGET") }
        let s3 = s3FromEnvironment()
        var result: ArchiveExtractor.Result?
        let extractor = ArchiveExtractor(wanted: [rest[1]], archiveName: rest[0])
        let seconds = try await timed { result = try await s3.extractArchive(rest[0], with: extractor, into: rest[2]) }
        report(["benchmark": "s3-extract", "bytes_written": result?.bytesWritten ?? 0, "seconds": seconds,
                "max_rss_bytes": maxRSS()])
    case "archive":
        // Writes part folder FOLDER (named PART) into an archive at OUTPUT with COMPRESSION.
        let rest = Array(arguments.dropFirst())
        guard rest.count == 4, let compression = ArchiveCompression(rawValue: rest[3]) else {
            fail("usage: archive PART FOLDER OUTPUT tar|gzip|zstd|lz4|bzip2|xz")
        }
        let size = try ArchiveWriter.write(parts: [(rest[0], rest[1])], to: rest[2], compression: compression,
                                           leadingSlash: true)
        report(["benchmark": "archive", "bytes": size])
    case "plan":
        // Plans TABLES tables of PARTS parts each, from metadata already in memory: 95% of each
        // table's parts are live under other names, 5% differ (drop and download).
        let rest = Array(arguments.dropFirst())
        guard rest.count == 2, let tables = Int(rest[0]), let parts = Int(rest[1]) else { fail("usage: plan TABLES PARTS") }
        benchPlan(tables: tables, partsPerTable: parts)
    case "journal":
        // N part events journaled and moved pending -> started -> done, as a restore does.
        let rest = Array(arguments.dropFirst())
        guard rest.count == 2, let count = Int(rest[0]) else { fail("usage: journal N PATH") }
        for suffix in ["", "-wal", "-shm", ".lock"] { try? FileManager.default.removeItem(atPath: rest[1] + suffix) }
        let journal = try Journal(path: rest[1])
        let run = try await journal.createRun(backup: "b", source: "local", options: "{}")
        let events = (0..<count).map {
            NewEvent(kind: .attachPart, database: "db", table: "t\($0 % 10)", part: "all_\($0)_\($0)_0", sequence: $0)
        }
        let clock = ContinuousClock()
        let started = clock.now
        let ids = try await journal.addEvents(run, events)
        for id in ids {
            try await journal.transition(id, to: .started, countAttempt: true)
            try await journal.transition(id, to: .done, newPart: "all_9_9_0")
        }
        let elapsed = clock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        report(["benchmark": "journal", "events": count, "transitions": 2 * count, "seconds": seconds,
                "microseconds_per_transition": seconds * 1e6 / Double(2 * count), "busy_seconds": (await journal.busy).components.seconds])
    case "journal-replay":
        // The journaling work of a finished restore, on its own: the run, each table's emitted
        // steps and every state change of its part steps are written to a new journal at PATH
        // in the restore's own commits (a download's `started` and `done` with its attach's
        // `started`; the attach's `done` held for the next write; a drop's `started`, `done`),
        // one after the other, with nothing else running.
        let rest = Array(arguments.dropFirst())
        guard rest.count == 2 else { fail("usage: journal-replay RESTORED_JOURNAL PATH") }
        for suffix in ["", "-wal", "-shm", ".lock"] { try? FileManager.default.removeItem(atPath: rest[1] + suffix) }
        let source = try Journal(path: rest[0], readOnly: true)
        guard let restored = try await source.runs().first else { fail("no run in \(rest[0])") }
        let plans = try await source.events(restored.id, kind: .planTable)
        var tables: [(plan: JournalEvent, steps: [JournalEvent])] = []
        for plan in plans {
            tables.append((plan, try await source.events(restored.id, database: plan.database, table: plan.table)
                .filter { $0.kind != .planTable }))
        }
        func fresh(_ event: JournalEvent) -> NewEvent {
            NewEvent(kind: event.kind, database: event.database, table: event.table, part: event.part, disk: event.disk,
                     bytes: event.bytes, identity: event.identity, expectedCount: event.expectedCount,
                     sequence: event.sequence, detail: event.detail)
        }
        let journal = try Journal(path: rest[1])
        let clock = ContinuousClock()
        let started = clock.now
        let run = try await journal.createRun(backup: restored.backup, source: restored.source, options: restored.options,
                                              events: plans.map(fresh))
        let planIDs = try await journal.events(run, kind: .planTable).map(\.id)
        var transitions = 0
        var emitting = Duration.zero
        for (index, table) in tables.enumerated() {
            let planned = clock.now
            try await journal.transition(planIDs[index], to: .started)
            let ids = try await journal.completePlanTable(planIDs[index], run: run, emitting: table.steps.map(fresh),
                                                          detail: "\(table.steps.count) event(s)")
            emitting += clock.now - planned
            transitions += 2
            var pendingDownload: Int64?
            for (id, step) in zip(ids, table.steps) {
                switch step.kind {
                case .downloadPart:
                    // Held while fetching; the restore commits it before the rename into
                    // detached/ unless a commit took it along (here: its attach's `started`).
                    journal.hold(id, to: .started, countAttempt: true)
                    journal.hold(id, to: .done, detail: "\(step.bytes) bytes", path: step.path)
                    pendingDownload = id
                case .attachPart:
                    guard pendingDownload != nil else { continue }
                    try await journal.transition(id, to: .started, countAttempt: true)
                    if step.identity != nil {
                        journal.hold(id, to: .done, detail: "attached", newPart: step.newPart)
                    } else {
                        try await journal.transition(id, to: .done, detail: "attached", newPart: step.newPart)
                    }
                    pendingDownload = nil
                default:
                    try await journal.transition(id, to: .started, countAttempt: true)
                    try await journal.transition(id, to: .done)
                }
                transitions += 2
            }
        }
        try await journal.setRunState(run, .done)
        let elapsed = clock.now - started
        func seconds(_ duration: Duration) -> Double {
            Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        }
        // `emitting_seconds`: the tables' plan-table steps, their steps inserted; the rest is
        // the part steps' state changes.
        report(["benchmark": "journal-replay", "steps": tables.reduce(0) { $0 + $1.steps.count }, "transitions": transitions,
                "seconds": seconds(elapsed), "emitting_seconds": seconds(emitting)])
    case "s3-dates":
        // S3 listings parse one LastModified per object: the positional parser against
        // Foundation's ISO8601DateFormatter (set up per call, as the client once did).
        let count = Int(arguments.dropFirst().first ?? "") ?? 100_000
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let texts: [String] = (0..<count).map { (i: Int) -> String in
            let date = "2026-" + two(1 + i % 12) + "-" + two(1 + i % 28)
            let time = two(i % 24) + ":" + two(i % 60) + ":" + two((i / 60) % 60)
            return date + "T" + time + "." + String(100 + i % 900) + "Z"
        }
        var sink = 0.0
        let positional = try await timed { for text in texts { sink += parseDate(text)?.timeIntervalSince1970 ?? 0 } }
        let foundation = try await timed {
            for text in texts {
                let formatter = ISO8601DateFormatter()
                formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
                sink -= formatter.date(from: text)?.timeIntervalSince1970 ?? 0
            }
        }
        report(["benchmark": "s3-dates", "dates": count, "positional_seconds": positional, "foundation_seconds": foundation,
                "positional_us_per_date": positional / Double(count) * 1e6, "foundation_us_per_date": foundation / Double(count) * 1e6,
                "ratio_positional_over_foundation": positional / foundation, "checksum_zero": abs(sink) < 1])
    case "pipeline":
        // EVENTS download/attach events of one table journaled (in chunks), then read back
        // through the restore's stages (a paged journal stream, pairs, a concurrent ordered map
        // of width 8) or, as the baseline, all at once as a list. Prints the peak RSS after the
        // journal was written and after the read: the difference is what the read cost.
        let rest = Array(arguments.dropFirst())
        guard rest.count == 3, let count = Int(rest[0]), ["stream", "all"].contains(rest[2]) else {
            fail("usage: pipeline EVENTS PATH stream|all")
        }
        for suffix in ["", "-wal", "-shm", ".lock"] { try? FileManager.default.removeItem(atPath: rest[1] + suffix) }
        let journal = try Journal(path: rest[1])
        let run = try await journal.createRun(backup: "b", source: "local", options: "{}")
        for chunk in stride(from: 0, to: count, by: 10_000) {
            try await journal.addEvents(run, (chunk..<min(count, chunk + 10_000)).map {
                NewEvent(kind: $0 % 2 == 0 ? .downloadPart : .attachPart, database: "db", table: "t",
                         part: "all_\($0 / 2)_\($0 / 2)_0", bytes: 1000, identity: String(repeating: "a", count: 32),
                         sequence: $0)
            })
        }
        let written = maxRSS()
        let clock = ContinuousClock()
        let started = clock.now
        var seen = 0
        var bytes: Int64 = 0
        if rest[2] == "stream" {
            let pairs = BringPairs(events: JournalEventStream(journal: journal, run: run, database: "db", table: "t",
                                                                       kinds: [.downloadPart, .attachPart]))
            for try await (pair, size) in pairs.orderedMap(width: 8, { pair in (pair, pair.first.bytes) }) {
                seen += pair.attach.kind == .attachPart ? 2 : 0
                bytes += size
            }
        } else {
            for event in try await journal.events(run, database: "db", table: "t") {
                seen += 1
                bytes += event.bytes / 2
            }
        }
        let elapsed = clock.now - started
        guard seen == count else { fail("read \(seen) of \(count) events") }
        report(["benchmark": "pipeline", "mode": rest[2], "events": count, "bytes": bytes,
                "seconds": Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18,
                "peak_rss_after_write": written, "peak_rss_after_read": maxRSS()])
    case "report-journal":
        let rest = Array(arguments.dropFirst())
        guard rest.count == 4, let steps = Int(rest[0]), let tables = Int(rest[1]), tables > 0, steps / tables >= 4 else {
            fail("usage: report-journal STEPS TABLES PATH HTML (at least 4 steps per table)")
        }
        try await benchReportJournal(steps: steps, tables: tables, path: rest[2], html: rest[3])
    case "s3-delete":
        let rest = Array(arguments.dropFirst())
        guard rest.count == 1 else { fail("usage: s3-delete KEY") }
        try await s3FromEnvironment().delete(rest[0])
    default:
        fail("usage: inplace-bench sqlite-commits|s3-get|s3-put|s3-delete ...")
    }
} catch {
    fail("\(error)")
}
