import BallastServer
import BallastWire
import Foundation
import NIOCore
import Synchronization

/// The `ballast server` processes of a chaos run: node i listens on its own Raft, API and admin
/// ports and dials each peer j through the proxy of link i->j (`--peer-address`).
public final class ChaosCluster: Sendable {
    /// One node's fixed ports.
    public struct Ports: Sendable, Equatable {
        public var raft: Int
        public var api: Int
        public var admin: Int
    }

    /// What a node says about itself at `/status` (the fields the run needs).
    public struct Probe: Sendable, Decodable, Equatable {
        public var role: String
        public var term: UInt64
        public var leader: String?
        public var commit: UInt64
        public var applied: UInt64
    }

    public let nodes: [Int]
    public let ports: [Int: Ports]
    let binary: String
    let directory: String
    let logLevel: String
    let extraServerArguments: [String]
    /// Flags only node N gets (its TLS certificate).
    let nodeArguments: [Int: [String]]
    /// What the probes of the admin ports present (a TLS node's admin port requires a certificate).
    let adminTLS: TLSClientOptions?
    let group: any EventLoopGroup
    private let processes = Mutex<[Int: ChildProcess]>([:])
    private let frozen = Mutex<Set<Int>>([])
    private let peerAddresses: [Int: String]

    /// A cluster of `ports.count` nodes (not started yet); `peerAddresses` is each node's
    /// `--peer-address` value; `nodeArguments[N]` are flags for node N alone.
    public init(binary: String, directory: String, ports: [Int: Ports], peerAddresses: [Int: String], logLevel: String,
                extraServerArguments: [String] = [], nodeArguments: [Int: [String]] = [:], adminTLS: TLSClientOptions? = nil,
                group: any EventLoopGroup) {
        self.nodes = ports.keys.sorted()
        self.ports = ports
        self.binary = binary
        self.directory = directory
        self.peerAddresses = peerAddresses
        self.logLevel = logLevel
        self.extraServerArguments = extraServerArguments
        self.nodeArguments = nodeArguments
        self.adminTLS = adminTLS
        self.group = group
    }

    public var apiEndpoints: [String] { nodes.compactMap { ports[$0].map { "127.0.0.1:\($0.api)" } } }
    public var adminEndpoints: [String] { nodes.compactMap { ports[$0].map { "127.0.0.1:\($0.admin)" } } }

    public func nodeDirectory(_ node: Int) -> String { directory + "/node-\(node)" }
    public func logPath(_ node: Int) -> String { nodeDirectory(node) + "/log" }

    /// Starts node `node` from its data directory (a no-op if it runs).
    public func start(_ node: Int) throws {
        guard let port = ports[node] else { throw ChaosRunError.cannotStart("node \(node)", "no such node") }
        if let running = processes.withLock({ $0[node] }), running.isRunning { return }
        try FileManager.default.createDirectory(atPath: nodeDirectory(node) + "/data", withIntermediateDirectories: true)
        let peers = nodes.compactMap { id in ports[id].map { "\(id)=127.0.0.1:\($0.raft)" } }.joined(separator: ",")
        var arguments = [
            "server", "--id", String(node), "--data-dir", nodeDirectory(node) + "/data",
            "--raft", "127.0.0.1:\(port.raft)", "--api", "127.0.0.1:\(port.api)", "--admin", "127.0.0.1:\(port.admin)",
            "--peers", peers, "--log-level", logLevel,
        ]
        if let override = peerAddresses[node], !override.isEmpty { arguments += ["--peer-address", override] }
        arguments += extraServerArguments + (nodeArguments[node] ?? [])
        let child = try ChildProcesses.shared.spawn(name: "node \(node)", executable: binary, arguments: arguments,
                                                    logPath: logPath(node))
        processes.withLock { $0[node] = child }
        frozen.withLock { _ = $0.remove(node) }
    }

    /// SIGKILL node `node` and wait until it is gone.
    public func kill(_ node: Int) async {
        guard let child = processes.withLock({ $0.removeValue(forKey: node) }) else { return }
        await child.killAndWait()
        frozen.withLock { _ = $0.remove(node) }
    }

