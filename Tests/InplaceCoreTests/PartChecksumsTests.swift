import Foundation
import Testing

@testable import InplaceCore

private func q(_ name: String) -> String { ClickHouseSQL.identifier(name) }

@Suite("hash_of_all_files from checksums.txt")
struct PartChecksumsTests {
    @Test("LZ4: literals, an overlapping match, a long literal run; malformed blocks refused")
    func lz4() {
        // "abcabcabcabcX": 3 literals, a match of 9 at offset 3 (overlapping), 1 literal.
        var out: [UInt8] = []
        let block: [UInt8] = [0x35, 0x61, 0x62, 0x63, 0x03, 0x00, 0x10, 0x58]
        #expect(LZ4Block.decompress(block[...], size: 13, appendingTo: &out))
        #expect(String(decoding: out, as: UTF8.self) == "abcabcabcabcX")
        // 300 literals: length 15 + 255 + 30.
        let literals = [UInt8](repeating: 0x41, count: 300)
        out = []
        #expect(LZ4Block.decompress(([0xf0, 255, 30] + literals)[...], size: 300, appendingTo: &out))
        #expect(out == literals)
        out = []
        #expect(!LZ4Block.decompress(block[...], size: 12, appendingTo: &out), "a size that does not add up")
        out = []
        #expect(!LZ4Block.decompress([0x05, 0x61, 0x09, 0x00][...], size: 10, appendingTo: &out), "an offset before the start")
    }

    @Test("not format 4, truncated, or an unknown method: nil, never a wrong hash")
    func refusals() {
        #expect(PartChecksums.hashOfAllFiles(checksumsFile: Array("checksums format version: 3\n".utf8) + [0]) == nil)
        #expect(PartChecksums.hashOfAllFiles(checksumsFile: Array("checksums format version: 4\n".utf8) + [1, 2, 3]) == nil)
        var zstd = Array("checksums format version: 4\n".utf8) + [UInt8](repeating: 0, count: 16)
        zstd += [0x90, 10, 0, 0, 0, 1, 0, 0, 0, 0]
        #expect(PartChecksums.hashOfAllFiles(checksumsFile: zstd) == nil)
    }

    @Test("equals system.parts' hash_of_all_files over wide and compact parts, many columns, a projection, an empty string column",
          .enabled(if: TestBed.shouldRun))
    func matchesServer() async throws {
        let ch = try TestBed.load().clickHouse()
        let db = TestBed.uniqueName("it_sums")
        try await ch.execute("CREATE DATABASE \(q(db))")
        let shapes = [
            // Compact parts (the default under min_bytes_for_wide_part).
            ("compact", "(d Date, id UInt64, s String) ENGINE = MergeTree PARTITION BY toYYYYMM(d) ORDER BY id",
             "SELECT toDate('2024-01-01') + number % 60, number, toString(number) FROM numbers(5000)"),
            // Wide parts: one file pair per column.
            ("wide", """
                (d Date, id UInt64, s String, n Nullable(Int32), a Array(String), m Map(String, UInt8), l LowCardinality(String))
                ENGINE = MergeTree PARTITION BY toYYYYMM(d) ORDER BY id SETTINGS min_bytes_for_wide_part = 0
                """,
             "SELECT toDate('2024-01-01') + number % 40, number, repeat('x', number % 50), if(number % 3 = 0, NULL, toInt32(number)), [toString(number)], map('k', toUInt8(number % 200)), toString(number % 7) FROM numbers(20000)"),
            ("projection", """
                (d Date, id UInt64, v Float64, PROJECTION by_v (SELECT id, v ORDER BY v)) ENGINE = MergeTree PARTITION BY toYYYYMM(d) ORDER BY id
                SETTINGS min_bytes_for_wide_part = 0
                """,
             "SELECT toDate('2024-03-01') + number % 20, number, number / 7 FROM numbers(3000)"),
            ("replacing", "(k UInt32, v String, ver UInt64) ENGINE = ReplacingMergeTree(ver) ORDER BY k",
             "SELECT number % 100, '', number FROM numbers(1000)"),
        ]
        var compared = 0
        for (table, definition, insert) in shapes {
            try await ch.execute("CREATE TABLE \(q(db)).\(q(table)) \(definition)")
            try await ch.execute("SYSTEM STOP MERGES \(q(db)).\(q(table))")
            try await ch.execute("INSERT INTO \(q(db)).\(q(table)) \(insert)")
            try await ch.execute("INSERT INTO \(q(db)).\(q(table)) \(insert) LIMIT 7")
            let rows = try await ch.execute(
                "SELECT name, lower(hash_of_all_files), path, part_type FROM system.parts WHERE database = {db:String} AND table = {t:String} AND active",
                parameters: ["db": db, "t": table])
            let parts = rows.split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
            #expect(parts.count >= 2, "\(table): \(rows)")
            for fields in parts {
                let path = fields[2].hasSuffix("/") ? fields[2] : fields[2] + "/"
                let file = try FileSystem.readFile(path + "checksums.txt")
                #expect(PartChecksums.hashOfAllFiles(checksumsFile: file) == fields[1], "\(table) \(fields[0]) (\(fields[3]))")
                // The same list as a server with the default codec writes it (LZ4, by the real
                // liblz4), and stored uncompressed: the file changes, the hash does not.
                let header = Array("checksums format version: 4\n".utf8)
                let payload = try #require(PartChecksums.decompress(file[header.count...]))
                let lz4 = try #require(LZ4Compressor.compress(payload), "liblz4.so.1 (Debian's liblz4-1) is missing")
                for (method, body) in [(UInt8(0x82), lz4), (0x02, payload)] {
                    let block = header + Self.block(method: method, body: body, size: payload.count)
                    #expect(block != file)
                    #expect(PartChecksums.hashOfAllFiles(checksumsFile: block) == fields[1], "\(table) \(fields[0]) method \(method)")
                }
                compared += 1
            }
        }
        #expect(compared == 10, "two parts of compact, wide, projection; 202401/202402 splits make more")
        try await ch.execute("DROP DATABASE \(q(db)) SYNC")
    }
}

extension PartChecksumsTests {
    /// A ClickHouse compressed block: 16 bytes of block checksum (not read), method, sizes, body.
    static func block(method: UInt8, body: [UInt8], size: Int) -> [UInt8] {
        func le32(_ value: Int) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
        return [UInt8](repeating: 0xab, count: 16) + [method] + le32(body.count + 9) + le32(size) + body
    }
}

/// The real LZ4 library (Debian's liblz4-1, which apt and systemd need), for blocks as a
/// server writes them: LZ4_compress_default.
enum LZ4Compressor {
    private typealias Compress = @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, Int32) -> Int32

    static func compress(_ input: [UInt8]) -> [UInt8]? {
        guard let library = dlopen("liblz4.so.1", RTLD_NOW), let symbol = dlsym(library, "LZ4_compress_default") else { return nil }
        let compress = unsafeBitCast(symbol, to: Compress.self)
        var output = [UInt8](repeating: 0, count: input.count + input.count / 255 + 16)
        let written = input.withUnsafeBytes { source in
            output.withUnsafeMutableBytes { target in
                compress(source.baseAddress, target.baseAddress, Int32(source.count), Int32(target.count))
            }
        }
        guard written > 0 else { return nil }
        return Array(output.prefix(Int(written)))
    }
}
