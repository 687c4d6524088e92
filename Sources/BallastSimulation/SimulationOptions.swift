import BallastRaft

/// What one simulated run does; everything not given here is drawn from `seed`.
public struct SimulationOptions: Sendable {
    /// The seed every random choice of the run comes from.
    public var seed: UInt64
    /// Voting members at the start: 3 or 5.
    public var nodeCount: Int
    /// Simulated microseconds during which faults are injected.
    public var faultPhaseMicros: UInt64 = 5_000_000
    /// Simulated microseconds after healing within which a new proposal must commit.
    public var livenessBoundMicros: UInt64 = 3_000_000
    /// Nominal length of one tick; each node's own tick is skewed around it.
    public var tickMicros: UInt64 = 10_000
    /// Trace events kept for a failure report.
    public var traceCapacity: Int = 50
    /// Whether to add, promote and remove a member; nil lets the seed decide.
    public var membershipChanges: Bool?
    /// Whether to request leadership transfers; nil lets the seed decide.
    public var leadershipTransfers: Bool?
    /// Writes a Ready's hard state before its entries, as docs/raft.md (and the server's log writer)
    /// prescribed on 2026-11-25. Unsafe: a crash can keep the new commit index but lose the entries
    /// that replace a stale suffix, so the node applies uncommitted entries on restart. Kept to
    /// reproduce that bug (seed 497); the default writes entries first.
    public var hardStateBeforeEntries = false
    /// Upper bound on processed events, against runaway message storms.
    public var maxEvents: Int = 3_000_000
    /// Applied to every node's configuration after the seed's choices (e.g. to enable a test mutation).
    public var configureRaft: (@Sendable (inout RaftConfiguration) -> Void)?

    /// Creates options for one seed.
    public init(seed: UInt64, nodeCount: Int = 3) {
        precondition(nodeCount == 3 || nodeCount == 5, "the simulation runs 3- or 5-node clusters")
        self.seed = seed
        self.nodeCount = nodeCount
    }
}

/// The kinds of fault the schedule injects.
enum FaultKind: CaseIterable, Sendable {
    case isolateLeader, splitCluster, cutLinksOneWay, crashLeader, crashAny, crashAll, healPartitions
    case transferLeadership, changeMembership

    /// The sum of all weights.
    static let totalWeight = allCases.reduce(0) { $0 + $1.weight }

    /// Relative frequency when enabled: leader isolation dominates because it exposes figure 8.
    var weight: Int {
        switch self {
        case .isolateLeader: 30
        case .splitCluster: 12
        case .cutLinksOneWay: 8
        case .crashLeader: 12
        case .crashAny: 8
        case .crashAll: 3
        case .healPartitions: 7
        case .transferLeadership: 10
        case .changeMembership: 10
        }
    }
}

/// The faults and tunables of one run, drawn from its seed.
struct FaultProfile: Sendable {
    var lossProbability: Double
    var duplicateProbability: Double
    var minDelayMicros: UInt64
    var maxDelayMicros: UInt64
    var reorderProbability: Double
    var longDelayProbability: Double
    var tornWriteProbability: Double
    var diskLatencyMicros: ClosedRange<UInt64>
    var tickSkew: Double
    var meanFaultGapMicros: UInt64
    var proposalGapMicros: UInt64
    var membershipChanges: Bool
    var leadershipTransfers: Bool
    /// The fault kinds this seed uses (swarm testing: each seed a different mix).
    var enabledFaults: [FaultKind]
    /// Probability that a newly elected leader is cut off again moments later (leader churn, figure 8).
    var leaderChurnProbability: Double
    /// Probability that a leader is cut off right after it acknowledges a commit to a client, the
    /// moment an unsafe commit rule does the most damage.
    var isolateAfterAckProbability: Double
    var raft: RaftTunables

