import Foundation
import Testing

@testable import InplaceCore

/// Builds ustar archives byte by byte, so that tests can make the malformed and malicious
/// archives no well-behaved writer produces (`..`, absolute paths, links, truncation).
struct TarBuilder {
    enum EntryType: UInt8 {
        case file = 0x30, hardLink = 0x31, symbolicLink = 0x32, directory = 0x35
    }

    private(set) var bytes: [UInt8] = []

    mutating func add(_ name: String, _ content: [UInt8] = [], type: EntryType = .file, link: String = "") {
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at offset: Int, width: Int) {
            for (index, byte) in text.utf8.prefix(width).enumerated() { header[offset + index] = byte }
        }
        func octal(_ value: Int, at offset: Int, width: Int) {
            put(String(repeating: "0", count: max(0, width - 1 - String(value, radix: 8).count)) + String(value, radix: 8),
                at: offset, width: width - 1)
        }
        put(name, at: 0, width: 100)
        octal(0o644, at: 100, width: 8)
        octal(0, at: 108, width: 8)
        octal(0, at: 116, width: 8)
        octal(type == .file ? content.count : 0, at: 124, width: 12)
        octal(1_700_000_000, at: 136, width: 12)
        header[156] = type.rawValue
        put(link, at: 157, width: 100)
        put("ustar", at: 257, width: 6)
        put("00", at: 263, width: 2)
        for index in 148..<156 { header[index] = 0x20 }
        let sum = header.reduce(0) { $0 + Int($1) }
        octal(sum, at: 148, width: 7)
        header[155] = 0x20
        bytes += header
        if type == .file {
            bytes += content
            bytes += [UInt8](repeating: 0, count: (512 - content.count % 512) % 512)
        }
    }

    func finished() -> [UInt8] { bytes + [UInt8](repeating: 0, count: 1024) }
}

@Suite("Archives: writing, reading and refusing")
struct ArchiveTests {
    private func makePart(_ folder: String, name: String, files: [String: [UInt8]]) throws -> String {
        let part = folder + "/" + name
        for (relative, content) in files {
            let path = part + "/" + relative
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            try Data(content).write(to: URL(fileURLWithPath: path))
        }
        return part
    }

    private func tree(_ folder: String) -> [String: [UInt8]] {
        var result: [String: [UInt8]] = [:]
        for relative in FileSystem.files(under: folder) {
            result[relative] = (try? [UInt8](Data(contentsOf: URL(fileURLWithPath: folder + "/" + relative)))) ?? []
        }
        return result
    }

    @Test("parts written with every compression come back byte-identical", arguments: ArchiveCompression.allCases)
    func roundTrip(compression: ArchiveCompression) throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let random = (0..<300_000).map { _ in UInt8.random(in: 0...255) }
        let files: [String: [UInt8]] = [
            "checksums.txt": Array("checksums".utf8), "data.bin": random, "columns.txt": Array("columns".utf8),
            "p.proj/data.bin": Array(random.prefix(1000)),
        ]
        let a = try makePart(folder.path("src"), name: "all_1_1_0", files: files)
        let b = try makePart(folder.path("src"), name: "all_2_2_0", files: ["count.txt": Array("3".utf8)])
        let archive = folder.path("parts." + compression.fileExtension)
        let size = try ArchiveWriter.write(parts: [("all_1_1_0", a), ("all_2_2_0", b)], to: archive,
                                           compression: compression)
        #expect(size > 0)

        for name in ["out", "one"] {
            try FileManager.default.createDirectory(atPath: folder.path(name), withIntermediateDirectories: true)
        }
        let both = ArchiveExtractor(wanted: ["all_1_1_0", "all_2_2_0"], archiveName: archive)
        let result = try both.extract(file: archive, into: folder.path("out"))
        #expect(Set(result.files["all_1_1_0"] ?? []) == Set(files.keys))
        #expect(tree(folder.path("out/all_1_1_0")) == files)
        #expect(tree(folder.path("out/all_2_2_0")) == ["count.txt": Array("3".utf8)])

