import Foundation

/// Splits a byte stream into lines (without the `\n`) as chunks arrive, so a result is never
/// held whole: only the unfinished last line is kept between chunks.
struct LineSplitter {
    private var pending: [UInt8] = []

    mutating func feed(_ chunk: UnsafeRawBufferPointer, _ onLine: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let base = chunk.baseAddress else { return }
        var start = 0
        while start < chunk.count {
            guard let found = memchr(base + start, 0x0A, chunk.count - start) else {
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[start...]))
                return
            }
            let end = base.distance(to: UnsafeRawPointer(found))
            if pending.isEmpty {
                try onLine(UnsafeRawBufferPointer(rebasing: chunk[start..<end]))
            } else {
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[start..<end]))
                try pending.withUnsafeBytes { try onLine($0) }
                pending.removeAll(keepingCapacity: true)
            }
            start = end + 1
        }
    }

    /// Hands over a last line that had no final newline.
    mutating func finish(_ onLine: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard !pending.isEmpty else { return }
        try pending.withUnsafeBytes { try onLine($0) }
        pending.removeAll()
    }
}

/// One row of a `TabSeparated` result, its fields unescaped.
public struct TSVRow: Sendable {
    public let fields: [String]
    /// 1-based row number in the result, for error messages.
    public let number: Int

    public init(fields: [String], number: Int) {
        self.fields = fields
        self.number = number
    }

    init(line: UnsafeRawBufferPointer, number: Int) {
        var fields: [String] = []
        var start = 0
        for index in 0...line.count where index == line.count || line[index] == 0x09 {
            fields.append(TSVRow.unescape(UnsafeRawBufferPointer(rebasing: line[start..<index])))
            start = index + 1
        }
        self.fields = fields
        self.number = number
    }

    public func string(_ index: Int) throws -> String {
        guard index < fields.count else {
            throw TSVRow.error("row \(number) has \(fields.count) columns, column \(index + 1) was expected")
        }
        return fields[index]
    }

    public func int64(_ index: Int) throws -> Int64 {
        let text = try string(index)
        guard let value = Int64(text) else { throw TSVRow.error("row \(number) column \(index + 1): '\(text)' is not an integer") }
        return value
    }

    public func uint64(_ index: Int) throws -> UInt64 {
        let text = try string(index)
        guard let value = UInt64(text) else {
            throw TSVRow.error("row \(number) column \(index + 1): '\(text)' is not an unsigned integer")
        }
        return value
    }

    public func int(_ index: Int) throws -> Int { Int(try int64(index)) }

    public func bool(_ index: Int) throws -> Bool {
        switch try string(index) {
        case "1", "true": return true
        case "0", "false": return false
        case let text: throw TSVRow.error("row \(number) column \(index + 1): '\(text)' is not a boolean")
        }
    }

    /// A ClickHouse `Array(String)` written in TSV, such as `['/a/','/b/']`.
    public func stringArray(_ index: Int) throws -> [String] {
        let text = try string(index)
        guard text.hasPrefix("["), text.hasSuffix("]") else {
            throw TSVRow.error("row \(number) column \(index + 1): '\(text)' is not an array")
        }
        var items: [String] = []
        var current = ""
        var inString = false
        var escaped = false
        for character in text.dropFirst().dropLast() {
            if escaped {
                current.append(TSVRow.escapeMeaning[character] ?? character)
                escaped = false
            } else if inString && character == "\\" {
                escaped = true
            } else if character == "'" {
                if inString { items.append(current); current = "" }
                inString.toggle()
            } else if inString {
                current.append(character)
            }
        }
        return items
    }

    static let escapeMeaning: [Character: Character] = [
        "t": "\t", "n": "\n", "r": "\r", "0": "\0", "b": "\u{08}", "f": "\u{0C}", "\\": "\\", "'": "'", "a": "\u{07}",
        "v": "\u{0B}",
    ]

    static func unescape(_ bytes: UnsafeRawBufferPointer) -> String {
        guard bytes.contains(0x5C) else { return String(decoding: bytes, as: UTF8.self) }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x5C, index + 1 < bytes.count {
                let next = bytes[index + 1]
                switch next {
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "0"): out.append(0x00)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "a"): out.append(0x07)
                case UInt8(ascii: "v"): out.append(0x0B)
                default: out.append(next)  // \\ \' \" and anything else: the character itself
                }
                index += 2
            } else {
                out.append(byte)
                index += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func error(_ message: String) -> ClickHouseError {
        ClickHouseError(kind: .badResponse, message: message, query: nil, server: "")
    }
}

/// A type built from one `TabSeparated` row.
public protocol TSVDecodable {
    init(row: TSVRow) throws
}

/// Detects an exception that ClickHouse writes into the body after the rows have started
/// (the status was already 200): a line `Code: N. DB::Exception: ...`, or the
/// `__exception__` block newer servers write.
enum StreamedException {
    static func isStart(_ line: UnsafeRawBufferPointer) -> Bool {
        let text = line.prefix(13)
        if text.starts(with: Array("__exception__".utf8)) { return true }
        guard text.starts(with: Array("Code: ".utf8)) else { return false }
        let rest = line.dropFirst(6).prefix(while: { (0x30...0x39).contains($0) })
        return !rest.isEmpty && line.count > 6 + rest.count && line[6 + rest.count] == UInt8(ascii: ".")
    }
}
