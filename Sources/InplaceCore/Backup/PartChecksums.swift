#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A part's `hash_of_all_files` computed from its checksums.txt, the way ClickHouse computes the
/// column of system.parts: SipHash-2-4 (ClickHouse's 128-bit variant, keys 0) over the files in
/// name order, each as its name's length (8 bytes, little-endian), the name, and the file's
/// 16-byte hash. Lets the restore confirm an attached part's content from the file on disk,
/// without a query per part.
///
/// checksums.txt in format 4 (every server since 2016): the line `checksums format version: 4`,
/// then ClickHouse compressed blocks (16-byte block checksum, method byte, compressed size with
/// the 9-byte header, uncompressed size, payload) holding: the file count, then per file its
/// name, size, hash, whether compressed, and if so the uncompressed size and hash. Blocks in
/// LZ4 (the server's default codec), ZSTD (chdb's, and a server whose `compression` config says
/// so: decoded by the libzstd that libcurl already loads) or stored uncompressed are read;
/// anything else (another method or format version, no libzstd, a short or malformed file)
/// gives nil, and the caller asks the server instead.
public enum PartChecksums {
    public struct File: Sendable, Equatable {
        public var name: String
        public var size: UInt64
        /// The file's hash as stored: 16 bytes, low half first.
        public var hash: [UInt8]
    }

    /// Lower-case hex, as `lower(hex(hash_of_all_files))` of system.parts prints it.
    public static func hashOfAllFiles(checksumsFile bytes: [UInt8]) -> String? {
        guard let files = files(checksumsFile: bytes) else { return nil }
        var hash = SipHash128()
        for file in files {
            let name = Array(file.name.utf8)
            hash.update(littleEndian: UInt64(name.count))
            hash.update(name)
            hash.update(file.hash)
        }
        let (low, high) = hash.finish()
        return hex(high) + hex(low)
    }

    /// The files listed, in name order; nil when the file is not one this reader knows.
    public static func files(checksumsFile bytes: [UInt8]) -> [File]? {
        let header = Array("checksums format version: 4\n".utf8)
        guard bytes.count > header.count, bytes.starts(with: header) else { return nil }
        guard let payload = decompress(bytes[header.count...]) else { return nil }
        var reader = Reader(bytes: payload)
        guard let count = reader.varUInt(), count < 1 << 20 else { return nil }
        var files: [File] = []
        files.reserveCapacity(Int(count))
        for _ in 0..<count {
            guard let length = reader.varUInt(), let name = reader.take(Int(clamping: length)),
                  let size = reader.varUInt(), let fileHash = reader.take(16), let compressed = reader.take(1) else { return nil }
            if compressed.first != 0 {
                guard reader.varUInt() != nil, reader.take(16) != nil else { return nil }
            }
            files.append(File(name: String(decoding: name, as: UTF8.self), size: size, hash: Array(fileHash)))
        }
        guard reader.atEnd else { return nil }
        // ClickHouse keeps them in a std::map: byte order of the names.
        files.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        return files
    }

    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// The concatenated payloads of the compressed blocks; nil on a method this reader lacks or
    /// a block that does not add up. Block checksums are not verified: a damaged file gives a
    /// hash that does not match, and the caller falls back to the server.
    static func decompress(_ input: ArraySlice<UInt8>) -> [UInt8]? {
        var output: [UInt8] = []
        var at = input.startIndex
        while at < input.endIndex {
            let header = at + 16
            guard input.endIndex - header >= 9 else { return nil }
            let method = input[header]
            let stored = Int(littleEndian32(input, header + 1))
            let size = Int(littleEndian32(input, header + 5))
            guard stored >= 9, input.endIndex - header >= stored, size <= 1 << 30 else { return nil }
            let block = input[(header + 9)..<(header + stored)]
            switch method {
            case 0x02:
                guard block.count == size else { return nil }
                output.append(contentsOf: block)
            case 0x82:
                guard LZ4Block.decompress(block, size: size, appendingTo: &output) else { return nil }
            case 0x90:
                guard ZSTDLibrary.decompress(block, size: size, appendingTo: &output) else { return nil }
            default:
                return nil
            }
            at = header + stored
        }
        return output
    }

    private static func littleEndian32(_ bytes: ArraySlice<UInt8>, _ at: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[at + $1]) << (8 * UInt32($1)) }
    }

    private struct Reader {
        let bytes: [UInt8]
        var at = 0

        var atEnd: Bool { at == bytes.count }

        mutating func take(_ count: Int) -> ArraySlice<UInt8>? {
            guard count >= 0, bytes.count - at >= count else { return nil }
            defer { at += count }
            return bytes[at..<(at + count)]
        }

        /// ClickHouse's VarUInt: 7 bits a byte, low first, at most 9 bytes.
        mutating func varUInt() -> UInt64? {
            var value: UInt64 = 0
            for shift in stride(from: UInt64(0), to: 63, by: 7) {
                guard at < bytes.count else { return nil }
                let byte = bytes[at]
                at += 1
                value |= UInt64(byte & 0x7f) << shift
                if byte & 0x80 == 0 { return value }
            }
            return nil
        }
    }
}

