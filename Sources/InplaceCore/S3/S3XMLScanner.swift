import Foundation

/// A pull scanner over the bytes of one of S3's XML answers (listings, errors, multipart
/// uploads): small documents of a fixed shape, read without Foundation's `XMLParser`, whose
/// libxml2 callbacks and per-event strings were a third of a large listing's CPU.
///
/// 1. Skip the declaration (`<?...?>`), comments, a DOCTYPE, and whitespace outside the root.
/// 2. Hand out start tags (attributes skipped; a self-closing tag is a start then an end), end
///    tags, text (references still encoded: `decode`) and CDATA, as byte ranges of `bytes`.
/// 3. Refuse what is not well-formed in ways that matter here: an end tag that does not match,
///    an unclosed element, text outside the root, a second root, a truncated tag.
struct S3XMLScanner {
    enum Event: Equatable {
        case start(name: Range<Int>)
        case end(name: Range<Int>)
        /// Character data with entity and character references as written.
        case text(Range<Int>)
        /// The inside of `<![CDATA[...]]>`, taken literally.
        case cdata(Range<Int>)
    }

    struct Malformed: Error {}

    let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0
    private var open: [Range<Int>] = []
    private var pendingEnd: Range<Int>?
    private var sawRoot = false

    init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    /// The next event; nil at the end of a complete document.
    mutating func next() throws(Malformed) -> Event? {
        if let name = pendingEnd {
            pendingEnd = nil
            return .end(name: name)
        }
        while index < bytes.count {
            guard bytes[index] == Ascii.lessThan else {
                let start = index
                index = find(Ascii.lessThan, from: index) ?? bytes.count
                if !open.isEmpty { return .text(start..<index) }
                guard bytes[start..<index].allSatisfy(Ascii.isSpace) else { throw Malformed() }
                continue
            }
            if starts(with: "<?") {
                index = try end(of: "?>", from: index + 2)
            } else if starts(with: "<!--") {
                index = try end(of: "-->", from: index + 4)
            } else if starts(with: "<![CDATA[") {
                guard !open.isEmpty else { throw Malformed() }
                let start = index + 9
                index = try end(of: "]]>", from: start)
                return .cdata(start..<(index - 3))
            } else if starts(with: "<!") {
                index = try end(of: ">", from: index + 2)
            } else if starts(with: "</") {
                let name = self.name(from: index + 2)
                index = name.upperBound
                while index < bytes.count, Ascii.isSpace(bytes[index]) { index += 1 }
                guard index < bytes.count, bytes[index] == Ascii.greaterThan, let top = open.popLast(),
                      bytes[top].elementsEqual(bytes[name]) else { throw Malformed() }
                index += 1
                return .end(name: name)
            } else {
                return try startTag()
            }
        }
        guard sawRoot, open.isEmpty else { throw Malformed() }
        return nil
    }

    private mutating func startTag() throws(Malformed) -> Event {
        let name = self.name(from: index + 1)
        guard !name.isEmpty, open.isEmpty ? !sawRoot : true else { throw Malformed() }
        index = name.upperBound
        var quote: UInt8?
        var previous: UInt8 = 0
        while index < bytes.count {
            let byte = bytes[index]
            if let q = quote {
                if byte == q { quote = nil }
            } else if byte == Ascii.quote || byte == Ascii.apostrophe {
                quote = byte
            } else if byte == Ascii.greaterThan {
                break
            }
            previous = byte
            index += 1
        }
        guard index < bytes.count else { throw Malformed() }
        index += 1
        sawRoot = true
        if previous == Ascii.slash {
            pendingEnd = name
        } else {
            open.append(name)
        }
        return .start(name: name)
    }

    private func name(from start: Int) -> Range<Int> {
        var end = start
        while end < bytes.count, !Ascii.endsName(bytes[end]) { end += 1 }
        return start..<end
    }

    private func find(_ byte: UInt8, from start: Int) -> Int? {
        guard start < bytes.count, let base = bytes.baseAddress,
              let found = memchr(base + start, Int32(byte), bytes.count - start) else { return nil }
        return base.distance(to: found.assumingMemoryBound(to: UInt8.self))
    }

