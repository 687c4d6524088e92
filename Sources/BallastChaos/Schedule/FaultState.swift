/// What a fault does once its targets are known.
public enum FaultEffect: Sendable, Equatable, CustomStringConvertible {
    /// SIGKILL these nodes; restart them on heal.
    case killNodes([Int])
    /// SIGSTOP these nodes; SIGCONT on heal.
    case freezeNodes([Int])
    /// These faults on these links; removed on heal.
    case links([Link], LinkFaults)
    /// SIGKILL this worker; start a new one in its place on heal.
    case killWorker(Int)

    public var description: String {
        switch self {
        case .killNodes(let nodes): "SIGKILL node\(nodes.count == 1 ? "" : "s") \(nodes.map(String.init).joined(separator: ","))"
        case .freezeNodes(let nodes): "SIGSTOP node\(nodes.count == 1 ? "" : "s") \(nodes.map(String.init).joined(separator: ","))"
        case .links(let links, let faults):
            "\(faults) on \(links.count == 1 ? "link" : "\(links.count) links") \(links.map(\.description).joined(separator: " "))"
        case .killWorker(let worker): "SIGKILL worker \(worker)"
        }
    }
}

/// The faults in force during a run, and what follows from them: which nodes are disrupted, what
/// each link must do. Pure: the runner asks it, then does the I/O.
public struct FaultState: Sendable {
    /// A fault in force.
    public struct Active: Sendable, Equatable {
        public var id: Int
        public var effect: FaultEffect
        /// Nodes this fault takes out of the quorum.
        public var disrupted: Set<Int>
    }

    /// The node ids.
    public let nodes: [Int]
    public private(set) var active: [Active] = []

    /// No fault in force among `nodes`.
    public init(nodes: [Int]) {
        precondition(!nodes.isEmpty, "a cluster has nodes")
        self.nodes = nodes
    }

    /// Nodes down, frozen or cut off by some fault in force.
    public var disrupted: Set<Int> { active.reduce(into: []) { $0.formUnion($1.disrupted) } }

    /// Whether a fault in force slows or breaks every link without taking a node out (latency,
    /// packet drop): nodes may not become ready while it lasts, however long one waits.
    public var degradesEveryLink: Bool {
        active.contains { fault in
            guard case .links(let links, _) = fault.effect else { return false }
            return fault.disrupted.isEmpty && Set(links) == Set(Link.all(among: nodes))
        }
    }

    /// Nodes killed by a fault in force (they must be restarted when it heals).
    public var down: Set<Int> {
        active.reduce(into: []) { result, fault in if case .killNodes(let nodes) = fault.effect { result.formUnion(nodes) } }
    }

    /// What `fault` does, given the leader of the moment (nil: none known) and what is already
    /// disrupted. A target that is already disrupted is replaced by the first undisrupted node
    /// after it, so one fault never hides behind another. Returns the effect and the nodes it disrupts.
    public func resolve(_ fault: ScheduledFault, leader: Int?) -> (effect: FaultEffect, disrupted: Set<Int>) {
        let taken = disrupted
        func available(_ preferred: Int?) -> Int {
            if let preferred, !taken.contains(preferred) { return preferred }
            let start = preferred ?? nodes[fault.id % nodes.count]
            let ordered = nodes.filter { $0 > start } + nodes.filter { $0 <= start }
            return ordered.first { !taken.contains($0) } ?? start
        }
        switch fault.kind {
        case .killLeader:
            let node = available(leader)
            return (.killNodes([node]), [node])
        case .killNode:
            let node = available(fault.nodes.first)
            return (.killNodes([node]), [node])
        case .freezeNode:
            let node = available(fault.nodes.first)
            return (.freezeNodes([node]), [node])
        case .isolateLeader:
            let node = available(leader)
            return (.links(Link.crossing([node], among: nodes), .cutOff), [node])
        case .splitMajority:
            let minority = Set(fault.nodes)
            return (.links(Link.crossing(minority, among: nodes), .cutOff), minority)
        case .oneWayLoss:
            let from = fault.nodes.first ?? nodes[0]
            let to = fault.nodes.last ?? nodes[1]
            return (.links([Link(from: from, to: to)], .cutOff), [to])
        case .latency:
            return (.links(Link.all(among: nodes), LinkFaults(latency: .milliseconds(fault.latencyMilliseconds ?? 0))), [])
        case .packetDrop:
            return (.links(Link.all(among: nodes), LinkFaults(dropProbability: Double(fault.dropPerMille ?? 0) / 1000)), [])
        case .killWorker:
            return (.killWorker(fault.worker ?? 0), [])
        case .restartCluster:
            return (.killNodes(nodes), Set(nodes))
        }
    }

    /// Records a fault as in force.
    public mutating func add(id: Int, effect: FaultEffect, disrupted: Set<Int>) {
        precondition(!active.contains { $0.id == id }, "fault #\(id) is already in force")
        active.append(Active(id: id, effect: effect, disrupted: disrupted))
    }

    /// Removes a fault; returns it if it was in force.
    @discardableResult
    public mutating func remove(id: Int) -> Active? {
        guard let index = active.firstIndex(where: { $0.id == id }) else { return nil }
        return active.remove(at: index)
    }

    /// What every link must do now: the faults in force combined (cut if any cuts it, the
    /// largest latency, the largest drop probability).
    public var linkFaults: [Link: LinkFaults] {
        var result = Dictionary(uniqueKeysWithValues: Link.all(among: nodes).map { ($0, LinkFaults.pass) })
        for fault in active {
            guard case .links(let links, let faults) = fault.effect else { continue }
            for link in links {
                var combined = result[link] ?? .pass
                combined.cut = combined.cut || faults.cut
                combined.latency = max(combined.latency, faults.latency)
                combined.dropProbability = max(combined.dropProbability, faults.dropProbability)
                result[link] = combined
            }
        }
        return result
    }
}
