/// The seeded fault schedule of a chaos run (docs/reliability.md, "cluster/chaos"): a pure
/// function of its parameters, so a seed reproduces the run's faults.
///
/// Rules:
/// * Faults are drawn in rounds: each round is a seeded shuffle of the enabled kinds, so every
///   enabled kind comes up once the run is long enough, in an order the seed decides. A kind that
///   cannot start at its turn (the rules below) waits for the next slot; a slot where no remaining
///   kind can start stays empty.
/// * At most a minority of the nodes is disrupted (down, frozen, or cut off) at any moment: each
///   node fault counts its nodes (`split` its minority side, the others one) against a budget of
///   ⌊(n−1)/2⌋. `restart-cluster` is the one exception: it starts only when no other node fault is
///   active, and none starts while it is.
/// * A node fault starts only `settleMilliseconds` after the previous node fault healed, so the
///   healed node has a moment to rejoin.
/// * One `latency` and one `packet-drop` at a time; at most `workers − 1` workers down at once.
public struct ChaosSchedule: Sendable, Equatable {
    /// What the schedule is drawn from.
    public struct Parameters: Sendable, Equatable {
        public var seed: UInt64
        public var durationMilliseconds: Int64
        public var nodeCount: Int
        public var workerCount: Int
        /// The kinds to draw from (all by default).
        public var faults: [FaultKind]
        /// No fault before this (the cluster and the load start up).
        public var warmUpMilliseconds: Int64 = 3_000
        /// Time between two injection slots, drawn from this range.
        public var gapMilliseconds: ClosedRange<Int64> = 1_000 ... 3_000
        /// How long a fault is held, drawn from this range (a restart of the whole cluster is held
        /// half as long).
        public var holdMilliseconds: ClosedRange<Int64> = 2_000 ... 6_000
        /// Quiet time after a node fault heals before the next one starts.
        public var settleMilliseconds: Int64 = 2_000

        /// Parameters with the default timings.
        public init(seed: UInt64, durationMilliseconds: Int64, nodeCount: Int, workerCount: Int,
                    faults: [FaultKind] = FaultKind.allCases) {
            self.seed = seed
            self.durationMilliseconds = durationMilliseconds
            self.nodeCount = nodeCount
            self.workerCount = workerCount
            self.faults = faults
        }

        /// Why these parameters cannot make a schedule, or nil.
        public var problem: String? {
            if nodeCount < 3 { return "a chaos run needs at least 3 nodes (got \(nodeCount))" }
            if workerCount < 1 { return "a chaos run needs at least 1 worker (got \(workerCount))" }
            if durationMilliseconds <= 0 { return "the duration must be positive" }
            if faults.isEmpty { return "no fault kinds enabled" }
            if gapMilliseconds.lowerBound <= 0 || holdMilliseconds.lowerBound <= 0 { return "gaps and holds must be positive" }
            return nil
        }

        /// How many nodes may be disrupted at once.
        public var disruptionBudget: Int { (nodeCount - 1) / 2 }
    }

    public let parameters: Parameters
    /// The faults in injection order.
    public let faults: [ScheduledFault]

    /// Draws the schedule of `parameters` (which must have no `problem`).
    public init(_ parameters: Parameters) {
        precondition(parameters.problem == nil, parameters.problem ?? "")
        self.parameters = parameters
        var drawer = ScheduleDrawer(parameters)
        faults = drawer.draw()
    }

    /// Every inject and heal, in time order (a heal before an inject at the same time).
    public var actions: [ChaosAction] {
        let steps = faults.flatMap { fault in
            [ChaosAction(atMilliseconds: fault.injectAtMilliseconds, step: .inject, fault: fault),
             ChaosAction(atMilliseconds: fault.healAtMilliseconds, step: .heal, fault: fault)]
        }
        return steps.sorted { lhs, rhs in
            if lhs.atMilliseconds != rhs.atMilliseconds { return lhs.atMilliseconds < rhs.atMilliseconds }
            if lhs.step != rhs.step { return lhs.step == .heal }
            return lhs.fault.id < rhs.fault.id
        }
    }

    /// How many faults of each kind.
    public var countsByKind: [FaultKind: Int] {
        faults.reduce(into: [:]) { $0[$1.kind, default: 0] += 1 }
    }

    /// The schedule as printed at the start of a run.
    public var lines: [String] {
        let p = parameters
        var lines = ["schedule: seed \(p.seed), \(Self.seconds(p.durationMilliseconds)), \(p.nodeCount) nodes, "
            + "\(p.workerCount) workers, faults \(p.faults.map(\.rawValue).joined(separator: ",")): \(faults.count) faults"]
        for fault in faults {
            lines.append("  #\(fault.id) at \(Self.seconds(fault.injectAtMilliseconds)) for "
                + "\(Self.seconds(fault.holdMilliseconds)): \(fault.summary)")
        }
        return lines
    }

