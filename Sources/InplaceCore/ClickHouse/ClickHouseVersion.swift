/// A ClickHouse version such as `26.9.1.1`, compared component by component.
public struct ClickHouseVersion: Comparable, Sendable, CustomStringConvertible {
    public let components: [Int]
    public let text: String

    /// The oldest server `inplace` supports: it needs `system.parts.hash_of_all_files`,
    /// `ALTER TABLE ... DROP PART`, `alter_partition_verbose_result`, `system.disks` and Atomic
    /// databases (all in 23.8 LTS), and `CHECK TABLE ... PART`, which every attach is verified
    /// with and which first shipped in 23.10 (ClickHouse PR #53404): on 23.8 and 23.9 every
    /// attach would fail after the part is attached. Older servers are refused before anything
    /// changes.
    public static let minimumSupported = ClickHouseVersion("23.10")!

    public init?(_ text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let parts = trimmed.split(separator: ".", omittingEmptySubsequences: false)
        var numbers: [Int] = []
        for part in parts {
            // "26.9.1.1", also tolerating a suffix such as "24.3.1.2672-lts" on the last part.
            let digits = part.prefix(while: \.isNumber)
            guard let value = Int(digits) else { break }
            numbers.append(value)
            if digits.count != part.count { break }
        }
        guard numbers.count >= 2 else { return nil }
        self.components = numbers
        self.text = trimmed
    }

    public var description: String { text }

    public static func < (lhs: ClickHouseVersion, rhs: ClickHouseVersion) -> Bool {
        let count = max(lhs.components.count, rhs.components.count)
        for index in 0..<count {
            let l = index < lhs.components.count ? lhs.components[index] : 0
            let r = index < rhs.components.count ? rhs.components[index] : 0
            if l != r { return l < r }
        }
        return false
    }

    public static func == (lhs: ClickHouseVersion, rhs: ClickHouseVersion) -> Bool {
        !(lhs < rhs) && !(rhs < lhs)
    }
}

import Foundation
