/// A small element tree for S3's XML answers (errors, multipart uploads), read with
/// `S3XMLScanner`. Listings, the large answers, are read without a tree: `S3ListingParser`.
final class S3XMLElement {
    let name: String
    var text = ""
    var children: [S3XMLElement] = []

    init(name: String) { self.name = name }

    func child(_ name: String) -> S3XMLElement? { children.first { $0.name == name } }
    func all(_ name: String) -> [S3XMLElement] { children.filter { $0.name == name } }
    func value(_ name: String) -> String? { child(name)?.text }

    /// Parses `data`; nil when it is not well-formed XML.
    static func parse(_ data: [UInt8]) -> S3XMLElement? {
        data.withUnsafeBufferPointer { bytes in
            var scanner = S3XMLScanner(bytes)
            var root: S3XMLElement?
            var stack: [S3XMLElement] = []
            do {
                while let event = try scanner.next() {
                    switch event {
                    case .start(let name):
                        let element = S3XMLElement(name: scanner.string(name))
                        stack.last?.children.append(element)
                        if root == nil { root = element }
                        stack.append(element)
                    case .end:
                        stack.removeLast()
                    case .text(let range):
                        stack.last?.text += try scanner.decodedString(range)
                    case .cdata(let range):
                        stack.last?.text += scanner.string(range)
                    }
                }
            } catch {
                return nil
            }
            return root
        }
    }
}

/// XML-escapes text for request bodies.
func xmlEscape(_ text: String) -> String {
    var out = ""
    for character in text {
        switch character {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&apos;"
        default: out.append(character)
        }
    }
    return out
}