/// libzstd's one-shot decompression, looked up at run time: libcurl links libzstd, so the
/// library is in the process already; without it, ZSTD blocks are not read (nil above).
enum ZSTDLibrary {
    private typealias Decompress = @convention(c) (UnsafeMutableRawPointer?, Int, UnsafeRawPointer?, Int) -> Int
    private typealias IsError = @convention(c) (Int) -> UInt32

    private static let functions: (Decompress, IsError)? = {
        guard let library = dlopen("libzstd.so.1", RTLD_NOW) ?? dlopen("libzstd.so", RTLD_NOW),
              let decompress = dlsym(library, "ZSTD_decompress"), let isError = dlsym(library, "ZSTD_isError") else { return nil }
        return (unsafeBitCast(decompress, to: Decompress.self), unsafeBitCast(isError, to: IsError.self))
    }()

    /// Appends the frame's `size` bytes to `output`; false when it does not decode to exactly that.
    static func decompress(_ frame: ArraySlice<UInt8>, size: Int, appendingTo output: inout [UInt8]) -> Bool {
        guard let (decompress, isError) = functions else { return false }
        var decoded = [UInt8](repeating: 0, count: size)
        let written = frame.withUnsafeBytes { source in
            decoded.withUnsafeMutableBytes { target in
                decompress(target.baseAddress, target.count, source.baseAddress, source.count)
            }
        }
        guard isError(written) == 0, written == size else { return false }
        output.append(contentsOf: decoded)
        return true
    }
}

/// One LZ4 block (no frame): sequences of literals and back-references.
enum LZ4Block {
    /// Appends the block's `size` bytes to `output`; false when the block is malformed.
    static func decompress(_ block: ArraySlice<UInt8>, size: Int, appendingTo output: inout [UInt8]) -> Bool {
        let start = output.count
        output.reserveCapacity(start + size)
        var at = block.startIndex
        let end = block.endIndex
        func length(_ initial: Int) -> Int? {
            var total = initial
            guard initial == 15 else { return total }
            while true {
                guard at < end else { return nil }
                let byte = block[at]
                at += 1
                total += Int(byte)
                if byte != 255 { return total }
            }
        }
        while at < end {
            let token = block[at]
            at += 1
            guard let literals = length(Int(token >> 4)), end - at >= literals else { return false }
            output.append(contentsOf: block[at..<(at + literals)])
            at += literals
            if at == end { break }
            guard end - at >= 2 else { return false }
            let offset = Int(block[at]) | Int(block[at + 1]) << 8
            at += 2
            guard let match = length(Int(token & 0x0f)).map({ $0 + 4 }), offset > 0, output.count - start >= offset else { return false }
            // Byte by byte: a match may overlap the bytes it copies.
            var from = output.count - offset
            for _ in 0..<match {
                output.append(output[from])
                from += 1
            }
            guard output.count - start <= size else { return false }
        }
        return output.count - start == size
    }
}

/// SipHash-2-4 as ClickHouse's SipHash.h computes it (keys 0): the byte count's low byte in the
/// last word, and a 128-bit result of v0^v1 (low) and v2^v3 (high).
struct SipHash128 {
    private var v0: UInt64 = 0x736f_6d65_7073_6575
    private var v1: UInt64 = 0x646f_7261_6e64_6f6d
    private var v2: UInt64 = 0x6c79_6765_6e65_7261
    private var v3: UInt64 = 0x7465_6462_7974_6573
    private var pending: UInt64 = 0
    private var count: UInt64 = 0

    mutating func update(littleEndian value: UInt64) {
        for shift in stride(from: UInt64(0), to: 64, by: 8) { add(UInt8(truncatingIfNeeded: value >> shift)) }
    }

    mutating func update<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        for byte in bytes { add(byte) }
    }

    private mutating func add(_ byte: UInt8) {
        pending |= UInt64(byte) << (8 * (count & 7))
        count += 1
        if count & 7 == 0 {
            compress(pending)
            pending = 0
        }
    }

    private mutating func compress(_ word: UInt64) {
        v3 ^= word
        round()
        round()
        v0 ^= word
    }

    private mutating func round() {
        v0 &+= v1; v1 = v1.rotated(13); v1 ^= v0; v0 = v0.rotated(32)
        v2 &+= v3; v3 = v3.rotated(16); v3 ^= v2
        v0 &+= v3; v3 = v3.rotated(21); v3 ^= v0
        v2 &+= v1; v1 = v1.rotated(17); v1 ^= v2; v2 = v2.rotated(32)
    }

    /// (low, high) of the 128-bit hash.
    mutating func finish() -> (UInt64, UInt64) {
        compress(pending | (count & 0xff) << 56)
        v2 ^= 0xff
        for _ in 0..<4 { round() }
        return (v0 ^ v1, v2 ^ v3)
    }
}

private extension UInt64 {
    func rotated(_ bits: UInt64) -> UInt64 { self << bits | self >> (64 - bits) }
}
