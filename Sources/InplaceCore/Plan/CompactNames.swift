import Synchronization

/// Compact part records for planning a million parts in little memory:
/// 1. Partition ids and disk names are interned: a record holds a 4-byte index into one
///    process-wide table instead of a String (16 bytes, plus a heap copy for long ids).
/// 2. A part name is parsed once into numbers (20 bytes, no heap) when formatting the numbers
///    gives the name back exactly; any other name is interned whole.
/// 3. A content hash of 32 lower-case hex digits (`hash_of_all_files`) is two integers; a CRC-64
///    identity is its integer; anything else stays text.
/// Every value has exactly one representation, so comparing records compares the texts.

/// An interned string: equal strings get equal indices. The table only grows, by the distinct
/// partition ids and disk names a run sees (few next to its parts).
public struct InternedName: Hashable, Sendable {
    let index: UInt32

    private static let table = Mutex<(strings: [String], indices: [String: UInt32])>(([], [:]))

    public init(_ string: String) {
        index = Self.table.withLock { table in
            if let index = table.indices[string] { return index }
            let index = UInt32(table.strings.count)
            table.strings.append(string)
            table.indices[string] = index
            return index
        }
    }

    public var string: String { Self.table.withLock { $0.strings[Int(index)] } }
}

/// A part name, `<partition>_<min>_<max>_<level>[_<data version>]`, as numbers in five 32-bit
/// words: 20 bytes aligned on 4, so that a record's 4-byte fields fill the rest of its 8-byte word.
struct CompactPartName: Hashable, Sendable {
    /// The min block's low 32 bits.
    private var minLow: UInt32
    /// The min block's high 16 bits (a min block below 2^48), then the level (below 2^16).
    private var minHighLevel: UInt32
    /// The partition id; for a name kept as text, the whole name.
    private var partition: InternedName
    /// maxBlock - minBlock.
    private var span: UInt32
    /// dataVersion - minBlock + 1; 0 for none; `textVersion` for a name kept as text.
    private var version: UInt32

    private static let textVersion = UInt32.max

    init(_ name: String) {
        if let parsed = PartName(name), parsed.minBlock <= parsed.maxBlock, parsed.minBlock < 1 << 48,
           parsed.maxBlock - parsed.minBlock < UInt32.max, parsed.level <= Int64(UInt16.max),
           parsed.dataVersion.map({ $0 >= parsed.minBlock && $0 - parsed.minBlock < Int64(Self.textVersion) - 1 }) ?? true,
           Self.isCanonical(name, parsed)
        {
            minLow = UInt32(truncatingIfNeeded: parsed.minBlock)
            minHighLevel = UInt32(parsed.minBlock >> 32) << 16 | UInt32(parsed.level)
            partition = InternedName(parsed.partitionID)
            span = UInt32(parsed.maxBlock - parsed.minBlock)
            version = parsed.dataVersion.map { UInt32($0 - parsed.minBlock + 1) } ?? 0
        } else {
            minLow = 0
            minHighLevel = 0
            partition = InternedName(name)
            span = 0
            version = Self.textVersion
        }
    }

    private var isText: Bool { version == Self.textVersion }
    private var minBlock: Int64 { Int64(minHighLevel >> 16) << 32 | Int64(minLow) }
    private var level: UInt32 { minHighLevel & 0xFFFF }

    /// Formatting the numbers gives the name back: no number has a leading zero (the parser
    /// read each field whole, so the lengths tell).
    private static func isCanonical(_ name: String, _ parsed: PartName) -> Bool {
        func digits(_ value: Int64) -> Int {
            var count = 1
            var rest = value / 10
            while rest > 0 {
                count += 1
                rest /= 10
            }
            return count
        }
        let numbers = digits(parsed.minBlock) + digits(parsed.maxBlock) + digits(parsed.level)
            + (parsed.dataVersion.map { digits($0) + 1 } ?? 0)
        return name.utf8.count == parsed.partitionID.utf8.count + 3 + numbers
    }

    var string: String {
        if isText { return partition.string }
        let head = "\(partition.string)_\(minBlock)_\(minBlock + Int64(span))_\(level)"
        return version == 0 ? head : "\(head)_\(minBlock + Int64(version) - 1)"
    }

    /// The partition and blocks, without formatting the name; nil for a name kept as text.
    var blocks: (partition: InternedName, minBlock: Int64, maxBlock: Int64)? {
        isText ? nil : (partition, minBlock, minBlock + Int64(span))
    }
}

/// A part's content identity: `hash_of_all_files`, or `crc64:<n>` of checksums.txt.
enum ContentHash: Hashable, Sendable {
    case hex128(UInt64, UInt64)
    case crc64(UInt64)
    case text(String)

    init(_ text: String) {
        if let hex = Self.hex128(text) {
            self = hex
        } else if text.hasPrefix("crc64:"), let value = UInt64(text.dropFirst(6)), "crc64:\(value)" == text {
            self = .crc64(value)
        } else {
            self = .text(text)
        }
    }

    /// 32 lower-case hex digits (upper-case ones would not print back the same).
    private static func hex128(_ text: String) -> ContentHash? {
        guard text.utf8.count == 32 else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for (index, byte) in text.utf8.enumerated() {
            let digit: UInt8
            switch byte {
            case 0x30...0x39: digit = byte - 0x30
            case 0x61...0x66: digit = byte - 0x61 + 10
            default: return nil
            }
            if index < 16 { high = high << 4 | UInt64(digit) } else { low = low << 4 | UInt64(digit) }
        }
        return .hex128(high, low)
    }

    var string: String {
        switch self {
        case .hex128(let high, let low):
            String(unsafeUninitializedCapacity: 32) { buffer in
                let digits: StaticString = "0123456789abcdef"
                for index in 0..<32 {
                    let value = index < 16 ? high >> (60 - 4 * index) : low >> (60 - 4 * (index - 16))
                    buffer[index] = digits.utf8Start[Int(value & 0xF)]
                }
                return 32
            }
        case .crc64(let value): "crc64:\(value)"
        case .text(let text): text
        }
    }
}
