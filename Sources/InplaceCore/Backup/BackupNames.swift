/// clickhouse-backup's encoding of database, table and part names in paths and keys: Go's
/// `url.PathEscape`, then these characters percent-encoded as well:
/// `! @ # $ ^ & * ( ) + - = [ ] { } | ; ' : " , . / < > ? ~`. So `my-db` becomes `my%2Ddb`.
/// Decoding is plain percent-decoding.
public enum BackupNames {
    /// Bytes `url.PathEscape` leaves alone: unreserved characters plus the sub-delims and `:@`
    /// that a path segment may hold ...
    private static let pathEscapeKeeps = Set(
        Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@".utf8))
    /// ... minus the ones clickhouse-backup encodes on top.
    private static let extraEncoded = Set(Array("!@#$^&*()+-=[]{}|;':\",./<>?~".utf8))

    public static func encode(_ name: String) -> String {
        var out = ""
        out.reserveCapacity(name.utf8.count)
        for byte in name.utf8 {
            if pathEscapeKeeps.contains(byte) && !extraEncoded.contains(byte) {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += "%"
                out.unicodeScalars.append(hexDigit(byte >> 4))
                out.unicodeScalars.append(hexDigit(byte & 0xF))
            }
        }
        return out
    }

    /// Percent-decodes; nil when an escape is malformed or the bytes are not UTF-8.
    public static func decode(_ encoded: String) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(encoded.utf8.count)
        var iterator = encoded.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    return nil
                }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexDigit(_ value: UInt8) -> Unicode.Scalar {
        Unicode.Scalar(value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "A") + value - 10)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
