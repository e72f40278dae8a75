import Foundation
import Testing

@testable import InplaceCore

@Suite("Parsing and encoding, on plain values")
struct ParsingTests {
    @Test("a current ClickHouse exception text gives code, name and message")
    func parsesCurrentException() {
        let parsed = ClickHouseExceptionText(
            "Code: 60. DB::Exception: Table db.t does not exist. Maybe you meant db.u?. (UNKNOWN_TABLE) (version 26.9.1.1)\n")
        #expect(parsed.code == 60)
        #expect(parsed.name == "UNKNOWN_TABLE")
        #expect(parsed.message == "Table db.t does not exist. Maybe you meant db.u?.")
    }

    @Test("an 18.16 exception text gives its code and message")
    func parsesOldException() {
        let parsed = ClickHouseExceptionText(
            "Code: 47, e.displayText() = DB::Exception: Unknown identifier: x, e.what() = DB::Exception\n")
        #expect(parsed.code == 47)
        #expect(parsed.name == nil)
        #expect(parsed.message.hasPrefix("Unknown identifier: x"))
    }

    @Test("TSV fields are unescaped and arrays of strings are read")
    func readsTSV() throws {
        let line = Array("a\\tb\t42\t['/x/y/','it\\\\'s']\t\\\\n".utf8)
        let row = line.withUnsafeBytes { TSVRow(line: $0, number: 7) }
        #expect(row.fields.count == 4)
        #expect(try row.string(0) == "a\tb")
        #expect(try row.int64(1) == 42)
        #expect(try row.stringArray(2) == ["/x/y/", "it's"])
        #expect(try row.string(3) == "\\n")
        #expect(throws: ClickHouseError.self) { try row.int64(0) }
        #expect(throws: ClickHouseError.self) { try row.string(9) }
    }

    @Test("lines split across chunk boundaries come out whole and in order")
    func splitsLines() throws {
        let text = Array("first\nsecond line\n\nthird".utf8)
        for chunkSize in 1...text.count {
            var splitter = LineSplitter()
            var lines: [String] = []
            for start in stride(from: 0, to: text.count, by: chunkSize) {
                let chunk = Array(text[start..<min(start + chunkSize, text.count)])
                try chunk.withUnsafeBytes { bytes in
                    try splitter.feed(bytes) { lines.append(String(decoding: $0, as: UTF8.self)) }
                }
            }
            try splitter.finish { lines.append(String(decoding: $0, as: UTF8.self)) }
            #expect(lines == ["first", "second line", "", "third"], "chunk size \(chunkSize)")
        }
    }

    @Test("an exception written after the rows started is recognised")
    func recognisesStreamedException() {
        func check(_ text: String) -> Bool { Array(text.utf8).withUnsafeBytes { StreamedException.isStart($0) } }
        #expect(check("Code: 241. DB::Exception: Memory limit exceeded"))
        #expect(check("__exception__"))
        #expect(!check("Code: x"))
        #expect(!check("{\"name\":\"Code: 1\"}"))
    }

    @Test("versions compare by number, not by text")
    func comparesVersions() throws {
        let v26 = try #require(ClickHouseVersion("26.9.1.1"))
        let v18 = try #require(ClickHouseVersion("18.16.1"))
        let lts = try #require(ClickHouseVersion("24.3.1.2672-lts"))
        #expect(v18 < ClickHouseVersion.minimumSupported)
        #expect(v26 >= ClickHouseVersion.minimumSupported)
        #expect(lts > ClickHouseVersion("23.10")!)
        #expect(ClickHouseVersion("23.8") == ClickHouseVersion("23.8.0.0"))
        // CHECK TABLE ... PART, run on every attach, first shipped in 23.10.
        #expect(ClickHouseVersion("23.9.6.20")! < ClickHouseVersion.minimumSupported)
        #expect(ClickHouseVersion("23.10.1.1")! >= ClickHouseVersion.minimumSupported)
        #expect(ClickHouseVersion("garbage") == nil)
    }

