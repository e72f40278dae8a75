import Foundation
import Testing

@testable import InplaceCore

@Suite("S3 dates read by position, as Foundation's formatter reads them")
struct S3DateTests {
    static let reference: @Sendable (String) -> Date? = { text in
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }

    @Test("LastModified values S3 servers write, and edge dates, equal Foundation's reading", arguments: [
        "2026-12-03T09:00:00.000Z", "2026-12-03T09:00:00Z", "1970-01-01T00:00:00Z", "2000-02-29T23:59:59.999Z",
        "2024-02-29T12:00:00.5Z", "1999-12-31T23:59:59+02:00", "2030-03-01T00:00:00-05:30", "1969-12-31T23:59:59Z",
        "2100-03-01T00:00:00.123Z",
    ])
    func agreesWithFoundation(_ text: String) throws {
        let parsed = try #require(parseDate(text))
        let expected = try #require(Self.reference(text))
        #expect(abs(parsed.timeIntervalSince1970 - expected.timeIntervalSince1970) < 0.001, "\(text)")
    }

    @Test("malformed text is refused", arguments: [
        "", "2026-12-03", "2026-12-03T09:00:00", "2026-13-03T09:00:00Z", "2026-12-03 09:00:00Z", "2026-12-03T09:00:00.Z",
        "2026-12-03T09:00:00Zjunk", "20x6-12-03T09:00:00Z", "2026-12-03T25:00:00Z",
    ])
    func refusesMalformed(_ text: String) {
        #expect(parseDate(text) == nil)
    }

    static let httpReference: @Sendable (String) -> Date? = { text in
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: text)
    }

    @Test("Last-Modified (IMF-fixdate) read by position equals Foundation's reading", arguments: [
        "Sun, 06 Dec 2026 21:10:10 GMT", "Thu, 01 Jan 1970 00:00:00 GMT", "Tue, 29 Feb 2000 23:59:59 GMT",
        "Wed, 31 Dec 1969 23:59:59 GMT", "Mon, 01 Mar 2100 00:00:00 GMT", "Fri, 15 Aug 2025 07:05:09 GMT",
    ])
    func httpDates(_ text: String) throws {
        var copy = text
        let byPosition = copy.withUTF8(parseIMFFixdate)
        let parsed = try #require(byPosition)
        #expect(parsed == (try #require(Self.httpReference(text))), "\(text)")
        #expect(parseHTTPDate(text) == parsed)
    }

    @Test("not IMF-fixdate: refused by position (Foundation's formatter then decides)", arguments: [
        "", "Sun, 06 Dec 2026 21:10:10 UTC", "Sun, 06 Dcm 2026 21:10:10 GMT", "Sun 06 Dec 2026 21:10:10 GMT ",
        "Sunday, 06-Dec-26 21:10:10 GMT", "Sun, 06 Dec 2026 24:10:10 GMT", "Sun, 6 Dec 2026 21:10:10 GMT",
    ])
    func httpDatesRefused(_ text: String) {
        var copy = text
        #expect(copy.withUTF8(parseIMFFixdate) == nil)
    }
}
