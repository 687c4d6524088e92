/// The properties the simulation checks; each violation names one.
public enum Invariant: String, Sendable, Hashable, CaseIterable {
    /// At most one leader per term.
    case electionSafety = "election safety (at most one leader per term)"
    /// Two logs with an entry of the same index and term hold the same entries up to it.
    case logMatching = "log matching"
    /// A leader's log holds every entry committed in an earlier term.
    case leaderCompleteness = "leader completeness"
    /// No two nodes apply different entries at one index.
    case stateMachineSafety = "state machine safety"
    /// A proposal acknowledged to its client as committed stays in every later leader's log.
    case acknowledgedNotLost = "acknowledged commit never lost"
    /// A ReadIndex read observes every write acknowledged before the read started.
    case linearizableRead = "linearizable ReadIndex read"
    /// After the faults heal, a leader is elected and a new proposal commits in bounded time.
    case liveness = "liveness after healing"
    /// The core broke the shell contract (storage misuse, out-of-order apply, bad snapshot).
    case contract = "core/shell contract"
}

/// A broken invariant, with what was observed.
public struct Violation: Error, Sendable, Hashable, CustomStringConvertible {
    /// Which property broke.
    public var invariant: Invariant
    /// What was observed, naming nodes, terms and indexes.
    public var detail: String

    /// Creates a violation.
    public init(_ invariant: Invariant, _ detail: String) {
        self.invariant = invariant
        self.detail = detail
    }

    /// A readable explanation.
    public var description: String { "\(invariant.rawValue): \(detail)" }
}
