import BallastRaft

/// Runs deterministic simulations of Raft clusters: the real `RaftNode` cores with simulated
/// network, disks and clocks, all driven from one seed.
public enum Simulation {
    /// Runs one seed to completion (or to its first violation) and reports what happened.
    public static func run(_ options: SimulationOptions) -> SimulationReport {
        SimulationRun(options: options).execute()
    }
}

/// Something scheduled on the simulated timeline.
enum SimulationEvent {
    case tick(slot: Int, epoch: Int)
    case deliver(Message)
    case syncDone(slot: Int, epoch: Int)
    case restart(slot: Int, epoch: Int)
    case fault
    case healPartition(id: Int)
    case isolateIfLeader(slot: Int, term: Term)
    case propose
    case membershipStep
    case read
    case heal
    case livenessDeadline
    case stop
}

/// The state of one run. Single-threaded; every choice comes from `random`.
final class SimulationRun {
    let options: SimulationOptions
    var random: DeterministicRandom
    let profile: FaultProfile
    var nodes: [SimulatedNode] = []
    var queue = EventQueue<SimulationEvent>(capacity: 1 << 20)
    var now: UInt64 = 0
    var checker = InvariantChecker()
    var stats = SimulationStatistics()
    var trace: TraceRing
    var fingerprint = SimulationHash.initial
    var violation: Violation?
    /// `blocked[from][to]`: how many active partitions cut this directed link.
    var blocked: [[Int]]
    /// The directed links (from, to) each active partition cuts, by partition id (looked up, never iterated).
    var partitionLinks: [Int: [(Int, Int)]] = [:]
    /// `linkBusyUntil[from][to]`: arrival time of the latest in-order message on this link.
    var linkBusyUntil: [[UInt64]]
    var nextPartitionID = 0
    var healedAt: UInt64?
    var livenessMetAt: UInt64?
    var nextProposalID: UInt64 = 1
    var nextReadContext: UInt64 = 1
    var stopped = false
    /// Election timeout in nominal simulated microseconds (for sizing faults).
    var electionTimeoutMicros: UInt64

    init(options: SimulationOptions) {
        self.options = options
        random = DeterministicRandom(seed: SimulationHash.mix(SimulationHash.initial, options.seed))
        profile = FaultProfile(options: options, random: &random)
        trace = TraceRing(capacity: options.traceCapacity)
        var probe = RaftConfiguration(id: NodeID(1))
        options.configureRaft?(&probe)
        electionTimeoutMicros = UInt64(probe.electionTimeoutTicks) * options.tickMicros
        let slots = options.nodeCount + (profile.membershipChanges ? 1 : 0)
        blocked = Array(repeating: Array(repeating: 0, count: slots), count: slots)
        linkBusyUntil = Array(repeating: Array(repeating: 0, count: slots), count: slots)
        let voters = Membership(voters: (1...options.nodeCount).map { NodeID(UInt64($0)) })
        for slot in 0..<slots {
            let skew = profile.tickSkew == 0 ? 1.0 : Double.random(in: (1 - profile.tickSkew)...(1 + profile.tickSkew), using: &random)
            nodes.append(SimulatedNode(
                id: NodeID(UInt64(slot + 1)), slot: slot, bootstrap: voters, joinsLater: slot >= options.nodeCount,
                tickMicros: UInt64(Double(options.tickMicros) * skew)))
        }
    }

    /// Runs the event loop until the stop event, a violation or the event bound.
    func execute() -> SimulationReport {
        for node in nodes where !node.joinsLater { start(node) }
        schedule(.fault, after: nextFaultGap())
        schedule(.propose, after: random.micros(1_000...20_000))
        schedule(.read, after: random.micros(1_000...50_000))
        schedule(.heal, after: options.faultPhaseMicros)
        if profile.membershipChanges { schedule(.membershipStep, after: random.micros(100_000...1_000_000)) }
        while !stopped, violation == nil, let item = queue.pop() {
            now = item.time
            stats.events += 1
            if stats.events > options.maxEvents {
                fail(Violation(.contract, "more than \(options.maxEvents) events: a message storm or a livelock"))
                break
            }
            fingerprint = SimulationHash.mix(fingerprint, now)
            dispatch(item.payload)
        }
        return makeReport()
    }

