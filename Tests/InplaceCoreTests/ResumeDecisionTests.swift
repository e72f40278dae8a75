import Testing

@testable import InplaceCore

/// The resume decisions, row by row (journal-schema/README.md's resume table is the same
/// table), then over every combination of what the journal and the table can show.
@Suite("Resume decisions: a pure function of the journal's facts and what ClickHouse and the disk show")
struct ResumeDecisionTests {
    typealias Facts = ResumeDecision.Facts
    typealias Seen = ResumeDecision.Observation
    typealias Action = ResumeDecision.Action

    struct Row: CustomTestStringConvertible, Sendable {
        let facts: Facts
        let seen: Seen
        let expected: Action
        let why: String
        var testDescription: String { why }
    }

    static let rows: [Row] = [
        // Any kind: a finished, superseded or never-begun step is not observed.
        Row(facts: Facts(kind: .attachPart, state: .done), seen: Seen(), expected: .done("journaled done"), why: "journaled done"),
        Row(facts: Facts(kind: .dropPart, state: .superseded), seen: Seen(partActive: true), expected: .skip, why: "superseded"),
        Row(facts: Facts(kind: .attachPart, state: .pending, attempts: 0), seen: Seen(statementRunning: true), expected: .run,
            why: "pending and never begun: runs"),
        Row(facts: Facts(kind: .dropPart, state: .interrupted), seen: Seen(statementRunning: true, partActive: true), expected: .wait,
            why: "a statement of the step still runs: wait"),
        Row(facts: Facts(kind: .attachPart, state: .failed, attempts: 2), seen: Seen(statementRunning: true, inDetached: true),
            expected: .wait, why: "replayed while its statement runs: wait"),
        // download-part
        Row(facts: Facts(kind: .downloadPart), seen: Seen(inDetached: true), expected: .done("complete in detached/"),
            why: "download: complete in detached/"),
        Row(facts: Facts(kind: .downloadPart, state: .interrupted), seen: Seen(), expected: .run, why: "download: not in detached/: again"),
        // attach-part, name recorded
        Row(facts: Facts(kind: .attachPart, attachedAs: "all_9_9_0"), seen: Seen(partActive: true), expected: .check("all_9_9_0"),
            why: "attach: recorded part active: check it (again)"),
        Row(facts: Facts(kind: .attachPart, state: .failed, attempts: 3, attachedAs: "all_9_9_0"), seen: Seen(partActive: true),
            expected: .check("all_9_9_0"), why: "attach: check failed with a retryable error, replayed: check again"),
        Row(facts: Facts(kind: .attachPart, attachedAs: "all_9_9_0"), seen: Seen(coveredBy: "all_1_9_1"),
            expected: .replan("the attached part all_9_9_0 was merged into all_1_9_1 before it was checked"),
            why: "attach: recorded part merged: plan again"),
        Row(facts: Facts(kind: .attachPart, attachedAs: "all_9_9_0"), seen: Seen(inDetached: true),
            expected: .replan("the attached part all_9_9_0 is no longer in the table"), why: "attach: recorded part gone: plan again"),
        // attach-part, no name recorded
        Row(facts: Facts(kind: .attachPart), seen: Seen(inDetached: true, unclaimed: "all_5_5_0"), expected: .run,
            why: "attach: still in detached/: ATTACH (an unclaimed part elsewhere is not it)"),
        Row(facts: Facts(kind: .attachPart), seen: Seen(unclaimed: "all_9_9_0"), expected: .check("all_9_9_0"),
            why: "attach: gone from detached/, one unclaimed part of its identity: that is it"),
        Row(facts: Facts(kind: .attachPart), seen: Seen(),
            expected: .replan("the part is neither in detached/ nor found in the table as attached (merged since, or removed)"),
            why: "attach: neither in detached/ nor found: plan again (never attached twice)"),
        Row(facts: Facts(kind: .attachPart, local: true), seen: Seen(),
            expected: .replan("the re-sequenced kept part is neither in detached/ nor found in the table"),
            why: "attach of a re-sequenced part: lost from view: plan again"),
        // detach-part
        Row(facts: Facts(kind: .detachPart), seen: Seen(partActive: true), expected: .run, why: "detach: still active: DETACH"),
        Row(facts: Facts(kind: .detachPart), seen: Seen(inDetached: true), expected: .done("found in detached/"),
            why: "detach: in detached/: done"),
        Row(facts: Facts(kind: .detachPart), seen: Seen(coveredBy: "all_1_4_1"),
            expected: .replan("the live part to re-sequence was merged into all_1_4_1"), why: "detach: merged: plan again"),
        Row(facts: Facts(kind: .detachPart), seen: Seen(),
            expected: .replan("the live part to re-sequence is neither active nor in detached/"), why: "detach: gone: plan again"),
        // drop-part
        Row(facts: Facts(kind: .dropPart), seen: Seen(partActive: true), expected: .run, why: "drop: still active: DROP"),
        Row(facts: Facts(kind: .dropPart), seen: Seen(), expected: .done("no longer active, and no active part covers its blocks"),
            why: "drop: gone, nothing covers it: done"),
        Row(facts: Facts(kind: .dropPart), seen: Seen(coveredBy: "all_1_4_1"),
            expected: .replan("the live part to drop was merged into all_1_4_1 with parts the backup has"),
            why: "drop: merged: never counted as dropped, plan again"),
        // table-level steps check themselves
        Row(facts: Facts(kind: .verifyTable), seen: Seen(), expected: .run, why: "verify-table: always runs again"),
    ]