    /// Raft tunables varied per seed so small batches, small windows and tiny snapshots are exercised.
    struct RaftTunables: Sendable {
        var heartbeatIntervalTicks: Int
        var preVote: Bool
        var checkQuorum: Bool
        var maxEntriesPerAppend: Int
        var maxInflightAppends: Int
        var maxInflightBytes: Int
        var snapshotThresholdBytes: Int
        var compactionSlackEntries: Int
        var snapshotChunkBytes: Int
        var maxUncommittedBytes: Int

        func apply(to configuration: inout RaftConfiguration) {
            configuration.heartbeatIntervalTicks = heartbeatIntervalTicks
            configuration.preVote = preVote
            configuration.checkQuorum = checkQuorum
            configuration.maxEntriesPerAppend = maxEntriesPerAppend
            configuration.maxInflightAppends = maxInflightAppends
            configuration.maxInflightBytes = maxInflightBytes
            configuration.snapshotThresholdBytes = snapshotThresholdBytes
            configuration.compactionSlackEntries = compactionSlackEntries
            configuration.snapshotChunkBytes = snapshotChunkBytes
            configuration.maxUncommittedBytes = maxUncommittedBytes
        }
    }

    /// Draws a profile from `random`, honouring the explicit choices in `options`.
    init(options: SimulationOptions, random: inout DeterministicRandom) {
        lossProbability = random.pick([0, 0.01, 0.05, 0.15])
        duplicateProbability = random.pick([0, 0.01, 0.05])
        minDelayMicros = random.micros(100...2_000)
        maxDelayMicros = minDelayMicros + random.pick([1_000, 10_000, 40_000])
        reorderProbability = random.pick([0, 0.05, 0.3])
        longDelayProbability = random.pick([0.05, 0.2])
        tornWriteProbability = random.pick([0.5, 1])
        let diskMin = random.micros(50...500)
        diskLatencyMicros = diskMin...(diskMin + random.pick([200, 2_000, 20_000]))
        tickSkew = random.pick([0, 0.05, 0.2])
        meanFaultGapMicros = random.pick([60_000, 150_000, 400_000])
        proposalGapMicros = random.pick([5_000, 15_000, 40_000])
        membershipChanges = options.membershipChanges ?? random.chance(0.3)
        leadershipTransfers = options.leadershipTransfers ?? random.chance(0.5)
        leaderChurnProbability = random.pick([0.2, 0.6, 0.9])
        isolateAfterAckProbability = random.pick([0, 0.05, 0.2])
        var enabled: [FaultKind] = []
        for kind in FaultKind.allCases {
            let isEnabled = switch kind {
            case .transferLeadership: leadershipTransfers
            case .changeMembership: membershipChanges
            default: random.chance(0.7)
            }
            if isEnabled { enabled.append(kind) }
        }
        enabledFaults = enabled
        let maxEntriesPerAppend = random.pick([1, 2, 3, 8, 64])
        var tunables = DeterministicRandom(seed: SimulationHash.mix(SimulationHash.initial, options.seed ^ 0x5EED_7A6B_1E5B_7E55))
        raft = RaftTunables(
            heartbeatIntervalTicks: random.pick([1, 2, 3]),
            preVote: random.chance(0.8),
            checkQuorum: random.chance(0.8),
            maxEntriesPerAppend: maxEntriesPerAppend,
            // At least 16 entries per round trip, or a backlog of several stale terms cannot be
            // replicated within the liveness bound.
            maxInflightAppends: random.pick([1, 4, 16, 64].filter { $0 * maxEntriesPerAppend >= 16 }),
            // Drawn from a generator of its own, so the seeds keep the profiles and runs they had
            // before this tunable existed. 1,000 bytes still carry about 25 simulated entries.
            maxInflightBytes: tunables.pick([1_000, 8_000, .max]),
            snapshotThresholdBytes: random.pick([400, 1_500, 1 << 20]),
            compactionSlackEntries: random.pick([0, 5, 50]),
            snapshotChunkBytes: random.pick([24, 200, 4_096]),
            // Small enough that back-pressure, not the liveness bound, limits a stuck leader's backlog.
            maxUncommittedBytes: random.pick([600, 2_000]))
    }
}