    private func dispatch(_ event: SimulationEvent) {
        switch event {
        case .tick(let slot, let epoch): tick(nodes[slot], epoch: epoch)
        case .deliver(let message): deliver(message)
        case .syncDone(let slot, let epoch): syncCompleted(nodes[slot], epoch: epoch)
        case .restart(let slot, let epoch):
            let node = nodes[slot]
            if node.epoch == epoch && !node.isUp && !node.removed { start(node) }
        case .fault:
            performFault()
            if healedAt == nil { schedule(.fault, after: nextFaultGap()) }
        case .healPartition(let id): healPartition(id)
        case .propose:
            clientPropose()
            schedule(.propose, after: random.micros(1_000...profile.proposalGapMicros))
        case .read:
            clientRead()
            schedule(.read, after: random.micros(5_000...60_000))
        case .isolateIfLeader(let slot, let term):
            let node = nodes[slot]
            if healedAt == nil && node.isUp && node.lastRole == .leader && node.lastTerm == term { isolate(node, timeouts: 0...2) }
        case .membershipStep:
            changeMembership()
            if healedAt == nil { schedule(.membershipStep, after: random.micros(50_000...300_000)) }
        case .heal: heal()
        case .livenessDeadline: checkLiveness()
        case .stop: stopped = true
        }
    }

    private func tick(_ node: SimulatedNode, epoch: Int) {
        guard node.epoch == epoch, node.isUp else { return }
        fingerprint = SimulationHash.mix(fingerprint, UInt64(node.slot) << 8 | 1)
        stats.ticks += 1
        node.core?.tick()
        schedule(.tick(slot: node.slot, epoch: epoch), after: node.tickMicros)
        afterTurn(node)
    }

    /// Schedules `event` `delay` simulated microseconds from now.
    func schedule(_ event: SimulationEvent, after delay: UInt64) {
        queue.push(event, at: now + delay)
    }

    /// Records the first violation; the run stops after the current event.
    func fail(_ newViolation: Violation) {
        guard violation == nil else { return }
        violation = newViolation
        trace.record(.fault("VIOLATION \(newViolation)"), at: now)
    }

    /// Runs a checker call, turning a thrown violation into the run's violation.
    func check(_ body: () throws(Violation) -> Void) {
        guard violation == nil else { return }
        do { try body() } catch { fail(error) }
    }

    /// The node a client would talk to: the up node that last reported being leader in the highest term.
    func currentLeader() -> SimulatedNode? {
        var best: SimulatedNode?
        for node in nodes where node.isUp && node.lastRole == .leader {
            if best.map({ node.lastTerm > $0.lastTerm }) ?? true { best = node }
        }
        return best
    }

    /// The node with `id`, if it exists in this run.
    func node(_ id: NodeID) -> SimulatedNode? {
        let slot = Int(id.rawValue) - 1
        return slot >= 0 && slot < nodes.count ? nodes[slot] : nil
    }

    private func checkLiveness() {
        guard livenessMetAt == nil else { return }
        let roles = nodes.filter { $0.started && !$0.removed }
            .map { "\($0.id)=\($0.isUp ? "\($0.lastRole.rawValue)/\($0.lastTerm)" : "down")" }
            .joined(separator: " ")
        fail(Violation(.liveness, "no proposal made after healing at \(TraceRing.formatTime(healedAt ?? 0)) committed within \(TraceRing.formatTime(options.livenessBoundMicros)); nodes: \(roles)"))
    }

    private func makeReport() -> SimulationReport {
        stats.simulatedMicros = now
        stats.elections = checker.electedTerms
        var hash = fingerprint
        for value in [stats.messagesSent, stats.messagesDropped, stats.commitsAcknowledged, stats.entriesApplied, stats.crashes] {
            hash = SimulationHash.mix(hash, UInt64(value))
        }
        return SimulationReport(
            seed: options.seed, nodeCount: options.nodeCount, statistics: stats, violation: violation,
            trace: trace.lines(), fingerprint: hash)
    }
}
