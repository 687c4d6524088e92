import BallastRaft

/// The output of one `takeReady()` waiting for the disk: what to do once its writes are durable.
struct PersistBatch {
    var needsSync: Bool
    var synced = false
    var snapshot: Snapshot?
    var messagesAfterPersist: [Message]
    var persistedThrough: Entry?
    var committed: [Entry]
    var readStates: [ReadState]
    var droppedReads: [UInt64]
    var snapshotSuggested: Bool
}

/// A client proposal a node accepted and has not yet applied.
struct PendingProposal {
    var id: UInt64
    var term: Term
    var proposedAt: UInt64
}

/// A ReadIndex read a node accepted: what had been acknowledged when it started.
struct PendingRead {
    var acknowledgedAtStart: LogIndex
    var index: LogIndex?
}

/// One simulated server: the real Raft core plus the fake shell state around it (disk, state
/// machine, client bookkeeping). Everything volatile is dropped by `crash`.
final class SimulatedNode {
    let id: NodeID
    let slot: Int
    /// The membership at index 0, passed to the core on every start (also on a joining node).
    let bootstrap: Membership
    /// Whether this node is a spare that joins the cluster through a membership change.
    let joinsLater: Bool
    /// This node's tick length, skewed from the nominal one.
    let tickMicros: UInt64
    /// The core; nil while the node is down.
    var core: RaftNode?
    var store = MemoryLogStore()
    var machine: ListStateMachine
    /// Bumped at every crash and restart so stale timer and disk events are ignored.
    var epoch = 0
    var started = false
    /// Removed from the cluster and shut down for good.
    var removed = false
    var batches: [PersistBatch] = []
    var diskBusyUntil: UInt64 = 0
    var proposals: [LogIndex: PendingProposal] = [:]
    var reads: [UInt64: PendingRead] = [:]
    /// Contexts of confirmed reads waiting for the state machine to catch up, in confirmation order.
    var waitingReads: [UInt64] = []
    var lastRole: RaftRole = .follower
    var lastTerm: Term = .zero

    init(id: NodeID, slot: Int, bootstrap: Membership, joinsLater: Bool, tickMicros: UInt64) {
        self.id = id
        self.slot = slot
        self.bootstrap = bootstrap
        self.joinsLater = joinsLater
        self.tickMicros = tickMicros
        machine = ListStateMachine(membership: bootstrap)
    }

    /// Whether the core is running.
    var isUp: Bool { core != nil }

    /// Drops everything volatile; the store keeps what survived.
    func dropVolatileState() {
        core = nil
        epoch += 1
        batches.removeAll()
        proposals.removeAll()
        reads.removeAll()
        waitingReads.removeAll()
        lastRole = .follower
    }
}
