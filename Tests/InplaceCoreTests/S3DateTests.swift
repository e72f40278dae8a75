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
}
