import Foundation

/// One ListObjectsV2 answer (`ListBucketResult`), read straight from the response bytes: a
/// listing of a million parts is a thousand of these, so no element tree and no string is made
/// but for the fields kept (Key, Size, LastModified, ETag, CommonPrefixes' Prefix, IsTruncated,
/// NextContinuationToken). Everything else (Owner, StorageClass, Name, ...) is skipped.
struct S3ListingParser {
    struct Answer: Sendable {
        var page: S3Client.ListPage
        var isTruncated: Bool
        var nextContinuationToken: String?
    }

    /// The answer in `body`; nil when it is not a well-formed `ListBucketResult`.
    static func parse(_ body: [UInt8]) -> Answer? {
        body.withUnsafeBufferPointer { bytes in
            var parser = S3ListingParser(scanner: S3XMLScanner(bytes))
            do {
                return try parser.run()
            } catch {
                return nil
            }
        }
    }

    private enum Field { case none, key, size, lastModified, etag, prefix, isTruncated, nextToken }
    private enum Container { case none, contents, commonPrefixes }

    private var scanner: S3XMLScanner
    private var depth = 0
    private var container = Container.none
    private var field = Field.none
    /// The decoded text of the field being read.
    private var text: [UInt8] = []
    private var object = S3ObjectInfo(key: "", size: 0, etag: "", lastModified: nil)
    private var answer = Answer(page: S3Client.ListPage(objects: [], commonPrefixes: []), isTruncated: false)

    private init(scanner: S3XMLScanner) {
        self.scanner = scanner
        text.reserveCapacity(1024)
    }

    private mutating func run() throws(S3XMLScanner.Malformed) -> Answer {
        while let event = try scanner.next() {
            switch event {
            case .start(let name):
                depth += 1
                try start(name)
            case .end:
                if field != .none { try finishField() }
                if depth == 2, container == .contents {
                    answer.page.objects.append(object)
                    object = S3ObjectInfo(key: "", size: 0, etag: "", lastModified: nil)
                }
                if depth == 2 { container = .none }
                depth -= 1
            case .text(let range):
                if field != .none { try scanner.decode(range, into: &text) }
            case .cdata(let range):
                if field != .none { text.append(contentsOf: scanner.bytes[range]) }
            }
        }
        return answer
    }

    private mutating func start(_ name: Range<Int>) throws(S3XMLScanner.Malformed) {
        field = .none
        switch (depth, container) {
        case (1, _):
            guard scanner.isName(name, "ListBucketResult") else { throw S3XMLScanner.Malformed() }
        case (2, _):
            if scanner.isName(name, "Contents") {
                container = .contents
            } else if scanner.isName(name, "CommonPrefixes") {
                container = .commonPrefixes
            } else if scanner.isName(name, "IsTruncated") {
                field = .isTruncated
            } else if scanner.isName(name, "NextContinuationToken") {
                field = .nextToken
            }
        case (3, .contents):
            field = scanner.isName(name, "Key") ? .key : scanner.isName(name, "Size") ? .size
                : scanner.isName(name, "LastModified") ? .lastModified : scanner.isName(name, "ETag") ? .etag : .none
        case (3, .commonPrefixes):
            if scanner.isName(name, "Prefix") { field = .prefix }
        default:
            break
        }
        text.removeAll(keepingCapacity: true)
    }

    private mutating func finishField() throws(S3XMLScanner.Malformed) {
        defer { field = .none }
        switch field {
        case .none: break
        case .key: object.key = String(decoding: text, as: UTF8.self)
        case .size:
            guard let size = Self.integer(text) else { throw S3XMLScanner.Malformed() }
            object.size = size
        case .lastModified: object.lastModified = text.withUnsafeBufferPointer(parseDate(utf8:))
        case .etag: object.etag = unquote(String(decoding: text, as: UTF8.self))
        case .prefix: answer.page.commonPrefixes.append(String(decoding: text, as: UTF8.self))
        case .isTruncated: answer.isTruncated = text.elementsEqual("true".utf8)
        case .nextToken: answer.nextContinuationToken = String(decoding: text, as: UTF8.self)
        }
    }

    private static func integer(_ digits: [UInt8]) -> Int64? {
        guard !digits.isEmpty, digits.count <= 18 else { return nil }
        var value: Int64 = 0
        for digit in digits {
            guard (0x30...0x39).contains(digit) else { return nil }
            value = value * 10 + Int64(digit - 0x30)
        }
        return value
    }
}
