import BallastServer
import BallastWire
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// Real `ballast server` processes on 127.0.0.1 with free ports and temporary data directories,
/// killed and removed when the test ends.
final class ProcessCluster: @unchecked Sendable {
    struct Node {
        var id: Int
        var raftPort: Int
        var apiPort: Int
        var adminPort: Int
        var process: Process?
        /// Extra `ballast server` flags (e.g. `--join …`, snapshot thresholds).
        var extraArguments: [String] = []
    }

    let directory: String
    private(set) var nodes: [Int: Node] = [:]
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let binary: String
    /// Flags only node N gets (e.g. its own TLS certificate).
    let nodeArguments: @Sendable (Int) -> [String]
    /// TLS for the test's own admin requests (a TLS cluster's admin port requires it).
    let adminTLS: TLSClientOptions?

    /// `prepareDataDirectory` runs for each node's data directory before the node first starts
    /// (e.g. to mount a small file system there).
    init(size: Int, extraArguments: [String] = [], nodeArguments: @escaping @Sendable (Int) -> [String] = { _ in [] },
         adminTLS: TLSClientOptions? = nil, prepareDataDirectory: ((String) throws -> Void)? = nil) throws {
        self.nodeArguments = nodeArguments
        self.adminTLS = adminTLS
        binary = try Self.locateBinary()
        directory = NSTemporaryDirectory() + "ballast-cluster-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for id in 1 ... size {
            nodes[id] = Node(id: id, raftPort: try Self.freePort(), apiPort: try Self.freePort(), adminPort: try Self.freePort(),
                             extraArguments: extraArguments)
            try prepareDataDirectory?(directory + "/node-\(id)")
        }
        for id in 1 ... size { try start(id) }
    }

    /// The `ballast` binary: `$BALLAST_BIN`, else the debug build next to the tests.
    static func locateBinary() throws -> String {
        if let path = ProcessInfo.processInfo.environment["BALLAST_BIN"] { return path }
        var root = URL(fileURLWithPath: #filePath)
        while root.path != "/" && !FileManager.default.fileExists(atPath: root.appendingPathComponent("Package.swift").path) {
            root.deleteLastPathComponent()
        }
        let candidate = root.appendingPathComponent(".build/debug/ballast").path
        guard FileManager.default.isExecutableFile(atPath: candidate) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: candidate])
        }
        return candidate
    }

    /// A port nothing listens on right now, never handed out before in this test process, chosen
    /// **outside** the kernel's ephemeral range: a port from binding port 0 is an ephemeral one,
    /// which another process's outbound connection can take as its source port before our server
    /// binds it (a node then fails to start). Checking that a port binds is not enough on its own:
    /// a cluster picks all its ports before its first node starts, so two picks of the same free
    /// port would both pass the check.
    static func freePort() throws -> Int {
        let candidates = portCandidates()
        for _ in 0 ..< 500 {
            let port = Int.random(in: candidates)
            guard canBind(port) else { continue }
            let fresh = handedOut.withLock { $0.insert(port).inserted }
            if fresh { return port }
        }
        throw POSIXError(.EADDRINUSE)
    }

    /// A base port B, a multiple of 100, such that B … B+99 are all free and never handed out
    /// before in this process (the `cluster/` scripts derive their ports from a base like this).
    static func freePortBlock() throws -> Int {
        let candidates = portCandidates()
        let blocks = (candidates.lowerBound + 99) / 100 ..< candidates.upperBound / 100
        for _ in 0 ..< 200 where !blocks.isEmpty {
            let base = Int.random(in: blocks) * 100
            let ports = base ..< base + 100
            guard ports.allSatisfy(canBind) else { continue }
            let fresh = handedOut.withLock { taken in
                guard ports.allSatisfy({ !taken.contains($0) }) else { return false }
                taken.formUnion(ports)
                return true
            }
            if fresh { return base }
        }
        throw POSIXError(.EADDRINUSE)
    }

    private static func portCandidates() -> Range<Int> {
        let range = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? "32768 60999"
        let bounds = range.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).compactMap { Int($0) }
        let ephemeral = (bounds.first ?? 32768) ... (bounds.count > 1 ? bounds[1] : 60999)
        // The larger of the two stretches outside the ephemeral range (below it, from 10000, or
        // above it); the whole non-privileged range if the ephemeral one leaves too little.
        let below = 10_000 ..< max(10_000, ephemeral.lowerBound)
        let above = min(65_536, ephemeral.upperBound + 1) ..< 65_536
        var candidates = below.count >= above.count ? below : above
        if candidates.count < 2_000 { candidates = 10_000 ..< 65_536 }
        return candidates
    }

    /// Every port `freePort()` and `freePortBlock()` returned in this process: none is returned twice.
    private static let handedOut = Mutex<Set<Int>>([])

    private static func canBind(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port)).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    var peersFlag: String {
        nodes.keys.sorted().map { "\($0)=127.0.0.1:\(nodes[$0]!.raftPort)" }.joined(separator: ",")
    }

    func start(_ id: Int) throws {
        guard var node = nodes[id] else { return }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [
            "server", "--id", String(id), "--data-dir", directory + "/node-\(id)",
            "--raft", "127.0.0.1:\(node.raftPort)", "--api", "127.0.0.1:\(node.apiPort)",
            "--admin", "127.0.0.1:\(node.adminPort)", "--peers", peersFlag,
        ] + node.extraArguments + nodeArguments(id)
        let log = directory + "/node-\(id).log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        node.process = process
        nodes[id] = node
    }

    /// Gives node `id` free ports and starts it with `extraArguments` (e.g. `--join`).
    func addNode(_ id: Int, extraArguments: [String]) throws {
        nodes[id] = Node(id: id, raftPort: try Self.freePort(), apiPort: try Self.freePort(), adminPort: try Self.freePort(),
                         extraArguments: extraArguments)
        try start(id)
    }

    /// Forgets node `id` (after it was removed from the cluster and stopped).
    func forget(_ id: Int) {
        kill(id)
        nodes[id] = nil
    }

    /// SIGKILL, as a crash.
    func kill(_ id: Int) {
        guard let process = nodes[id]?.process else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        nodes[id]?.process = nil
    }

    /// SIGTERM and wait for a clean exit; returns the exit status.
    func stop(_ id: Int) -> Int32? {
        guard let process = nodes[id]?.process else { return nil }
        process.terminate()
        process.waitUntilExit()
        nodes[id]?.process = nil
        return process.terminationStatus
    }

    /// Runs the `ballast` binary with `arguments`; returns its exit status and combined output.
    func runCLI(_ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// The cluster as node `id` describes it, or nil if it does not answer.
    func view(from id: Int) async -> ClusterView? {
        guard let port = nodes[id]?.adminPort,
              let (code, body) = try? await AdminHTTPClient.get(host: "127.0.0.1", port: port, path: "/cluster",
                                                                timeout: .seconds(3), group: group, tls: adminTLS),
              code == 200 else { return nil }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try? decoder.decode(ClusterView.self, from: Data(body))
    }

    /// Node `id`'s `/status`, with the engine's state digest; nil if it does not answer.
    func status(of id: Int) async -> NodeStatus? {
        guard let port = nodes[id]?.adminPort,
              let (code, body) = try? await AdminHTTPClient.get(host: "127.0.0.1", port: port, path: "/status?digest=1",
                                                                timeout: .seconds(5), group: group, tls: adminTLS),
              code == 200 else { return nil }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try? decoder.decode(NodeStatus.self, from: Data(body))
    }

    /// Waits until some live node reports a leader other than `excluding`; returns its id.
    /// Fails at once, naming the node and its log, if a node that should run has exited.
    func waitForLeader(excluding: Int? = nil, timeout: Duration = .seconds(20)) async throws -> Int {
        let deadline = ContinuousClock.now + timeout
        // Looks until one that began after the deadline finds no leader (see `waitFor`).
        var lookBegan = ContinuousClock.now
        while lookBegan < deadline {
            lookBegan = ContinuousClock.now
            for (id, node) in nodes.sorted(by: { $0.key < $1.key }) where node.process?.isRunning == false {
                // The directory is removed when the test ends: say what the node said.
                let log = (try? String(contentsOfFile: directory + "/node-\(id).log", encoding: .utf8)) ?? ""
                let tail = log.split(separator: "\n").suffix(8).joined(separator: "\n")
                throw ClusterTestFailure("node \(id) exited with status \(node.process?.terminationStatus ?? -1); "
                                         + "the end of its log:\n\(tail)")
            }
            for id in nodes.keys.sorted() where nodes[id]?.process != nil {
                if let leader = await view(from: id)?.leader, let leaderID = Int(leader), leaderID != excluding,
                   nodes[leaderID]?.process != nil {
                    return leaderID
                }
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ClusterTestFailure("no leader within \(timeout); logs in \(directory)")
    }

    /// Node `id`'s `/metrics` as sample name (with labels) → value.
    func metrics(of id: Int) async throws -> [String: Double] {
        let (_, body) = try await AdminHTTPClient.get(host: "127.0.0.1", port: nodes[id]!.adminPort, path: "/metrics",
                                                      timeout: .seconds(5), group: group, tls: adminTLS)
        return WorkflowAPIProcessTests.samples(String(decoding: body, as: UTF8.self))
    }

    /// Waits until a leader reports that it writes eager entries (every member applies engine
    /// format 2), or that it does not when `active` is false; returns the leader's id.
    @discardableResult
    func waitForEagerDispatch(_ active: Bool = true, timeout: Duration = .seconds(10)) async throws -> Int {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let leader = try await waitForLeader(timeout: deadline - ContinuousClock.now)
            if let status = await status(of: leader), status.role == "leader", status.eagerDispatch == active { return leader }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ClusterTestFailure("no leader reported eager dispatch \(active ? "on" : "off") within \(timeout)")
    }

    /// SIGKILLs node `id` and starts it again (with what `nodeArguments` gives it now).
    func restart(_ id: Int) throws {
        kill(id)
        try start(id)
    }

    func shutdown() {
        for id in nodes.keys { kill(id) }
        try? group.syncShutdownGracefully()
        // BALLAST_KEEP_TEST_LOGS=1 keeps the data directories and logs for a post-mortem.
        if ProcessInfo.processInfo.environment["BALLAST_KEEP_TEST_LOGS"] == nil {
            try? FileManager.default.removeItem(atPath: directory)
        } else {
            print("kept cluster test logs in \(directory)")
        }
    }
}

struct ClusterTestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