    private func starts(with prefix: StaticString) -> Bool {
        let count = prefix.utf8CodeUnitCount
        guard index + count <= bytes.count else { return false }
        return UnsafeBufferPointer(start: prefix.utf8Start, count: count).elementsEqual(bytes[index..<(index + count)])
    }

    /// The index just after the first `terminator` at or after `start`.
    private func end(of terminator: StaticString, from start: Int) throws(Malformed) -> Int {
        let pattern = UnsafeBufferPointer(start: terminator.utf8Start, count: terminator.utf8CodeUnitCount)
        var at = start
        while let found = find(pattern[0], from: at) {
            if found + pattern.count <= bytes.count, bytes[found..<(found + pattern.count)].elementsEqual(pattern) {
                return found + pattern.count
            }
            at = found + 1
        }
        throw Malformed()
    }

    // MARK: Text

    /// Whether the name at `range` is `name`.
    func isName(_ range: Range<Int>, _ name: StaticString) -> Bool {
        range.count == name.utf8CodeUnitCount
            && UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount).elementsEqual(bytes[range])
    }

    func string(_ range: Range<Int>) -> String { String(decoding: bytes[range], as: UTF8.self) }

    /// Appends the text at `range` to `out` with `&amp; &lt; &gt; &quot; &apos;` and `&#N;` /
    /// `&#xH;` decoded; an unknown or unterminated reference is malformed.
    func decode(_ range: Range<Int>, into out: inout [UInt8]) throws(Malformed) {
        var at = range.lowerBound
        while at < range.upperBound {
            guard let amp = find(Ascii.ampersand, from: at), amp < range.upperBound else {
                out.append(contentsOf: bytes[at..<range.upperBound])
                return
            }
            out.append(contentsOf: bytes[at..<amp])
            var semicolon = amp + 1
            while semicolon < range.upperBound, semicolon - amp <= 12, bytes[semicolon] != Ascii.semicolon { semicolon += 1 }
            guard semicolon < range.upperBound, bytes[semicolon] == Ascii.semicolon else { throw Malformed() }
            try Self.appendReference(bytes[(amp + 1)..<semicolon], to: &out)
            at = semicolon + 1
        }
    }

    /// The text at `range`, references decoded.
    func decodedString(_ range: Range<Int>) throws(Malformed) -> String {
        guard let amp = find(Ascii.ampersand, from: range.lowerBound), amp < range.upperBound else { return string(range) }
        var out: [UInt8] = []
        try decode(range, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private static func appendReference(_ name: Slice<UnsafeBufferPointer<UInt8>>, to out: inout [UInt8]) throws(Malformed) {
        switch String(decoding: name, as: UTF8.self) {
        case "amp": out.append(Ascii.ampersand)
        case "lt": out.append(Ascii.lessThan)
        case "gt": out.append(Ascii.greaterThan)
        case "quot": out.append(Ascii.quote)
        case "apos": out.append(Ascii.apostrophe)
        case let reference where reference.hasPrefix("#"):
            let hex = reference.hasPrefix("#x")
            guard let value = UInt32(reference.dropFirst(hex ? 2 : 1), radix: hex ? 16 : 10), value != 0,
                  let scalar = Unicode.Scalar(value) else { throw Malformed() }
            UTF8.encode(scalar) { out.append($0) }
        default:
            throw Malformed()
        }
    }
}

/// The bytes XML is made of.
enum Ascii {
    static let lessThan = UInt8(ascii: "<"), greaterThan = UInt8(ascii: ">"), slash = UInt8(ascii: "/")
    static let quote = UInt8(ascii: "\""), apostrophe = UInt8(ascii: "'"), ampersand = UInt8(ascii: "&")
    static let semicolon = UInt8(ascii: ";")

    static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }
    static func endsName(_ byte: UInt8) -> Bool { isSpace(byte) || byte == greaterThan || byte == slash }
}
