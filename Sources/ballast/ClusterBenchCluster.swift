import ArgumentParser
import BallastServer
import Foundation
import NIOPosix
import Synchronization

/// Three (or more) `ballast server` processes of this same binary on free 127.0.0.1 ports, each
/// with its own data directory and log under one temporary directory. `shutdown()` kills every
/// node it started; so do SIGINT and SIGTERM while it is alive (see `BenchChildren`).
final class BenchCluster: @unchecked Sendable {
    struct Member {
        var id: Int
        var raftPort: Int
        var apiPort: Int
        var adminPort: Int
        var process: Process?

        var apiAddress: String { "127.0.0.1:\(apiPort)" }
    }

    let directory: String
    let binary: String
    private let removeDirectory: Bool
    private let logLevel: String
    /// Mutual TLS on every node's ports (`--tls`); nil: cleartext.
    let tls: BenchTLS?
    private let lock = NSLock()
    private var members: [Int: Member] = [:]
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    /// Starts `size` nodes; throws (after killing what it started) if a port cannot be found or a node cannot run.
    init(size: Int, binary: String, dataDirectory: String?, logLevel: String, tls: Bool = false) throws {
        precondition(size >= 1, "a cluster has at least one node")
        self.binary = binary
        self.logLevel = logLevel
        if let dataDirectory {
            directory = dataDirectory
            removeDirectory = false
        } else {
            directory = NSTemporaryDirectory() + "ballast-bench-cluster-\(getpid())-\(UInt32.random(in: 0 ... .max))"
            removeDirectory = true
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        self.tls = tls ? try BenchTLS(directory: directory + "/tls", nodes: Array(1 ... size)) : nil
        var used: Set<Int> = []
        for id in 1 ... size {
            let ports = try (0 ..< 3).map { _ in try BenchPorts.free(excluding: &used) }
            members[id] = Member(id: id, raftPort: ports[0], apiPort: ports[1], adminPort: ports[2])
        }
        do {
            for id in 1 ... size { try start(id) }
        } catch {
            shutdown()
            throw error
        }
    }

    var ids: [Int] { lock.withLock { members.keys.sorted() } }

    func member(_ id: Int) -> Member? { lock.withLock { members[id] } }

    var apiAddresses: [String] { ids.compactMap { member($0)?.apiAddress } }

    /// Process ids of the running nodes, by node id.
    var pids: [(Int, Int32)] {
        lock.withLock { members.keys.sorted().compactMap { id in members[id]?.process.map { (id, $0.processIdentifier) } } }
    }

    private var peersFlag: String {
        members.keys.sorted().map { "\($0)=127.0.0.1:\(members[$0]?.raftPort ?? 0)" }.joined(separator: ",")
    }

    /// Starts node `id` (again), keeping its data directory; its output goes to `node-ID.log`.
    func start(_ id: Int) throws {
        try lock.withLock {
            guard var member = members[id], member.process == nil else { return }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = [
                "server", "--id", String(id), "--data-dir", directory + "/node-\(id)",
                "--raft", "127.0.0.1:\(member.raftPort)", "--api", member.apiAddress,
                "--admin", "127.0.0.1:\(member.adminPort)", "--peers", peersFlag, "--log-level", logLevel,
            ] + (tls?.serverFlags(id) ?? [])
            let logPath = directory + "/node-\(id).log"
            if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
            let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
            log.seekToEndOfFile()
            process.standardOutput = log
            process.standardError = log
            process.standardInput = FileHandle.nullDevice
            try process.run()
            try? log.close()
            BenchChildren.shared.add(process.processIdentifier)
            member.process = process
            members[id] = member
        }
    }

    /// SIGKILL node `id` (a crash) and reap it.
    func kill(_ id: Int) {
        guard let process = lock.withLock({ () -> Process? in
            let process = members[id]?.process
            members[id]?.process = nil
            return process
        }) else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        BenchChildren.shared.remove(process.processIdentifier)
    }

    /// Throws, naming its log, if a node that should be running has exited.
    func checkAlive() throws {
        for id in ids {
            guard let process = member(id)?.process, !process.isRunning else { continue }
            throw ValidationError("node \(id) exited with status \(process.terminationStatus); see \(directory)/node-\(id).log")
        }
    }

    /// Node `id`'s `/status`, nil if it does not answer within `timeout`.
    func status(of id: Int, timeout: Duration = .milliseconds(500)) async -> NodeStatus? {
        guard let port = member(id)?.adminPort,
              let (code, body) = try? await AdminHTTPClient.get(host: "127.0.0.1", port: port, path: "/status",
                                                                timeout: timeout, group: group, tls: tls?.client),
              code == 200 else { return nil }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try? decoder.decode(NodeStatus.self, from: Data(body))
    }

    /// Waits until a running node other than `excluding` reports itself leader; returns its id and status.
    func waitForLeader(excluding: Int? = nil, timeout: Duration) async throws -> (id: Int, status: NodeStatus) {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            try checkAlive()
            for id in ids where id != excluding && member(id)?.process != nil {
                if let status = await status(of: id), status.role == "leader" { return (id, status) }
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw ValidationError("no leader within \(timeout); node logs are in \(directory)")
    }

    /// Waits until every running node answers `/status` and knows a leader (a node may still be
    /// starting when another is already leader, on a loaded machine by seconds).
    func waitForAllUp(timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            try checkAlive()
            var allUp = true
            for id in ids where member(id)?.process != nil {
                guard let status = await status(of: id), status.leader != nil else { allUp = false; break }
            }
            if allUp { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw ValidationError("not every node was up with a leader within \(timeout); node logs are in \(directory)")
    }

    /// Waits until node `id` knows a leader and has applied at least `index` (the leader may have
    /// changed meanwhile: on a loaded machine the restarted node sometimes wins the next election).
    func waitForCatchUp(_ id: Int, index: UInt64, timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            try checkAlive()
            if let status = await status(of: id), status.leader != nil, status.applied >= index { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw ValidationError("node \(id) did not catch up to index \(index) within \(timeout); see \(directory)/node-\(id).log")
    }

    /// Kills every node, then removes the directory unless it was given or `keep` is set.
    func shutdown(keep: Bool = false) {
        for id in ids { kill(id) }
        try? group.syncShutdownGracefully()
        if removeDirectory && !keep { try? FileManager.default.removeItem(atPath: directory) }
    }
}

/// Every server process this benchmark started and has not reaped, so that SIGINT or SIGTERM
/// can kill them before the benchmark exits (a benchmark must never leave nodes behind).
final class BenchChildren: Sendable {
    static let shared = BenchChildren()
    private let pids = Mutex<Set<Int32>>([])
    private let installed = Mutex(false)

    func add(_ pid: Int32) { pids.withLock { _ = $0.insert(pid) } }
    func remove(_ pid: Int32) { pids.withLock { _ = $0.remove(pid) } }

    /// On SIGINT or SIGTERM: SIGKILL every child still registered, then exit 130 / 143.
    func installSignalHandlers() {
        guard installed.withLock({ let first = !$0; $0 = true; return first }) else { return }
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { [self] in
                let children = pids.withLock { $0 }
                for pid in children { Foundation.kill(pid, SIGKILL) }
                for pid in children { var status: Int32 = 0; waitpid(pid, &status, 0) }
                FileHandle.standardError.write(Data("ballast bench: interrupted; killed \(children.count) node(s)\n".utf8))
                Foundation.exit(128 + signalNumber)
            }
            source.resume()
            SignalSources.keep(source)
        }
    }
}

/// Free TCP ports on 127.0.0.1.
enum BenchPorts {
    /// A port nothing listens on, below the ephemeral range (an ephemeral port could be taken as
    /// the source port of some outbound connection before our node binds it), not in `used`.
    static func free(excluding used: inout Set<Int>) throws -> Int {
        let range = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? "32768 60999"
        let ephemeralLow = Int(range.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first ?? "") ?? 32768
        let candidates = 10_000 ..< max(10_001, ephemeralLow)
        for _ in 0 ..< 500 {
            let port = Int.random(in: candidates)
            if !used.contains(port) && canBind(port) {
                used.insert(port)
                return port
            }
        }
        throw ValidationError("found no free port on 127.0.0.1 below \(ephemeralLow)")
    }

    private static func canBind(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port)).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
