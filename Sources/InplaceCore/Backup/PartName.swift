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
        guard !name.isEmpty, name.utf8.count <= 255,
              name.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x41...0x5A).contains($0)
                    || (0x61...0x7A).contains($0) || $0 == 0x5F || $0 == 0x2D })
        else { return nil }
        let fields = name.split(separator: "_", omittingEmptySubsequences: false)
        // The partition id may itself hold `_`: the numbers are the last 3 or 4 fields.
        for numberCount in [4, 3] where fields.count > numberCount {
            let numbers = fields.suffix(numberCount).map { Int64($0) }
            guard numbers.allSatisfy({ $0 != nil }) else { continue }
            let partition = fields.dropLast(numberCount).joined(separator: "_")
            guard !partition.isEmpty else { continue }
            self.name = name
            partitionID = partition
            minBlock = numbers[0]!
            maxBlock = numbers[1]!
            level = numbers[2]!
            dataVersion = numberCount == 4 ? numbers[3]! : nil
            if minBlock > maxBlock { return nil }
            return
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