    /// `12.3s`.
    public static func seconds(_ milliseconds: Int64) -> String {
        "\(milliseconds / 1000).\((milliseconds % 1000) / 100)s"
    }
}

/// The drawing itself: walks the slots, keeps what is active, applies the rules.
private struct ScheduleDrawer {
    let parameters: ChaosSchedule.Parameters
    var random: ChaosRandom
    var round: [FaultKind] = []
    var active: [ScheduledFault] = []
    var lastNodeHealMilliseconds: Int64 = .min
    var faults: [ScheduledFault] = []

    init(_ parameters: ChaosSchedule.Parameters) {
        self.parameters = parameters
        random = ChaosRandom(seed: parameters.seed)
    }

    var nodes: [Int] { Array(1 ... parameters.nodeCount) }

    mutating func draw() -> [ScheduledFault] {
        var now = parameters.warmUpMilliseconds
        let end = parameters.durationMilliseconds
        while true {
            now += draw(in: parameters.gapMilliseconds)
            guard now + parameters.holdMilliseconds.lowerBound / 2 <= end else { break }
            retire(before: now)
            if round.isEmpty { round = random.shuffled(parameters.faults) }
            guard let index = round.firstIndex(where: { canStart($0, at: now) }) else { continue }
            let kind = round.remove(at: index)
            var hold = draw(in: parameters.holdMilliseconds)
            if kind == .restartCluster { hold = max(500, hold / 2) }
            let fault = makeFault(kind, id: faults.count + 1, at: now, healAt: min(end, now + hold))
            faults.append(fault)
            active.append(fault)
        }
        return faults
    }

    mutating func draw(in range: ClosedRange<Int64>) -> Int64 {
        range.lowerBound + Int64(random.next() % UInt64(range.upperBound - range.lowerBound + 1))
    }

    /// Drops the faults healed by `now`, remembering when the last node fault healed.
    mutating func retire(before now: Int64) {
        for fault in active where fault.healAtMilliseconds <= now && fault.disruptsNodes {
            lastNodeHealMilliseconds = max(lastNodeHealMilliseconds, fault.healAtMilliseconds)
        }
        active.removeAll { $0.healAtMilliseconds <= now }
    }

    func weight(_ kind: FaultKind) -> Int {
        switch kind {
        case .splitMajority: parameters.disruptionBudget
        case .restartCluster: parameters.nodeCount
        case .killLeader, .killNode, .freezeNode, .isolateLeader, .oneWayLoss: 1
        case .latency, .packetDrop, .killWorker: 0
        }
    }

    func canStart(_ kind: FaultKind, at now: Int64) -> Bool {
        let activeNodeFaults = active.filter(\.disruptsNodes)
        if kind.disruptsNodes {
            if now < lastNodeHealMilliseconds + parameters.settleMilliseconds { return false }
            if activeNodeFaults.contains(where: { $0.kind == .restartCluster }) { return false }
            if kind == .restartCluster { return activeNodeFaults.isEmpty }
            let used = activeNodeFaults.reduce(0) { $0 + weight($1.kind) }
            return used + weight(kind) <= parameters.disruptionBudget
        }
        switch kind {
        case .latency, .packetDrop: return !active.contains { $0.kind == kind }
        case .killWorker: return active.filter { $0.kind == .killWorker }.count < parameters.workerCount - 1
        default: return false
        }
    }

    /// Nodes no active schedule-time node fault has taken.
    var untouchedNodes: [Int] {
        let taken = Set(active.filter(\.disruptsNodes).flatMap(\.nodes))
        return nodes.filter { !taken.contains($0) }
    }

    mutating func makeFault(_ kind: FaultKind, id: Int, at now: Int64, healAt: Int64) -> ScheduledFault {
        var fault = ScheduledFault(id: id, kind: kind, injectAtMilliseconds: now, healAtMilliseconds: max(healAt, now + 1))
        switch kind {
        case .killNode, .freezeNode:
            fault.nodes = [pick(untouchedNodes)]
        case .splitMajority:
            fault.nodes = Array(random.shuffled(nodes).prefix(parameters.disruptionBudget)).sorted()
        case .oneWayLoss:
            let from = pick(untouchedNodes)
            fault.nodes = [from, pick(untouchedNodes.filter { $0 != from })]
        case .restartCluster:
            fault.nodes = nodes
        case .killWorker:
            let down = Set(active.compactMap(\.worker))
            fault.worker = pick(Array(0 ..< parameters.workerCount).filter { !down.contains($0) })
        case .latency:
            fault.latencyMilliseconds = Int(draw(in: 20 ... 200))
        case .packetDrop:
            fault.dropPerMille = Int(draw(in: 5 ... 50))
        case .killLeader, .isolateLeader:
            break
        }
        return fault
    }

    mutating func pick(_ candidates: [Int]) -> Int {
        precondition(!candidates.isEmpty, "the budget leaves a node to pick")
        return candidates[Int(random.next() % UInt64(candidates.count))]
    }
}
