/// CRC-64/ECMA as Go's `hash/crc64` computes it with its ECMA table (clickhouse-backup's
/// `checksums` map): reflected polynomial 0xC96C5795D7870F42, initial value and final xor all
/// ones. Check value of "123456789": 0x995DC9BBDF1939FA.
public struct CRC64: Sendable {
    private static let table: [UInt64] = (0..<256).map { index in
        var crc = UInt64(index)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xC96C_5795_D787_0F42 : crc >> 1 }
        return crc
    }

    private var state: UInt64 = ~0

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var crc = state
        Self.table.withUnsafeBufferPointer { table in
            for byte in bytes { crc = table[Int(UInt8(truncatingIfNeeded: crc) ^ byte)] ^ (crc >> 8) }
        }
        state = crc
    }

    public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    public var value: UInt64 { ~state }

    public static func checksum(_ bytes: [UInt8]) -> UInt64 {
        var crc = CRC64()
        crc.update(bytes)
        return crc.value
    }
}
