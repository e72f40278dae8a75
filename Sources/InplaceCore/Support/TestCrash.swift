import Foundation
import Synchronization

/// A test-only switch that makes "the side effect happened, the journal does not know yet" real:
/// with INPLACE_TEST_CRASH_AFTER_EFFECT=N the process kills itself with SIGKILL right after the
/// N-th side effect of a restore returned (ATTACH or DETACH or DROP PART answered, a download
/// renamed into `detached/`, a check passed, a table created or dropped), before the journal
/// commit that records it. Unset, it costs one load of a constant.
enum TestCrash {
    private static let limit: Int? = ProcessInfo.processInfo.environment["INPLACE_TEST_CRASH_AFTER_EFFECT"].flatMap { Int($0) }
    private static let count = Atomic<Int>(0)

    /// Called after each side effect; `what` names it in the line written before the kill.
    static func afterEffect(_ what: @autoclosure () -> String) {
        guard let limit else { return }
        let (_, now) = count.add(1, ordering: .sequentiallyConsistent)
        guard now == limit else { return }
        FileHandle.standardError.write(Data("inplace: test crash after side effect \(now): \(what())\n".utf8))
        kill(getpid(), SIGKILL)
    }
}
