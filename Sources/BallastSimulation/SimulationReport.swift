/// Counters of one run.
public struct SimulationStatistics: Sendable, Hashable {
    /// Events taken off the queue.
    public var events = 0
    /// Simulated microseconds at the end of the run.
    public var simulatedMicros: UInt64 = 0
    /// Ticks delivered to cores.
    public var ticks = 0
    /// Messages handed to the network.
    public var messagesSent = 0
    /// Messages delivered to a core (duplicates included).
    public var messagesDelivered = 0
    /// Messages lost, cut by a partition, or addressed to a node that was down.
    public var messagesDropped = 0
    /// Extra copies the network delivered.
    public var messagesDuplicated = 0
    /// Node crashes (each loses its unsynced writes).
    public var crashes = 0
    /// Crashes that tore an append in the middle.
    public var tornWrites = 0
    /// Unsynced writes lost in crashes.
    public var lostWrites = 0
    /// Partitions started (symmetric, asymmetric, leader isolation).
    public var partitions = 0
    /// Terms in which a leader was elected.
    public var elections = 0
    /// Times a node became leader.
    public var leaderChanges = 0
    /// Disk syncs completed.
    public var syncs = 0
    /// Client proposals accepted by a leader.
    public var proposals = 0
    /// Client proposals refused (not leader, transfer, backlog).
    public var proposalsRejected = 0
    /// Proposals acknowledged to their client as committed.
    public var commitsAcknowledged = 0
    /// Entries applied, summed over nodes.
    public var entriesApplied = 0
    /// Snapshots taken locally.
    public var snapshotsTaken = 0
    /// Snapshots installed from a leader.
    public var snapshotsInstalled = 0
    /// ReadIndex reads served.
    public var readsServed = 0
    /// ReadIndex reads refused or dropped.
    public var readsFailed = 0
    /// Leadership transfers requested.
    public var transfers = 0
    /// Membership changes proposed.
    public var configChanges = 0
    /// Members removed and shut down.
    public var membersRemoved = 0
    /// Times a leader handed out a committed batch ending in an entry of an earlier term. Raft's
    /// §5.4.2 forbids it, so this stays 0 for a correct core; it tells how often a mutation fired.
    public var oldTermCommitsByLeader = 0

    /// Creates zeroed statistics.
    public init() {}

    /// One line with every counter.
    public var summary: String {
        "time=\(TraceRing.formatTime(simulatedMicros)) events=\(events) ticks=\(ticks) msgs=\(messagesSent)"
            + " delivered=\(messagesDelivered) dropped=\(messagesDropped) dup=\(messagesDuplicated) crashes=\(crashes)"
            + " torn=\(tornWrites) partitions=\(partitions) elections=\(elections) leaders=\(leaderChanges)"
            + " proposals=\(proposals) acked=\(commitsAcknowledged) applied=\(entriesApplied)"
            + " snapshots=\(snapshotsTaken)/\(snapshotsInstalled) reads=\(readsServed)/\(readsFailed)"
            + " transfers=\(transfers) configChanges=\(configChanges) removed=\(membersRemoved)"
            + (oldTermCommitsByLeader > 0 ? " oldTermCommits=\(oldTermCommitsByLeader)" : "")
    }

    /// Adds another run's counters to these.
    public mutating func add(_ other: SimulationStatistics) {
        events += other.events; simulatedMicros += other.simulatedMicros; ticks += other.ticks
        messagesSent += other.messagesSent; messagesDelivered += other.messagesDelivered
        messagesDropped += other.messagesDropped; messagesDuplicated += other.messagesDuplicated
        crashes += other.crashes; tornWrites += other.tornWrites; lostWrites += other.lostWrites
        partitions += other.partitions; elections += other.elections; leaderChanges += other.leaderChanges
        syncs += other.syncs; proposals += other.proposals; proposalsRejected += other.proposalsRejected
        commitsAcknowledged += other.commitsAcknowledged; entriesApplied += other.entriesApplied
        snapshotsTaken += other.snapshotsTaken; snapshotsInstalled += other.snapshotsInstalled
        readsServed += other.readsServed; readsFailed += other.readsFailed; transfers += other.transfers
        configChanges += other.configChanges; membersRemoved += other.membersRemoved
        oldTermCommitsByLeader += other.oldTermCommitsByLeader
    }
}

/// The outcome of one run: statistics, the first violation if any, and the trace leading to it.
public struct SimulationReport: Sendable {
    /// The run's seed.
    public var seed: UInt64
    /// Voting members at the start.
    public var nodeCount: Int
    /// Counters.
    public var statistics: SimulationStatistics
    /// The first broken invariant, or nil if the run passed.
    public var violation: Violation?
    /// The last events before the end of the run, oldest first (rendered on failure only).
    public var trace: [String]
    /// A fingerprint of every event of the run: equal seeds must give equal fingerprints.
    public var fingerprint: UInt64

    /// Whether every invariant held.
    public var passed: Bool { violation == nil }
}
