/// A MergeTree part name: `<partition id>_<min block>_<max block>_<level>[_<data version>]`.
/// Names from backup metadata become folder names, so anything else is refused: no `/`, no
/// `..`, nothing but letters, digits, `_` and `-`.
public struct PartName: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let name: String
    public let partitionID: String
    public let minBlock: Int64
    public let maxBlock: Int64
    public let level: Int64
    public let dataVersion: Int64?

    public init?(_ name: String) {
        var text = name
        guard let parsed = text.withUTF8({ Self.parse($0) }) else { return nil }
        self.name = name
        partitionID = String(name.utf8.prefix(parsed.partitionLength))!
        minBlock = parsed.numbers.0
        maxBlock = parsed.numbers.1
        level = parsed.numbers.2
        dataVersion = parsed.numbers.3
    }

    /// One pass over the bytes, no allocation (planning parses a million names): the alphabet is
    /// checked, and the last 3 or 4 `_`-separated fields read as numbers; the partition id (which
    /// may itself hold `_`) is what comes before them.
    private static func parse(_ bytes: UnsafeBufferPointer<UInt8>)
        -> (partitionLength: Int, numbers: (Int64, Int64, Int64, Int64?))?
    {
        guard !bytes.isEmpty, bytes.count <= 255 else { return nil }
        // Positions of the last five underscores, most recent first.
        var last: (Int, Int, Int, Int, Int) = (-1, -1, -1, -1, -1)
        var underscores = 0
        for (index, byte) in bytes.enumerated() {
            switch byte {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x2D: continue
            case 0x5F:
                last = (index, last.0, last.1, last.2, last.3)
                underscores += 1
            default: return nil
            }
        }
        func number(_ from: Int, _ to: Int) -> Int64? {
            guard from < to, to - from <= 18 else { return nil }
            var value: Int64 = 0
            for index in from..<to {
                let digit = bytes[index] &- 0x30
                guard digit <= 9 else { return nil }
                value = value * 10 + Int64(digit)
            }
            return value
        }
        let end = bytes.count
        if underscores >= 4, last.3 > 0,
           let a = number(last.3 + 1, last.2), let b = number(last.2 + 1, last.1), let c = number(last.1 + 1, last.0),
           let d = number(last.0 + 1, end), a <= b
        {
            return (last.3, (a, b, c, d))
        }
        if underscores >= 3, last.2 > 0,
           let a = number(last.2 + 1, last.1), let b = number(last.1 + 1, last.0), let c = number(last.0 + 1, end), a <= b
        {
            return (last.2, (a, b, c, nil))
        }
        return nil
    }

    public var description: String { name }

    /// Partition, then min block: the order parts are attached in.
    public static func < (lhs: PartName, rhs: PartName) -> Bool {
        (lhs.partitionID, lhs.minBlock, lhs.maxBlock, lhs.name) < (rhs.partitionID, rhs.minBlock, rhs.maxBlock, rhs.name)
    }

    /// The name or a clear refusal.
    public static func validated(_ name: String, context: String) throws(BackupError) -> PartName {
        guard let part = PartName(name) else {
            throw BackupError(.invalidPartName,
                              "\(context): '\(name.debugDescription.dropFirst().dropLast())' is not a valid part name (expected <partition>_<min block>_<max block>_<level>); refusing to use it as a folder name")
        }
        return part
    }
}
