import BallastRaft

/// Checks Raft's safety properties incrementally from what the shells observe: the entries each
/// node writes, the roles it takes, the entries it applies, the acknowledgements and reads
/// clients receive. Pure: tests can feed it hand-made histories.
public struct InvariantChecker: Sendable {
    /// What the checker knows of one node's log: per index, the entry hash, term and prefix hash.
    struct LogView: Sendable {
        var entryHashes: [UInt64] = [0]
        var prefixHashes: [UInt64] = [SimulationHash.initial]
        var terms: [Term] = [.zero]
        var lastIndex: Int { entryHashes.count - 1 }

        mutating func truncate(after index: Int) {
            entryHashes.removeLast(entryHashes.count - index - 1)
            prefixHashes.removeLast(prefixHashes.count - index - 1)
            terms.removeLast(terms.count - index - 1)
        }
    }

    /// An index and a term: in a correct cluster they identify one entry and one log prefix.
    struct IndexTerm: Hashable, Sendable {
        var index: LogIndex
        var term: Term
    }

    /// A proposal the client was told is committed.
    struct Acknowledged: Sendable {
        var id: UInt64
        var index: LogIndex
        var entryHash: UInt64
        var leaderTerm: Term
    }

    private var views: [NodeID: LogView] = [:]
    private var leaderOfTerm: [Term: NodeID] = [:]
    private var prefixOf: [IndexTerm: UInt64] = [:]
    /// The committed log as first applied by any node (index 0 is a sentinel).
    private var committed = LogView()
    /// Per committed index, an upper bound of the term in which it was committed (non-decreasing).
    private var commitTermBound: [Term] = [.zero]
    private var acknowledged: [Acknowledged] = []

    /// Creates a checker that has seen nothing.
    public init() {}

    /// The highest index acknowledged to a client so far.
    public private(set) var maxAcknowledgedIndex: LogIndex = .zero
    /// Number of terms in which a leader was seen.
    public var electedTerms: Int { leaderOfTerm.count }
    /// The length of the committed log seen so far.
    public var committedLastIndex: LogIndex { LogIndex(UInt64(committed.lastIndex)) }

    /// Records entries `node` wrote to its log (replacing any suffix from the first one).
    public mutating func observeAppend(node: NodeID, entries: [Entry]) throws(Violation) {
        guard let first = entries.first else { return }
        var view = views[node] ?? LogView()
        let start = Int(first.index.rawValue)
        guard start >= 1, start <= view.lastIndex + 1 else {
            throw Violation(.contract, "\(node) appended from \(first.index) but its log ends at i\(view.lastIndex)")
        }
        view.truncate(after: start - 1)
        for entry in entries {
            let entryHash = SimulationHash.entry(entry)
            let prefix = SimulationHash.chain(view.prefixHashes[view.lastIndex], entryHash)
            let key = IndexTerm(index: entry.index, term: entry.term)
            if let known = prefixOf[key], known != prefix {
                throw Violation(.logMatching, "\(node) holds an entry at \(entry.index) in \(entry.term) whose log prefix differs from another node's")
            }
            prefixOf[key] = prefix
            view.entryHashes.append(entryHash)
            view.prefixHashes.append(prefix)
            view.terms.append(entry.term)
        }
        views[node] = view
    }

    /// Records that `node` installed a snapshot: its log is now the committed log up to `metadata.index`.
    public mutating func observeSnapshot(node: NodeID, metadata: SnapshotMetadata) throws(Violation) {
        let index = Int(metadata.index.rawValue)
        guard index <= committed.lastIndex else {
            throw Violation(.contract, "\(node) installed a snapshot at \(metadata.index) beyond the committed log i\(committed.lastIndex)")
        }
        guard committed.terms[index] == metadata.term else {
            throw Violation(.stateMachineSafety, "\(node) installed a snapshot at \(metadata.index) in \(metadata.term) but the committed entry there is in \(committed.terms[index])")
        }
        var view = committed
        view.truncate(after: index)
        views[node] = view
    }

    /// Records that `node` restarted from `restored`: its log is what survived on its disk.
    public mutating func observeRestart(node: NodeID, restored: RestoredState) throws(Violation) {
        if let snapshot = restored.snapshot {
            try observeSnapshot(node: node, metadata: snapshot.metadata)
        } else {
            views[node] = LogView()
        }
        try observeAppend(node: node, entries: restored.entries)
    }

