import Logging
import NIOCore

/// A directed Raft link: node `from` dials node `to`. Our transport opens one TCP connection per
/// direction (docs/raft.md, "Transport"), so a link carries exactly `from`'s messages to `to`.
public struct Link: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var from: Int
    public var to: Int

    /// The link on which `from` sends to `to`.
    public init(from: Int, to: Int) {
        precondition(from != to, "a node has no link to itself")
        self.from = from
        self.to = to
    }

    public static func < (lhs: Link, rhs: Link) -> Bool { (lhs.from, lhs.to) < (rhs.from, rhs.to) }

    public var description: String { "\(from)->\(to)" }

    /// Every directed link among `nodes`.
    public static func all(among nodes: [Int]) -> [Link] {
        nodes.flatMap { from in nodes.filter { $0 != from }.map { Link(from: from, to: $0) } }
    }

    /// Every link between a node of `side` and a node outside it, both directions.
    public static func crossing(_ side: Set<Int>, among nodes: [Int]) -> [Link] {
        all(among: nodes).filter { side.contains($0.from) != side.contains($0.to) }
    }
}

/// One fault proxy per directed link of a cluster. Node i is started with the value of
/// `peerAddressArgument(for: i)` as `--peer-address`, so all of its Raft traffic to peer j goes
/// through the proxy of `i->j`.
public final class ProxyMesh: Sendable {
    /// The node ids.
    public let nodes: [Int]
    private let proxies: [Link: FaultProxy]
    private let ports: [Link: Int]

    private init(nodes: [Int], proxies: [Link: FaultProxy], ports: [Link: Int]) {
        self.nodes = nodes
        self.proxies = proxies
        self.ports = ports
    }

    /// Starts a proxy on a free 127.0.0.1 port for every directed link among the nodes of
    /// `raftPorts` (node id → its Raft port). Stops what it started if one cannot start.
    public static func start(raftPorts: [Int: Int], loop: any EventLoop, seed: UInt64, maxBufferedBytes: Int = 1 << 20,
                             logger: Logger) async throws -> ProxyMesh {
        let nodes = raftPorts.keys.sorted()
        var proxies: [Link: FaultProxy] = [:]
        var ports: [Link: Int] = [:]
        do {
            for (index, link) in Link.all(among: nodes).enumerated() {
                guard let target = raftPorts[link.to] else { continue }
                let proxy = FaultProxy(name: link.description, targetHost: "127.0.0.1", targetPort: target, loop: loop,
                                       maxBufferedBytes: maxBufferedBytes, seed: seed &+ UInt64(index) &* 0x1000_0001,
                                       logger: logger)
                proxies[link] = proxy
                ports[link] = try await proxy.start()
            }
        } catch {
            for proxy in proxies.values { await proxy.stop() }
            throw error
        }
        return ProxyMesh(nodes: nodes, proxies: proxies, ports: ports)
    }

    /// `--peer-address` for `node`: every peer at the port of this node's proxy to it.
    public func peerAddressArgument(for node: Int) -> String {
        nodes.filter { $0 != node }.compactMap { peer in
            ports[Link(from: node, to: peer)].map { "\(peer)=127.0.0.1:\($0)" }
        }.joined(separator: ",")
    }

    /// The proxy's port for `link`.
    public func port(of link: Link) -> Int? { ports[link] }

    /// Sets `faults` on each of `links` (other links keep theirs).
    public func apply(_ faults: LinkFaults, to links: [Link]) async {
        for link in links { await proxies[link]?.apply(faults) }
    }

    /// Every link back to pass.
    public func healAll() async {
        await apply(.pass, to: Array(proxies.keys))
    }

    /// The faults of every link that is not passing, in link order.
    public func faultedLinks() async -> [(Link, LinkFaults)] {
        var result: [(Link, LinkFaults)] = []
        for link in proxies.keys.sorted() {
            if let faults = await proxies[link]?.currentFaults(), !faults.isPass { result.append((link, faults)) }
        }
        return result
    }

    /// The counters of every link.
    public func statistics() async -> [Link: FaultProxy.Statistics] {
        var result: [Link: FaultProxy.Statistics] = [:]
        for (link, proxy) in proxies { result[link] = await proxy.currentStatistics() }
        return result
    }

    /// Stops every proxy.
    public func stop() async {
        for proxy in proxies.values { await proxy.stop() }
    }
}