    @Test("each row of the resume table", arguments: rows)
    func row(_ row: Row) {
        #expect(ResumeDecision.decide(row.facts, row.seen) == row.expected)
    }

    /// Every combination of state, recorded facts and observation for the part steps.
    static var combinations: [(Facts, Seen)] {
        var all: [(Facts, Seen)] = []
        let states: [(EventState, Int)] = [(.pending, 0), (.pending, 1), (.started, 1), (.interrupted, 1), (.failed, 2),
                                           (.done, 1), (.superseded, 1)]
        for kind in [EventKind.downloadPart, .attachPart, .detachPart, .dropPart] {
            for (state, attempts) in states {
                for attachedAs in (kind == .attachPart ? [nil, "all_9_9_0"] : [nil]) {
                    for local in (kind == .attachPart ? [false, true] : [false]) {
                        for bits in 0..<32 {
                            let seen = Seen(statementRunning: bits & 1 != 0, inDetached: bits & 2 != 0, partActive: bits & 4 != 0,
                                            coveredBy: bits & 8 != 0 ? "all_1_9_1" : nil, unclaimed: bits & 16 != 0 ? "all_9_9_0" : nil)
                            all.append((Facts(kind: kind, state: state, attempts: attempts, attachedAs: attachedAs, local: local), seen))
                        }
                    }
                }
            }
        }
        return all
    }

    @Test("over every combination: nothing attached or dropped twice, nothing done that is not seen done")
    func invariants() {
        var count = 0
        for (facts, seen) in Self.combinations {
            count += 1
            let action = ResumeDecision.decide(facts, seen)
            let begun = !(facts.state == .pending && facts.attempts == 0) && facts.state != .done && facts.state != .superseded
            guard begun else { continue }
            if seen.statementRunning {
                #expect(action == .wait, "\(facts) \(seen)")
                continue
            }
            switch facts.kind {
            case .attachPart:
                // ATTACH runs only on a folder still in detached/ with no name recorded.
                if action == .run { #expect(seen.inDetached && facts.attachedAs == nil, "\(facts) \(seen)") }
                // Never done without a check.
                if case .done = action { Issue.record("an attach counted done unchecked: \(facts) \(seen)") }
                if case .check(let part) = action {
                    #expect(part == facts.attachedAs ?? seen.unclaimed, "\(facts) \(seen)")
                    if facts.attachedAs != nil { #expect(seen.partActive, "\(facts) \(seen)") }
                }
            case .dropPart:
                if case .done = action { #expect(!seen.partActive && seen.coveredBy == nil, "\(facts) \(seen)") }
                if action == .run { #expect(seen.partActive, "\(facts) \(seen)") }
            case .detachPart:
                if case .done = action { #expect(!seen.partActive && seen.inDetached, "\(facts) \(seen)") }
                if action == .run { #expect(seen.partActive, "\(facts) \(seen)") }
            case .downloadPart:
                if case .done = action { #expect(seen.inDetached) } else { #expect(action == .run) }
            default:
                break
            }
        }
        #expect(count == 4 * 7 * 32 + 7 * 32 * 3)
    }
}