        // One part of a several-part archive: the other is skipped, not refused.
        let one = ArchiveExtractor(wanted: ["all_2_2_0"], expected: ["all_1_1_0", "all_2_2_0"], archiveName: archive)
        _ = try one.extract(file: archive, into: folder.path("one"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path("one")) == ["all_2_2_0"])
    }

    @Test("a leading / on entries is stripped, as clickhouse-backup's archives may carry it")
    func stripsLeadingSlash() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        var tar = TarBuilder()
        tar.add("/all_1_1_0/", type: .directory)
        tar.add("/all_1_1_0/data.bin", [1, 2, 3])
        try Data(tar.finished()).write(to: URL(fileURLWithPath: folder.path("a.tar")))
        try FileManager.default.createDirectory(atPath: folder.path("out"), withIntermediateDirectories: true)
        _ = try ArchiveExtractor(wanted: ["all_1_1_0"], archiveName: "a.tar").extract(file: folder.path("a.tar"),
                                                                                   into: folder.path("out"))
        #expect(tree(folder.path("out/all_1_1_0")) == ["data.bin": [1, 2, 3]])
    }

    struct BadArchive: Sendable, CustomStringConvertible {
        let description: String
        let kind: ArchiveError.Kind
        let build: @Sendable () -> [UInt8]
    }

    static let badArchives: [BadArchive] = [
        BadArchive(description: "an entry with ..", kind: .unsafePath) {
            var tar = TarBuilder()
            tar.add("all_1_1_0/../../escaped.txt", [1])
            return tar.finished()
        },
        BadArchive(description: "an absolute path to another place", kind: .unexpectedPart) {
            var tar = TarBuilder()
            tar.add("/tmp/escaped.txt", [1])
            return tar.finished()
        },
        BadArchive(description: "a symbolic link pointing outside", kind: .unsupportedEntry) {
            var tar = TarBuilder()
            tar.add("all_1_1_0/link", type: .symbolicLink, link: "/etc")
            tar.add("all_1_1_0/link/passwd", [1])
            return tar.finished()
        },
        BadArchive(description: "a hard link", kind: .unsupportedEntry) {
            var tar = TarBuilder()
            tar.add("all_1_1_0/h", type: .hardLink, link: "/etc/passwd")
            return tar.finished()
        },
        BadArchive(description: "an entry of another part", kind: .unexpectedPart) {
            var tar = TarBuilder()
            tar.add("all_1_1_0/data.bin", [1])
            tar.add("all_9_9_0/data.bin", [2])
            return tar.finished()
        },
        BadArchive(description: "a truncated archive", kind: .corrupt) {
            var tar = TarBuilder()
            tar.add("all_1_1_0/data.bin", [UInt8](repeating: 7, count: 5000))
            return Array(tar.finished().prefix(2000))
        },
        BadArchive(description: "bytes that are not an archive", kind: .corrupt) {
            Array("this is not a tar archive at all, just text".utf8) + [UInt8](repeating: 1, count: 600)
        },
        BadArchive(description: "an archive without the wanted part", kind: .missingPart) {
            var tar = TarBuilder()
            tar.add("all_2_2_0/data.bin", [1])
            return tar.finished()
        },
    ]

    @Test("unsafe or broken archives are refused and nothing lands outside the target", arguments: badArchives)
    func refuses(bad: BadArchive) throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let archivePath = folder.path("bad.tar")
        try Data(bad.build()).write(to: URL(fileURLWithPath: archivePath))
        let target = folder.path("stage/target")
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        let extractor = ArchiveExtractor(wanted: ["all_1_1_0"], expected: ["all_1_1_0", "all_2_2_0"],
                                         archiveName: "bad.tar")
        do {
            _ = try extractor.extract(file: archivePath, into: target)
            Issue.record("\(bad) was accepted")
        } catch {
            #expect(error.kind == bad.kind, "\(error)")
            #expect(error.description.contains("bad.tar"))
        }
        // Nothing beside the target, and nothing in the usual escape destinations.
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path("stage")) == ["target"])
        #expect(!FileManager.default.fileExists(atPath: folder.path("escaped.txt")))
        #expect(!FileManager.default.fileExists(atPath: "/tmp/escaped.txt"))
    }

    @Test("the byte pipe hands chunks over in order and bounds what waits in it")
    func pipeBoundsMemory() async throws {
        let pipe = BytePipe(capacity: 64 * 1024)
        let reader = Task.detached { () -> (Int, UInt8) in
            var total = 0
            var last: UInt8 = 0
            while true {
                let chunk = try pipe.read()
                if chunk.isEmpty { break }
                total += chunk.count
                last = chunk[chunk.count - 1]
                usleep(100)
            }
            return (total, last)
        }
        let writer = Task.detached {
            for index in 0..<200 {
                let chunk = [UInt8](repeating: UInt8(index % 256), count: 16 * 1024)
                try chunk.withUnsafeBytes { try pipe.write($0) }
            }
            pipe.finish(error: nil)
        }
        try await writer.value
        let (total, last) = try await reader.value
        #expect(total == 200 * 16 * 1024)
        #expect(last == 199)
    }
}

@Suite("Backup names and checksums")
struct BackupNamesTests {
    @Test("CRC-64/ECMA matches Go's check value")
    func crcCheckValue() {
        #expect(CRC64.checksum(Array("123456789".utf8)) == 0x995D_C9BB_DF19_39FA)
        #expect(CRC64.checksum([]) == 0)
    }

    @Test("names are encoded as clickhouse-backup encodes them, and decode back")
    func encodesNames() {
        #expect(BackupNames.encode("my-db") == "my%2Ddb")
        #expect(BackupNames.encode("events.v2") == "events%2Ev2")
        #expect(BackupNames.encode("a b") == "a%20b")
        #expect(BackupNames.encode("plain_name09") == "plain_name09")
        #expect(BackupNames.encode("ü") == "%C3%BC")
        #expect(BackupNames.encode("x/y;z`") == "x%2Fy%3Bz%60")
        for name in ["my-db", "events.v2", "a b", "ü €", "x/y;z`'\"\n", "~!@#$%^&*()"] {
            #expect(BackupNames.decode(BackupNames.encode(name)) == name)
        }
        #expect(BackupNames.decode("%zz") == nil)
    }
}
