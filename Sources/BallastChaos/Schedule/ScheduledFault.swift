/// One fault of a chaos schedule: what, when it is injected, when it is healed, and the targets
/// fixed by the seed. Times are milliseconds from the start of the run.
public struct ScheduledFault: Sendable, Equatable, Codable {
    /// 1-based, in injection order.
    public var id: Int
    public var kind: FaultKind
    public var injectAtMilliseconds: Int64
    public var healAtMilliseconds: Int64
    /// The nodes chosen by the seed: the killed or frozen node (`kill-node`, `freeze-node`), the
    /// minority side (`split`), the link's sending and receiving node (`one-way-loss`), every node
    /// (`restart-cluster`). Empty for faults whose target is the leader of the moment
    /// (`kill-leader`, `isolate-leader`: resolved when injected) or every link (`latency`, `packet-drop`).
    public var nodes: [Int]
    /// The worker (0-based) for `kill-worker`.
    public var worker: Int?
    /// Added latency per chunk, for `latency`.
    public var latencyMilliseconds: Int?
    /// Chunks dropped per thousand, for `packet-drop`.
    public var dropPerMille: Int?

    /// A fault with every field given.
    public init(id: Int, kind: FaultKind, injectAtMilliseconds: Int64, healAtMilliseconds: Int64, nodes: [Int] = [],
                worker: Int? = nil, latencyMilliseconds: Int? = nil, dropPerMille: Int? = nil) {
        precondition(healAtMilliseconds > injectAtMilliseconds, "a fault is healed after it is injected")
        self.id = id
        self.kind = kind
        self.injectAtMilliseconds = injectAtMilliseconds
        self.healAtMilliseconds = healAtMilliseconds
        self.nodes = nodes
        self.worker = worker
        self.latencyMilliseconds = latencyMilliseconds
        self.dropPerMille = dropPerMille
    }

    /// How long the fault lasts.
    public var holdMilliseconds: Int64 { healAtMilliseconds - injectAtMilliseconds }

    /// Whether it takes nodes out of the quorum (down, frozen or cut off).
    public var disruptsNodes: Bool { kind.disruptsNodes }

    /// The fault and its targets in a few words, e.g. `split minority [3]`.
    public var summary: String {
        switch kind {
        case .killLeader: "kill-leader (the leader when injected)"
        case .isolateLeader: "isolate-leader (the leader when injected)"
        case .killNode: "kill-node \(nodes.map(String.init).joined(separator: ","))"
        case .freezeNode: "freeze-node \(nodes.map(String.init).joined(separator: ","))"
        case .splitMajority: "split minority [\(nodes.map(String.init).joined(separator: ","))]"
        case .oneWayLoss: "one-way-loss \(nodes.first.map(String.init) ?? "?")->\(nodes.last.map(String.init) ?? "?")"
        case .latency: "latency \(latencyMilliseconds ?? 0) ms on every link"
        case .packetDrop: "packet-drop \(dropPerMille ?? 0)‰ of chunks on every link"
        case .killWorker: "kill-worker \(worker.map(String.init) ?? "?")"
        case .restartCluster: "restart-cluster"
        }
    }
}

/// One step of a schedule: inject or heal a fault at a time.
public struct ChaosAction: Sendable, Equatable {
    public enum Step: String, Sendable, Equatable, Codable {
        case inject, heal
    }

    /// Milliseconds from the start of the run.
    public var atMilliseconds: Int64
    public var step: Step
    public var fault: ScheduledFault
}

extension FaultKind {
    /// Whether this fault takes nodes out of the quorum.
    public var disruptsNodes: Bool {
        switch self {
        case .killLeader, .killNode, .freezeNode, .isolateLeader, .splitMajority, .oneWayLoss, .restartCluster: true
        case .latency, .packetDrop, .killWorker: false
        }
    }
}
