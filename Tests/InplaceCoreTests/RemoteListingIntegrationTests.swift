import Foundation
import Testing

@testable import InplaceCore

@Suite("Listings of the test bed's SeaweedFS, and the remote backup's one shadow listing", .enabled(if: TestBed.shouldRun))
struct RemoteListingIntegrationTests {
    static let oddNames = ["a b/c d.tar", "x&y/<z>.json", "quote\"s'/100%.bin", "ü€😀/é.tar", "my%2Ddb/t%2Ev2/x", "plain"]

    @Test("odd keys come back from a real listing, one object a page, as put: key, size, ETag, LastModified")
    func realListingWithOddKeys() async throws {
        let s3 = try TestBed.load().s3()
        let prefix = "it/\(TestBed.uniqueName("list"))/"
        var sizes: [String: Int64] = [:]
        for (index, name) in Self.oddNames.enumerated() {
            let bytes = [UInt8](repeating: UInt8(index), count: 10 + index)
            try await s3.put(prefix + name, bytes: bytes)
            sizes[prefix + name] = Int64(bytes.count)
        }
        let started = Date()
        var listed: [S3ObjectInfo] = []
        var pages = 0
        try await s3.list(prefix: prefix, pageSize: 1) { page in
            pages += 1
            listed += page.objects
        }
        #expect(pages == Self.oddNames.count)
        #expect(Dictionary(uniqueKeysWithValues: listed.map { ($0.key, $0.size) }) == sizes)
        for object in listed {
            #expect(object.etag == (try await s3.head(object.key)).etag, "\(object.key)")
            let modified = try #require(object.lastModified, "\(object.key)")
            #expect(abs(modified.timeIntervalSince(started)) < 600, "\(object.key): \(modified)")
        }
        // The raw answer, read as Foundation's XMLParser reads it.
        let raw = try await s3.send(method: "GET", key: "", query: [("list-type", "2"), ("prefix", prefix)]).body
        let answer = try #require(S3ListingParser.parse(raw))
        let reference = try S3ListingParserTests.reference(String(decoding: raw, as: UTF8.self))
        #expect(answer.page.objects == reference.page.objects)
        #expect(answer.page.objects.count == Self.oddNames.count)
        for object in listed { try await s3.delete(object.key) }
    }

    @Test("tables checked at once share one listing of the shadow folder, and each sees its own missing archives")
    func oneShadowListingForConcurrentTables() async throws {
        let bed = try TestBed.load()
        let proxy = try FaultProxy(upstream: try bed.value("S3_ENDPOINT"))
        defer { proxy.stop() }
        var config = try bed.s3Config()
        config.endpoint = proxy.endpoint
        let store = RemoteBackupStore(s3: S3Client(config: config), path: "it/\(TestBed.uniqueName("shadow"))")
        let name = "b", database = "db", tableCount = 12
        let titles = (0..<tableCount).map { "t\($0)" }
        for table in titles {
            let parts = (1...3).map { "all_\($0)_\($0)_0" }
            let json = """
                {"database": "\(database)", "table": "\(table)", "query": "CREATE TABLE x (a UInt8) ENGINE = MergeTree ORDER BY a",
                 "parts": {"default": [\(parts.map { "{\"name\": \"\($0)\"}" }.joined(separator: ", "))]},
                 "files": {"default": [\(parts.map { "\"default_\($0).tar\"" }.joined(separator: ", "))]}}
                """
            try await store.s3.put(store.tableMetadataKey(name, database: database, table: table), bytes: Array(json.utf8))
            // t5 lacks the archive of its second part.
            for part in parts where !(table == "t5" && part == "all_2_2_0") {
                try await store.s3.put(store.shadowPrefix(name, database: database, table: table) + "default_\(part).tar",
                                       bytes: Array("tar".utf8))
            }
        }
        let metadata = """
            {"backup_name": "\(name)", "disks": {"default": "/var/lib/clickhouse/"}, "version": "2.6.30", "tags": "regular", "creation_date": "2026-12-03T09:00:00Z",
             "tables": [\(titles.map { "{\"database\": \"\(database)\", \"table\": \"\($0)\"}" }.joined(separator: ", "))],
             "data_format": "tar"}
            """
        try await store.s3.put(store.metadataKey(name), bytes: Array(metadata.utf8))
        try await proxy.reset()

        let source = RemoteBackupSource(name: name, store: store)
        _ = try await source.metadata()
        let missing = try await concurrentMap(titles, width: 8) { table in
            try await source.missingParts(try await source.tableMetadata(database: database, table: table))
        }
        #expect(missing == titles.map { $0 == "t5" ? ["all_2_2_0"] : [] })
        // A listing is the one GET of the bucket itself (the proxy logs paths without their query).
        let bucket = "/\(config.bucket)/"
        let listings = try await proxy.stats().log.filter { $0.method == "GET" && $0.path == bucket }
        #expect(listings.count == 1, "\(listings.map(\.path))")

        for object in try await store.s3.listAll(prefix: store.prefix).objects { try await store.s3.delete(object.key) }
    }
}