    /// SIGSTOP node `node`.
    public func freeze(_ node: Int) {
        guard let child = processes.withLock({ $0[node] }) else { return }
        child.send(SIGSTOP)
        frozen.withLock { _ = $0.insert(node) }
    }

    /// SIGCONT node `node`.
    public func thaw(_ node: Int) {
        guard let child = processes.withLock({ $0[node] }) else { return }
        child.send(SIGCONT)
        frozen.withLock { _ = $0.remove(node) }
    }

    /// Nodes whose process we started and that exited without being killed by the run, with the status.
    public var unexpectedExits: [(node: Int, status: Int32)] {
        processes.withLock { map in map.compactMap { node, child in child.exitStatus.map { (node, $0) } } }.sorted { $0.node < $1.node }
    }

    /// Whether node `node` runs (started and not exited).
    public func isRunning(_ node: Int) -> Bool { processes.withLock { $0[node]?.isRunning ?? false } }

    /// Node `node`'s `/status`, nil if it does not answer within `timeout`.
    public func probe(_ node: Int, timeout: Duration = .milliseconds(500)) async -> Probe? {
        guard let port = ports[node]?.admin,
              let (code, body) = try? await AdminHTTPClient.get(host: "127.0.0.1", port: port, path: "/status",
                                                                timeout: timeout, group: group, tls: adminTLS),
              code == 200 else { return nil }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try? decoder.decode(Probe.self, from: Data(body))
    }

    /// Whether node `node` answers `/readyz` with 200: it knows a leader and has applied what it
    /// knows is committed (a restarted node replaying its log is not ready).
    public func isReady(_ node: Int, timeout: Duration = .milliseconds(500)) async -> Bool {
        guard isRunning(node), let port = ports[node]?.admin,
              let (code, _) = try? await AdminHTTPClient.get(host: "127.0.0.1", port: port, path: "/readyz",
                                                             timeout: timeout, group: group, tls: adminTLS) else { return false }
        return code == 200
    }

    /// Waits until every node outside `excluding` is ready; returns those still not ready at the deadline.
    public func waitUntilReady(excluding: Set<Int>, timeout: Duration) async -> [Int] {
        let deadline = ContinuousClock.now + timeout
        var pending = nodes.filter { !excluding.contains($0) }
        repeat {
            var still: [Int] = []
            for node in pending where !(await isReady(node)) { still.append(node) }
            pending = still
            if pending.isEmpty { return [] }
            try? await Task.sleep(for: .milliseconds(200))
        } while ContinuousClock.now < deadline
        return pending
    }

    /// The leader as the nodes outside `excluding` see it: the node among them that reports itself
    /// leader in the highest term. Nil if none does within `timeout`.
    public func leader(excluding: Set<Int> = [], timeout: Duration) async -> Int? {
        let deadline = ContinuousClock.now + timeout
        repeat {
            var best: (node: Int, term: UInt64)?
            for node in nodes where !excluding.contains(node) && isRunning(node) {
                if let probe = await probe(node), probe.role == "leader", probe.term > best?.term ?? 0 {
                    best = (node, probe.term)
                }
            }
            if let best { return best.node }
            try? await Task.sleep(for: .milliseconds(50))
        } while ContinuousClock.now < deadline
        return nil
    }

    /// Waits until every node answers and agrees on one leader; returns it, or nil at the deadline.
    public func waitForAgreedLeader(timeout: Duration) async -> Int? {
        let deadline = ContinuousClock.now + timeout
        repeat {
            var leaders: Set<String> = []
            var answered = 0
            for node in nodes {
                guard let probe = await probe(node), let leader = probe.leader else { break }
                answered += 1
                leaders.insert(leader)
            }
            if answered == nodes.count, leaders.count == 1, let leader = leaders.first.flatMap({ Int($0) }) { return leader }
            try? await Task.sleep(for: .milliseconds(100))
        } while ContinuousClock.now < deadline
        return nil
    }

    /// SIGKILL every node.
    public func killAll() async {
        for node in nodes { await kill(node) }
    }
}
