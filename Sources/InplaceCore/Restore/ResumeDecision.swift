/// What to do with a part step that may already have had its effect: a step found `started` or
/// `interrupted` on resume, retried after an error, or replayed. A pure function of what the
/// journal recorded and what ClickHouse and the disk show, so every combination is a line of a
/// table-driven test; the executor only observes and performs. journal-schema/README.md's resume
/// table is this function written out.
///
/// The rules, per kind:
/// 1. A statement of the step still running on the server (seen by its query_id in
///    system.processes) is waited for first, whatever the kind.
/// 2. download-part: done when its part is complete in `detached/` (renamed there only when
///    complete); otherwise downloaded again.
/// 3. attach-part: with the attached name recorded (committed as soon as ATTACH returned), that
///    part is checked again; a recorded part no longer active means a merge or someone else
///    changed the table: it is planned again. Without a recorded name: a part still in
///    `detached/` is attached; a part gone from there was attached and not recorded: the one
///    active part of its partition and identity that no step and no kept part claims is it, and
///    is recorded and checked; when there is none, it is not in the table as attached (merged,
///    even alone, or removed): the table is planned again, which compares it by content.
/// 4. detach-part: done when the part is gone from the table and in `detached/`; detached
///    again while still active; gone from both (merged away) means planning again.
/// 5. drop-part: done when the part is no longer active and no active part covers its blocks;
///    covered by another part (merged) means planning again; still active, dropped.
public enum ResumeDecision {
    /// What ClickHouse and the disk show for the step (gathered by the executor).
    public struct Observation: Sendable, Equatable {
        /// A statement of this step is still running on the server.
        public var statementRunning = false
        /// The step's folder is in `detached/` (the backup's part, or the detached live part).
        public var inDetached = false
        /// The step's part (a drop's or detach's live part, or an attach's recorded part) is active.
        public var partActive = false
        /// An active part that covers the blocks of the step's part (it was merged into it).
        public var coveredBy: String?
        /// attach-part without a recorded name: the one active part of its partition and
        /// identity that nothing else claims.
        public var unclaimed: String?

        public init(statementRunning: Bool = false, inDetached: Bool = false, partActive: Bool = false,
                    coveredBy: String? = nil, unclaimed: String? = nil) {
            self.statementRunning = statementRunning
            self.inDetached = inDetached
            self.partActive = partActive
            self.coveredBy = coveredBy
            self.unclaimed = unclaimed
        }
    }

    /// What the journal holds for the step.
    public struct Facts: Sendable, Equatable {
        public var kind: EventKind
        /// The step's journal state, and how many times it was begun. A step observed by the
        /// executor was begun (started, interrupted, retried, or failed and replayed).
        public var state: EventState
        public var attempts: Int
        /// attach-part: the name ClickHouse gave the attached part, when recorded.
        public var attachedAs: String?
        /// attach-part of a kept part detached by this run (no download behind it).
        public var local = false

        public init(kind: EventKind, state: EventState = .started, attempts: Int = 1, attachedAs: String? = nil,
                    local: Bool = false) {
            self.kind = kind
            self.state = state
            self.attempts = attempts
            self.attachedAs = attachedAs
            self.local = local
        }
    }

    public enum Action: Sendable, Equatable {
        /// The effect is there (and, for an attach, checked): the step is done.
        case done(String)
        /// Wait for the step's statement on the server, then decide again.
        case wait
        /// Perform the step (again): download, ATTACH, DETACH or DROP.
        case run
        /// attach-part: the part is attached as this name: record it (if not yet) and check it.
        case check(String)
        /// The table no longer holds what its plan was made from: plan it again.
        case replan(String)
        /// A superseded step: a new plan of its table replaced it.
        case skip
    }

    public static func decide(_ facts: Facts, _ seen: Observation) -> Action {
        switch facts.state {
        case .done: return .done("journaled done")
        case .superseded: return .skip
        case .pending where facts.attempts == 0: return .run  // never begun: nothing can have happened
        default: break
        }
        if seen.statementRunning { return .wait }
        switch facts.kind {
        case .downloadPart:
            return seen.inDetached ? .done("complete in detached/") : .run
        case .attachPart:
            return attach(facts, seen)
        case .detachPart:
            if seen.partActive { return .run }
            if seen.inDetached { return .done("found in detached/") }
            return .replan(seen.coveredBy.map { "the live part to re-sequence was merged into \($0)" }
                ?? "the live part to re-sequence is neither active nor in detached/")
        case .dropPart:
            if seen.partActive { return .run }
            if let merged = seen.coveredBy { return .replan("the live part to drop was merged into \(merged) with parts the backup has") }
            return .done("no longer active, and no active part covers its blocks")
        case .planTable, .createTable, .dropTable, .verifyTable, .killMutation:
            return .run  // checked by their own steps (table-level, not part-level)
        }
    }

    private static func attach(_ facts: Facts, _ seen: Observation) -> Action {
        if let attached = facts.attachedAs {
            if seen.partActive { return .check(attached) }
            return .replan(seen.coveredBy.map { "the attached part \(attached) was merged into \($0) before it was checked" }
                ?? "the attached part \(attached) is no longer in the table")
        }
        if seen.inDetached { return .run }
        if let found = seen.unclaimed { return .check(found) }
        return .replan(facts.local ? "the re-sequenced kept part is neither in detached/ nor found in the table"
            : "the part is neither in detached/ nor found in the table as attached (merged since, or removed)")
    }
}
