import Foundation
import InplaceCore
import Testing

@Suite("S3 against the test bed's SeaweedFS", .enabled(if: TestBed.shouldRun))
struct S3IntegrationTests {
    private func randomFile(_ path: String, size: Int) throws -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8](repeating: 0, count: size)
        bytes.withUnsafeMutableBytes { buffer in
            let words = buffer.bindMemory(to: UInt64.self)
            for index in words.indices { words[index] = generator.next() }
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return bytes
    }

    @Test("a 64 MiB file goes up in parts and comes back byte-identical, to a file and to a handler")
    func roundTrip64MiB() async throws {
        let s3 = try TestBed.load().s3()
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let original = try randomFile(folder.path("up.bin"), size: 64 << 20)
        let key = "it/\(TestBed.uniqueName("big"))/object.bin"
        try await s3.put(key, file: folder.path("up.bin"))
        let info = try await s3.head(key)
        #expect(info.size == Int64(original.count))
        #expect(info.etag.hasSuffix("-4"), "a multipart ETag names its part count: \(info.etag)")

        try await s3.get(key, to: .file(path: folder.path("down.bin")))
        let downloaded = try [UInt8](Data(contentsOf: URL(fileURLWithPath: folder.path("down.bin"))))
        #expect(downloaded == original)

        let collected = Collector()
        try await s3.get(key, to: .handler { chunk in collected.append(chunk) })
        #expect(collected.bytes == original)
        try await s3.delete(key)
        #expect(try await s3.exists(key) == false)
    }

    @Test("small objects with odd keys, ranged GETs, HEAD and DELETE")
    func smallObjectsAndRanges() async throws {
        let s3 = try TestBed.load().s3()
        let prefix = "it/\(TestBed.uniqueName("odd"))/"
        let keys = [prefix + "my%2Ddb/events%2Ev2/default_all_1_1_0.tar", prefix + "a b/ü/€ (1).json", prefix + "x=y&z"]
        let payload = Array("0123456789abcdefghij".utf8)
        for key in keys {
            try await s3.put(key, bytes: payload)
            #expect(try await s3.getBytes(key) == payload, "\(key)")
        }
        let listed = try await s3.listAll(prefix: prefix).objects.map(\.key)
        #expect(Set(listed) == Set(keys))

        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let info = try await s3.get(keys[0], range: 5...9, to: .file(path: folder.path("range")))
        #expect(try Data(contentsOf: URL(fileURLWithPath: folder.path("range"))) == Data("56789".utf8))
        #expect(info.size == 20)

        let folders = try await s3.listAll(prefix: prefix, delimiter: "/").commonPrefixes
        #expect(Set(folders) == [prefix + "my%2Ddb/", prefix + "a b/"])
        for key in keys { try await s3.delete(key) }
        #expect(try await s3.listAll(prefix: prefix).objects.isEmpty)
    }

    @Test("an empty object creates an empty file")
    func emptyObject() async throws {
        let s3 = try TestBed.load().s3()
        let key = "it/\(TestBed.uniqueName("empty"))"
        try await s3.put(key, bytes: [])
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        try await s3.get(key, to: .file(path: folder.path("e")))
        #expect(try Data(contentsOf: URL(fileURLWithPath: folder.path("e"))).isEmpty)
        try await s3.delete(key)
    }

    @Test("LIST over 2,500 keys pages through continuation tokens and misses none")
    func listPaginates() async throws {
        let s3 = try TestBed.load().s3()
        let prefix = "it/\(TestBed.uniqueName("list"))/"
        let keys = (0..<2500).map { prefix + String(format: "k%05d", $0) }
        _ = try await concurrentMap(keys, width: 16) { try await s3.put($0, bytes: Array($0.utf8)) }
        var pages: [Int] = []
        var seen: [String] = []
        try await s3.list(prefix: prefix, pageSize: 1000) { page in
            pages.append(page.objects.count)
            seen += page.objects.map(\.key)
        }
        #expect(pages == [1000, 1000, 500])
        #expect(seen == keys)
        _ = try await concurrentMap(keys, width: 16) { try await s3.delete($0) }
    }

    @Test("a wrong secret is a 403 that is not retried and does not show the secret")
    func wrongSecret() async throws {
        let bed = try TestBed.load()
        let wrong = "WrongSecret\(UUID().uuidString)"
        let s3 = try bed.s3(secretKey: wrong)
        do {
            _ = try await s3.getBytes("it/anything")
            Issue.record("a wrong secret was accepted")
        } catch {
            #expect(error.kind == .accessDenied, "\(error)")
            #expect(error.httpStatus == 403)
            #expect(error.code == "SignatureDoesNotMatch" || error.code == "AccessDenied" || error.code == "InvalidAccessKeyId")
            #expect(error.attempts == 1)
            #expect(!error.isRetryable)
            let text = "\(error) \(String(reflecting: error))"
            #expect(!text.contains(wrong))
            #expect(!text.contains(bed.s3SecretKey))
            #expect(text.contains("s3.secret_key"))
        }
    }

    @Test("a missing key is a 404 NoSuchKey, not retried")
    func missingKey() async throws {
        let s3 = try TestBed.load().s3()
        do {
            _ = try await s3.getBytes("it/\(TestBed.uniqueName("missing"))")
            Issue.record("a missing key was found")
        } catch {
            #expect(error.kind == .notFound)
            #expect(error.code == "NoSuchKey")
            #expect(error.attempts == 1, "a 404 is not retried")
        }
        #expect(try await s3.exists("it/\(TestBed.uniqueName("missing"))") == false)
    }

    @Test("a missing bucket is NoSuchBucket and names the setting to check")
    func missingBucket() async throws {
        var config = try TestBed.load().s3Config()
        config.bucket = "no-such-bucket-\(UInt32.random(in: 0...UInt32.max))"
        do {
            _ = try await S3Client(config: config).getBytes("x")
            Issue.record("a missing bucket answered")
        } catch {
            #expect(error.kind == .notFound)
            #expect(error.code == "NoSuchBucket", "\(error)")
            #expect(error.description.contains("s3.bucket"))
        }
    }

    @Test("an unreachable endpoint is retried with backoff, then reported with the attempt count")
    func unreachableEndpoint() async throws {
        var config = try TestBed.load().s3Config()
        config.endpoint = "http://127.0.0.1:1"
        config.retry = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(20), maxDelay: .milliseconds(40))
        do {
            _ = try await S3Client(config: config).getBytes("x")
            Issue.record("port 1 answered")
        } catch {
            #expect(error.kind == .transport(.couldNotConnect))
            #expect(error.attempts == 3)
        }
    }
}

final class Collector: @unchecked Sendable {
    var bytes: [UInt8] = []
    func append(_ chunk: UnsafeRawBufferPointer) { bytes.append(contentsOf: chunk) }
}