    @Test("names are quoted so that no character can end the identifier or the literal")
    func quotesNames() {
        #expect(ClickHouseSQL.identifier("a`b") == "`a\\`b`")
        #expect(ClickHouseSQL.qualified("d;b", "t\nx") == "`d;b`.`t\\nx`")
        #expect(ClickHouseSQL.string("it's \\ ok") == "'it\\'s \\\\ ok'")
        // A quote followed by a combining mark is one Character, but still a quote to ClickHouse.
        #expect(ClickHouseSQL.string("x'\u{301}; DROP TABLE t; --") == "'x\\'\u{301}; DROP TABLE t; --'")
        #expect(ClickHouseSQL.identifier("a`\u{301}b") == "`a\\`\u{301}b`")
    }

    @Test("S3 URLs: path style and virtual-hosted, keys encoded once, query sorted")
    func buildsS3URLs() {
        var config = S3Config(endpoint: "http://127.0.0.1:9000", bucket: "b", forcePathStyle: true)
        #expect(config.url(forKey: "a b/c%2Dd/ü") == "http://127.0.0.1:9000/b/a%20b/c%252Dd/%C3%BC")
        #expect(config.url(forKey: "", query: [("prefix", "x/y"), ("list-type", "2")])
                == "http://127.0.0.1:9000/b/?list-type=2&prefix=x%2Fy")
        config.forcePathStyle = false
        #expect(config.url(forKey: "k") == "http://b.127.0.0.1:9000/k")
        config.endpoint = ""
        config.region = "eu-west-1"
        #expect(config.url(forKey: "k") == "https://b.s3.eu-west-1.amazonaws.com/k")
        config.endpoint = "minio.local:9000"
        config.disableSSL = true
        #expect(config.url(forKey: "k", query: [("uploads", "")]) == "http://b.minio.local:9000/k?uploads=")
    }

    @Test("backoff grows, stays within its bounds and is jittered")
    func backoffBounds() {
        let policy = RetryPolicy(maxAttempts: 10, baseDelay: .milliseconds(100), maxDelay: .seconds(2))
        for attempt in 1...8 {
            let ceiling = min(Duration.seconds(2), .milliseconds(100) * (1 << (attempt - 1)))
            for _ in 0..<50 {
                let delay = policy.delay(afterAttempt: attempt)
                #expect(delay >= ceiling / 2 && delay <= ceiling)
            }
        }
        let samples = Set((0..<20).map { _ in policy.delay(afterAttempt: 4) })
        #expect(samples.count > 1)
    }

    @Test("retries stop at the first error that retrying cannot fix")
    func retriesOnlyRetryable() async throws {
        struct Temporary: Error {}
        struct Permanent: Error {}
        let policy = RetryPolicy(maxAttempts: 5, baseDelay: .milliseconds(1), maxDelay: .milliseconds(2))
        var calls = 0
        await #expect(throws: Permanent.self) {
            try await policy.run(isRetryable: { $0 is Temporary }) { attempt in
                calls += 1
                if attempt < 3 { throw Temporary() }
                throw Permanent()
            }
        }
        #expect(calls == 3)
        calls = 0
        await #expect(throws: Temporary.self) {
            try await policy.run(isRetryable: { $0 is Temporary }) { _ in
                calls += 1
                throw Temporary()
            }
        }
        #expect(calls == 5)
    }

    @Test("URLs in errors lose credentials and signatures")
    func redactsURLs() {
        let redacted = HTTPError.redact("http://user:pw@host:1/p?password=hunter2&X-Amz-Signature=abc&prefix=x")
        #expect(!redacted.contains("hunter2"))
        #expect(!redacted.contains("pw@"))
        #expect(!redacted.contains("abc"))
        #expect(redacted.contains("prefix=x"))
    }
}
