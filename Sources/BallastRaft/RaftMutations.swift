/// Deliberately broken rules for mutation testing: a simulator test sets one of these (through
/// `@testable import BallastRaft`) and proves that the simulator's invariants catch the bug.
/// Never public; all false in production. While any is set, invariant checks that a faulty
/// *peer* could trip (truncating a committed entry) are relaxed so the simulator, not a trap,
/// reports the damage.
struct RaftMutations: Sendable, Hashable {
    /// Commit entries of earlier terms by counting replicas (breaks Raft §5.4.2, figure 8).
    var commitOldTermEntriesByCounting = false
    /// Grant votes without the "candidate's log is at least as up to date" check (breaks §5.4.1).
    var grantVoteWithoutLogCheck = false

    /// Whether any rule is broken.
    var anyEnabled: Bool { commitOldTermEntriesByCounting || grantVoteWithoutLogCheck }
}