    /// Records `node`'s role and term after a step: checks election safety and, for a leader, completeness.
    public mutating func observeRole(node: NodeID, role: RaftRole, term: Term, newlyLeader: Bool) throws(Violation) {
        guard role == .leader else { return }
        if let other = leaderOfTerm[term], other != node {
            throw Violation(.electionSafety, "\(node) and \(other) are both leaders in \(term)")
        }
        leaderOfTerm[term] = node
        let view = views[node] ?? LogView()
        let required = requiredCommittedIndex(before: term)
        if required > 0 {
            guard view.lastIndex >= required, view.prefixHashes[required] == committed.prefixHashes[required] else {
                throw Violation(.leaderCompleteness, "leader \(node) in \(term) lacks committed entries up to i\(required) (its log ends at i\(view.lastIndex))")
            }
        }
        if newlyLeader { try checkAcknowledged(in: view, leader: node, term: term) }
    }

    /// Records that `node` (currently in `term`) applied `entry`: checks it against its log and every other node.
    public mutating func observeApplied(node: NodeID, term: Term, entry: Entry) throws(Violation) {
        let index = Int(entry.index.rawValue)
        let entryHash = SimulationHash.entry(entry)
        let view = views[node] ?? LogView()
        guard index >= 1, index <= view.lastIndex, view.entryHashes[index] == entryHash else {
            throw Violation(.contract, "\(node) applied \(entry.index) in \(entry.term), which is not the entry in its log")
        }
        if index <= committed.lastIndex {
            guard committed.entryHashes[index] == entryHash else {
                throw Violation(.stateMachineSafety, "\(node) applied \(entry.index) in \(entry.term) but another node applied \(entry.index) in \(committed.terms[index])")
            }
            return
        }
        guard index == committed.lastIndex + 1 else {
            throw Violation(.contract, "\(node) applied \(entry.index) before anyone applied i\(committed.lastIndex + 1)")
        }
        committed.entryHashes.append(entryHash)
        committed.prefixHashes.append(view.prefixHashes[index])
        committed.terms.append(entry.term)
        commitTermBound.append(Swift.max(term, commitTermBound[index - 1]))
    }

    /// Records that the client of proposal `id` was told it committed as `entry` by a leader in `leaderTerm`.
    public mutating func observeAcknowledged(id: UInt64, entry: Entry, leaderTerm: Term) throws(Violation) {
        let index = Int(entry.index.rawValue)
        let entryHash = SimulationHash.entry(entry)
        guard index <= committed.lastIndex, committed.entryHashes[index] == entryHash else {
            throw Violation(.acknowledgedNotLost, "proposal \(id) acknowledged at \(entry.index) in \(entry.term) is not the committed entry there")
        }
        acknowledged.append(Acknowledged(id: id, index: entry.index, entryHash: entryHash, leaderTerm: leaderTerm))
        maxAcknowledgedIndex = Swift.max(maxAcknowledgedIndex, entry.index)
    }

    /// Checks a served read: it started after acknowledgements up to `acknowledgedAtStart` and saw state up to `servedIndex`.
    public func checkRead(context: UInt64, node: NodeID, acknowledgedAtStart: LogIndex, servedIndex: LogIndex) throws(Violation) {
        guard servedIndex >= acknowledgedAtStart else {
            throw Violation(.linearizableRead, "read \(context) on \(node) saw state up to \(servedIndex) but a write at \(acknowledgedAtStart) was acknowledged before it started")
        }
    }

    private func checkAcknowledged(in view: LogView, leader: NodeID, term: Term) throws(Violation) {
        for ack in acknowledged where ack.leaderTerm < term {
            let index = Int(ack.index.rawValue)
            guard index <= view.lastIndex, view.entryHashes[index] == ack.entryHash else {
                throw Violation(.acknowledgedNotLost, "leader \(leader) in \(term) lacks proposal \(ack.id) acknowledged at \(ack.index) in \(ack.leaderTerm)")
            }
        }
    }

    /// The largest committed index whose commit term bound is below `term` (binary search; the bounds never decrease).
    private func requiredCommittedIndex(before term: Term) -> Int {
        var low = 0
        var high = commitTermBound.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if commitTermBound[middle] < term { low = middle } else { high = middle - 1 }
        }
        return low
    }
}
