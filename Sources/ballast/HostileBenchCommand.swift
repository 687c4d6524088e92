import ArgumentParser
import BallastHTTP2
import BallastProto
import BallastServer
import BallastWire
import Foundation
import NIOCore
import NIOEmbedded
import NIOPosix
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `ballast bench hostile`: a well-behaved client's latency with and without hostile clients on
/// the same node (issue 8 §3, docs/reliability.md "Hostile clients").
struct HostileBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hostile",
        abstract: "A good client's p99 with and without hostile clients (stream floods, non-readers, oversized messages, mid-call disconnects).",
        discussion: """
            Starts one `ballast server` of this binary unless given --address. A good client runs \
            --concurrency StartWorkflow calls in a closed loop (2 s deadline each) for --duration seconds \
            alone, then for --duration seconds again while --hostile-connections raw connections per kind \
            misbehave against the same node. Prints both p50/p99 and their ratio, the good client's \
            failures, and how the node answered each kind of hostile connection.
            """)

    @OptionGroup var options: BenchOptions
    @Option(help: "API address HOST:PORT of a running node (default: start a one-node cluster).")
    var address: String?
    @Option(help: "Hostile connections of each kind kept busy at once.")
    var hostileConnections: Int = 8
    @Option(help: "Streams each flooding connection opens without ever finishing them.")
    var floodStreams: Int = 1000
    @Option(help: "The server binary (default: this executable).")
    var serverBinary: String?
    @Option(help: "Comma-separated kinds of hostile clients to run: flood, never-read, hang-up, oversized, or all.")
    var kinds: String = "all"
    @Option(help: "Nice value (0…19) of the hostile clients' threads. On one machine the attackers also take CPU from the node and the good client; 19 approximates attackers on other machines (measures the node, not the shared cores).")
    var hostileNice: Int32 = 0

    func validate() throws {
        guard (1 ... 256).contains(hostileConnections) else { throw ValidationError("--hostile-connections must be 1…256") }
        guard (1 ... 100_000).contains(floodStreams) else { throw ValidationError("--flood-streams must be 1…100000") }
        _ = try HostileKind.parse(kinds)
        guard (0 ... 19).contains(hostileNice) else { throw ValidationError("--hostile-nice must be 0…19") }
    }

    func run() async throws {
        if let address {
            try await measure(target: try HostPort(parsing: address), pids: [])
            return
        }
        BenchChildren.shared.installSignalHandlers()
        let cluster = try BenchCluster(size: 1, binary: try serverBinary ?? ClusterBenchCommand.ownExecutable(), dataDirectory: nil,
                                       logLevel: "notice")
        do {
            _ = try await cluster.waitForLeader(timeout: .seconds(30))
            try await measure(target: try HostPort(parsing: cluster.apiAddresses[0]), pids: cluster.pids.map(\.1))
            try cluster.checkAlive()
            cluster.shutdown()
        } catch {
            cluster.shutdown(keep: true)
            FileHandle.standardError.write(Data("node logs kept in \(cluster.directory)\n".utf8))
            throw error
        }
    }

    private func measure(target: HostPort, pids: [Int32]) async throws {
        let duration = Duration.milliseconds(Int(options.duration * 1000))
        let group = MultiThreadedEventLoopGroup.singleton
        let baselineCPU = PhaseCPU.start(pids: pids)
        let baseline = try await GoodClient.run(target: target, concurrency: options.concurrency, duration: duration, group: group)
        let baselineUsage = PhaseCPU(baselineCPU)
        // The hostile gRPC clients get an event loop of their own: on the good client's loops their
        // 5 MiB messages would delay the good calls inside this process, not in the node.
        let hostileGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let crowd = HostileCrowd(target: target, kinds: try HostileKind.parse(kinds), connectionsPerKind: hostileConnections,
                                 floodStreams: floodStreams, nice: hostileNice, group: hostileGroup)
        crowd.start()
        // Let the crowd get going before measuring.
        try await Task.sleep(for: .milliseconds(500))
        let attackCPU = PhaseCPU.start(pids: pids)
        let underAttack = try await GoodClient.run(target: target, concurrency: options.concurrency, duration: duration, group: group)
        let attackUsage = PhaseCPU(attackCPU)
        let outcome = await crowd.stop()
        try? await hostileGroup.shutdownGracefully()
        for pid in pids where kill(pid, 0) != 0 { throw ValidationError("the node (pid \(pid)) died during the benchmark") }
        report(baseline: baseline, underAttack: underAttack, outcome: outcome, cpu: (baselineUsage, attackUsage))
    }

    private func report(baseline: GoodClient.Results, underAttack: GoodClient.Results, outcome: HostileCrowd.Outcome,
                        cpu: (baseline: PhaseCPU, attack: PhaseCPU)) {
        let seconds = options.duration
        let ratio = baseline.latency.percentileMilliseconds(0.99) > 0
            ? underAttack.latency.percentileMilliseconds(0.99) / baseline.latency.percentileMilliseconds(0.99) : 0
        let fields: [(String, String)] = [
            ("bench", "\"hostile\""),
            ("ops_per_s", String(format: "%.1f", Double(underAttack.completed) / seconds)),
            ("p50_ms", String(format: "%.3f", underAttack.latency.percentileMilliseconds(0.5))),
            ("p99_ms", String(format: "%.3f", underAttack.latency.percentileMilliseconds(0.99))),
            ("concurrency", "\(options.concurrency)"),
            ("baseline_ops_per_s", String(format: "%.1f", Double(baseline.completed) / seconds)),
            ("baseline_p50_ms", String(format: "%.3f", baseline.latency.percentileMilliseconds(0.5))),
            ("baseline_p99_ms", String(format: "%.3f", baseline.latency.percentileMilliseconds(0.99))),
            ("p99_ratio", String(format: "%.2f", ratio)),
            ("good_failures", "\(baseline.failed + underAttack.failed)"),
            ("good_failure_sample", "\"\(underAttack.failures.first ?? baseline.failures.first ?? "")\""),
            ("flood_connections", "\(outcome.floodConnections)"),
            ("flood_streams_sent", "\(outcome.floodStreams)"),
            ("flood_goaways", "\(outcome.floodGoAways)"),
            ("flood_closed_by_server", "\(outcome.floodClosed)"),
            ("never_read_connections", "\(outcome.neverReadConnections)"),
            ("never_read_requests", "\(outcome.neverReadRequests)"),
            ("oversized_calls", "\(outcome.oversizedCalls)"),
            ("oversized_resource_exhausted", "\(outcome.oversizedRefused)"),
            ("midcall_disconnects", "\(outcome.midCallDisconnects)"),
            ("kinds", "\"\(kinds)\""),
            ("hostile_nice", "\(hostileNice)"),
            ("baseline_node_cpu_pct", String(format: "%.0f", cpu.baseline.nodePercent)),
            ("baseline_bench_cpu_pct", String(format: "%.0f", cpu.baseline.benchPercent)),
            ("node_cpu_pct", String(format: "%.0f", cpu.attack.nodePercent)),
            ("bench_cpu_pct", String(format: "%.0f", cpu.attack.benchPercent)),
            ("baseline_machine_busy_cores", String(format: "%.2f", cpu.baseline.machineBusyCores)),
            ("machine_busy_cores", String(format: "%.2f", cpu.attack.machineBusyCores)),
        ]
        if options.json {
            print("{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}")
        } else {
            for (name, value) in fields { print("\(name.padding(toLength: 30, withPad: " ", startingAt: 0)) \(value)") }
        }
    }
}

/// The well-behaved client: closed-loop StartWorkflow calls on one connection, 2 s deadline each.
enum GoodClient {
    struct Results: Sendable {
        var completed = 0
        var failed = 0
        var failures: [String] = []
        var latency = LatencyHistogram()
    }

    static func run(target: HostPort, concurrency: Int, duration: Duration, group: any EventLoopGroup) async throws -> Results {
        let client = try await GRPCClient.connect(host: target.host, port: target.port, group: group)
        let deadline = ContinuousClock.now + duration
        let prefix = "hostile-bench-\(UInt64.random(in: 0 ... .max))"
        let results = await withTaskGroup(of: Results.self) { tasks in
            for caller in 0 ..< concurrency {
                tasks.addTask {
                    var results = Results()
                    var number = 0
                    while ContinuousClock.now < deadline {
                        var request = Ballast_V1_StartWorkflowRequest()
                        request.workflowID = "\(prefix)-\(caller)-\(number)"
                        request.workflowType.name = "HostileBench"
                        request.taskQueue = "hostile-bench"
                        request.requestID = request.workflowID
                        number += 1
                        let started = ContinuousClock.now
                        do {
                            let _: Ballast_V1_StartWorkflowResponse = try await client.unary(
                                BallastMethod.Workflow.start, request: request, timeout: .seconds(2))
                            results.completed += 1
                            results.latency.record(ContinuousClock.now - started)
                        } catch {
                            results.failed += 1
                            if results.failures.count < 3 { results.failures.append("\(error)") }
                        }
                    }
                    return results
                }
            }
            var total = Results()
            for await part in tasks {
                total.completed += part.completed
                total.failed += part.failed
                total.failures += part.failures
                total.latency.merge(part.latency)
            }
            return total
        }
        await client.close()
        return results
    }
}

/// The kinds of hostile client `ballast bench hostile` can run (`--kinds`).
enum HostileKind: String, CaseIterable, Sendable {
    case flood, neverRead = "never-read", hangUp = "hang-up", oversized

    /// Parses `all` or a comma-separated list of kind names.
    static func parse(_ text: String) throws -> Set<HostileKind> {
        if text == "all" { return Set(allCases) }
        var kinds: Set<HostileKind> = []
        for name in text.split(separator: ",") {
            guard let kind = HostileKind(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("unknown hostile kind '\(name)' (flood, never-read, hang-up, oversized, all)")
            }
            kinds.insert(kind)
        }
        guard !kinds.isEmpty else { throw ValidationError("--kinds names no kind") }
        return kinds
    }
}

/// CPU of the node(s), of this benchmark process and of the whole machine over one phase.
struct PhaseCPU {
    var nodePercent: Double
    var benchPercent: Double
    var machineBusyCores: Double

    /// Starts measuring `pids` (the nodes) and this process.
    static func start(pids: [Int32]) -> (meter: CPUMeter, started: ContinuousClock.Instant) {
        let named = pids.enumerated().map { ("node\($0.offset)", $0.element) } + [("bench", getpid())]
        return (CPUMeter(pids: named), ContinuousClock.now)
    }

    /// What the meter saw since `start`, in % of one core.
    init(_ started: (meter: CPUMeter, started: ContinuousClock.Instant)) {
        let elapsed = ContinuousClock.now - started.started
        let wall = max(1e-9, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        let (used, busy) = started.meter.finish()
        nodePercent = 100 * used.filter { $0.0 != "bench" }.map(\.1).reduce(0, +) / wall
        benchPercent = 100 * (used.first { $0.0 == "bench" }?.1 ?? 0) / wall
        machineBusyCores = busy ?? 0
    }
}

/// Raw connections that misbehave, each kind on threads of its own, until `stop()`.
final class HostileCrowd: Sendable {
    struct Outcome: Sendable {
        var floodConnections = 0
        var floodStreams = 0
        var floodGoAways = 0
        var floodClosed = 0
        var neverReadConnections = 0
        var neverReadRequests = 0
        var oversizedCalls = 0
        var oversizedRefused = 0
        var midCallDisconnects = 0
    }

    let target: HostPort
    let kinds: Set<HostileKind>
    let connectionsPerKind: Int
    let floodStreams: Int
    let nice: Int32
    let group: any EventLoopGroup
    private let outcome = Mutex(Outcome())
    private let stopping = Atomic<Bool>(false)
    private let running = Atomic<Int>(0)

    init(target: HostPort, kinds: Set<HostileKind>, connectionsPerKind: Int, floodStreams: Int, nice: Int32,
         group: any EventLoopGroup) {
        self.nice = nice
        self.target = target
        self.kinds = kinds
        self.connectionsPerKind = connectionsPerKind
        self.floodStreams = floodStreams
        self.group = group
    }

    func start() {
        let flood = HTTP2Bytes.clientStream(requests: floodStreams, finish: false)
        let complete = HTTP2Bytes.clientStream(requests: 100, finish: true)
        let partial = HTTP2Bytes.clientStream(requests: 1, finish: true, bodyBytes: 4096)
        if nice > 0 {
            // Linux applies nice() to the calling thread only: lower the hostile event loop's.
            let nice = self.nice
            for loop in group.makeIterator() { loop.execute { _ = Glibc.nice(nice) } }
        }
        for _ in 0 ..< connectionsPerKind {
            if kinds.contains(.flood) { spawn { self.floodOnce(flood) } }
            if kinds.contains(.neverRead) { spawn { self.neverReadOnce(complete) } }
            if kinds.contains(.hangUp) { spawn { self.disconnectMidCallOnce(Array(partial.prefix(partial.count - 2048))) } }
        }
        for _ in 0 ..< (kinds.contains(.oversized) ? max(1, connectionsPerKind / 4) : 0) {
            running.add(1, ordering: .relaxed)
            Task { await self.oversizedLoop(); self.running.subtract(1, ordering: .relaxed) }
        }
    }

    /// Stops every hostile loop and returns what the node did to them.
    func stop() async -> Outcome {
        stopping.store(true, ordering: .relaxed)
        while running.load(ordering: .relaxed) > 0 { try? await Task.sleep(for: .milliseconds(20)) }
        return outcome.withLock { $0 }
    }

    private func spawn(_ once: @escaping @Sendable () -> Void) {
        running.add(1, ordering: .relaxed)
        let nice = self.nice
        Thread {
            if nice > 0 { _ = Glibc.nice(nice) }
            while !self.stopping.load(ordering: .relaxed) { once() }
            self.running.subtract(1, ordering: .relaxed)
        }.start()
    }

    /// Opens `floodStreams` streams on one connection without finishing any, then reads what the
    /// node answers until it closes the connection (or 3 s pass).
    private func floodOnce(_ bytes: [UInt8]) {
        guard let socket = RawSocket(target) else { return }
        defer { socket.close() }
        // Acknowledge the node's SETTINGS first, as a real client does: its stream limit then
        // binds (before the acknowledgement nghttp2 cannot hold a peer to it).
        let settingsEnd = HTTP2Bytes.prefaceAndSettingsLength(bytes)
        socket.send(Array(bytes[..<settingsEnd]))
        socket.awaitBytes(timeout: .seconds(1))
        socket.send(HTTP2Bytes.settingsAcknowledgement)
        socket.send(Array(bytes[settingsEnd...]))
        let (goAway, closed) = socket.readUntilClosed(timeout: .seconds(3)) { self.stopping.load(ordering: .relaxed) }
        outcome.withLock {
            $0.floodConnections += 1
            $0.floodStreams += floodStreams
            if goAway { $0.floodGoAways += 1 }
            if closed { $0.floodClosed += 1 }
        }
    }

    /// Sends 100 complete requests and never reads an answer; holds the connection for 2 s.
    private func neverReadOnce(_ bytes: [UInt8]) {
        guard let socket = RawSocket(target) else { return }
        defer { socket.close() }
        socket.send(bytes)
        outcome.withLock {
            $0.neverReadConnections += 1
            $0.neverReadRequests += 100
        }
        let until = ContinuousClock.now + .seconds(2)
        while ContinuousClock.now < until, !stopping.load(ordering: .relaxed) { usleep(20_000) }
    }

    /// Sends a request's headers and half its body, then hangs up.
    private func disconnectMidCallOnce(_ bytes: [UInt8]) {
        guard let socket = RawSocket(target) else { return }
        socket.send(bytes)
        socket.close()
        outcome.withLock { $0.midCallDisconnects += 1 }
        usleep(2_000)
    }

    /// Calls with a 5 MiB message (over the 4 MiB limit): each must be refused.
    private func oversizedLoop() async {
        let payload = [UInt8](repeating: 0x41, count: 5 << 20)
        while !stopping.load(ordering: .relaxed) {
            guard let client = try? await GRPCClient.connect(host: target.host, port: target.port, group: group) else { continue }
            let (status, _, _) = await client.rawUnary(BallastMethod.Workflow.start, payload: payload, timeout: .seconds(5))
            outcome.withLock {
                $0.oversizedCalls += 1
                if status.code == .resourceExhausted { $0.oversizedRefused += 1 }
            }
            await client.close()
        }
    }
}

/// Client HTTP/2 bytes made by the real client-side bridge in an EmbeddedChannel, to be sent
/// on raw sockets that then misbehave.
enum HTTP2Bytes {
    /// The connection preface and SETTINGS, then `requests` StartWorkflow requests (HEADERS and,
    /// when `finish`, a DATA frame with END_STREAM carrying a `bodyBytes` gRPC message).
    static func clientStream(requests: Int, finish: Bool, bodyBytes: Int = 0) -> [UInt8] {
        let delegate = SilentDelegate()
        var configuration = HTTP2Configuration()
        configuration.pingInterval = nil
        let handler = HTTP2ConnectionHandler(role: .client, configuration: configuration, delegate: delegate)
        let channel = EmbeddedChannel(handler: handler)
        defer { _ = try? channel.finish(acceptAlreadyClosed: true) }
        if let address = try? SocketAddress(ipAddress: "127.0.0.1", port: 1) { _ = try? channel.connect(to: address).wait() }
        let headers = [HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "http"),
                       HTTP2Header(":path", BallastMethod.Workflow.start), HTTP2Header(":authority", "hostile"),
                       HTTP2Header("content-type", "application/grpc"), HTTP2Header("te", "trailers")]
        var message = [UInt8](repeating: 0, count: 5 + bodyBytes)
        message[1] = UInt8(truncatingIfNeeded: bodyBytes >> 24)
        message[2] = UInt8(truncatingIfNeeded: bodyBytes >> 16)
        message[3] = UInt8(truncatingIfNeeded: bodyBytes >> 8)
        message[4] = UInt8(truncatingIfNeeded: bodyBytes)
        var bytes: [UInt8] = []
        // nghttp2 assumes a peer allows 100 streams until its SETTINGS arrive; past that the
        // last header block (all indexed by then, so it leaves the HPACK table unchanged) is
        // repeated on new stream ids.
        for _ in 0 ..< min(requests, 100) {
            guard let id = handler.startRequest(headers, endStream: false) else { break }
            if finish { handler.sendData(ByteBuffer(bytes: message), streamID: id, endStream: true) }
            channel.embeddedEventLoop.run()
            while let out = try? channel.readOutbound(as: ByteBuffer.self) { bytes += Array(out.readableBytesView) }
        }
        if requests > 100, !finish, let (lastStream, block) = lastHeaderBlock(bytes) {
            for extra in 1 ... (requests - 100) {
                let stream = lastStream + UInt32(2 * extra)
                bytes += [UInt8(truncatingIfNeeded: block.count >> 16), UInt8(truncatingIfNeeded: block.count >> 8),
                          UInt8(truncatingIfNeeded: block.count), 1, 0x4,
                          UInt8(truncatingIfNeeded: stream >> 24), UInt8(truncatingIfNeeded: stream >> 16),
                          UInt8(truncatingIfNeeded: stream >> 8), UInt8(truncatingIfNeeded: stream)]
                bytes += block
            }
        }
        return bytes
    }

    /// The stream id and payload of the last HEADERS frame (END_HEADERS, no padding or priority) in `bytes`.
    static func lastHeaderBlock(_ bytes: [UInt8]) -> (UInt32, [UInt8])? {
        var offset = 24
        var found: (UInt32, [UInt8])?
        while offset + 9 <= bytes.count {
            let length = Int(bytes[offset]) << 16 | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2])
            guard offset + 9 + length <= bytes.count else { break }
            if bytes[offset + 3] == 1, bytes[offset + 4] & 0x28 == 0, bytes[offset + 4] & 0x4 != 0 {
                let stream = bytes[(offset + 5) ..< (offset + 9)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) } & 0x7FFF_FFFF
                found = (stream, Array(bytes[(offset + 9) ..< (offset + 9 + length)]))
            }
            offset += 9 + length
        }
        return found
    }

    /// A SETTINGS frame with the ACK flag.
    static let settingsAcknowledgement: [UInt8] = [0, 0, 0, 4, 1, 0, 0, 0, 0]

    /// Where the client's connection preface and first SETTINGS frame end in `bytes`.
    static func prefaceAndSettingsLength(_ bytes: [UInt8]) -> Int {
        let preface = 24
        guard bytes.count >= preface + 9, bytes[preface + 3] == 4 else { return min(bytes.count, preface) }
        let length = Int(bytes[preface]) << 16 | Int(bytes[preface + 1]) << 8 | Int(bytes[preface + 2])
        return min(bytes.count, preface + 9 + length)
    }

    private final class SilentDelegate: HTTP2StreamDelegate {
        func http2(_ connection: HTTP2ConnectionHandler, receivedHeaders headers: [HTTP2Header], streamID: HTTP2StreamID, endStream: Bool) {}
        func http2(_ connection: HTTP2ConnectionHandler, receivedData bytes: UnsafeRawBufferPointer, streamID: HTTP2StreamID) {}
        func http2(_ connection: HTTP2ConnectionHandler, receivedEndStream streamID: HTTP2StreamID) {}
        func http2(_ connection: HTTP2ConnectionHandler, streamClosed streamID: HTTP2StreamID, errorCode: UInt32) {}
        func http2(_ connection: HTTP2ConnectionHandler, receivedGoAway lastStreamID: HTTP2StreamID, errorCode: UInt32) {}
        func http2ConnectionClosed(_ connection: HTTP2ConnectionHandler) {}
    }
}

/// A blocking TCP socket for hostile clients (their own threads; nothing of NIO's care).
struct RawSocket {
    let fd: Int32

    init?(_ target: HostPort) {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr(target.host == "localhost" ? "127.0.0.1" : target.host)
        address.sin_port = in_port_t(UInt16(target.port)).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            Glibc.close(fd)
            return nil
        }
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends what fits within the send timeout (a node that stops reading is allowed).
    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return }
            offset += sent
        }
    }

    /// Reads until the node closes the connection; whether a GOAWAY frame came, and whether it closed.
    func readUntilClosed(timeout: Duration, isStopping: () -> Bool) -> (goAway: Bool, closed: Bool) {
        let deadline = ContinuousClock.now + timeout
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while ContinuousClock.now < deadline, !isStopping() {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count == 0 { return (Self.containsGoAway(received), true) }
            if count < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { continue }
                return (Self.containsGoAway(received), true)
            }
            if received.count < 1 << 20 { received += buffer[0 ..< count] }
        }
        return (Self.containsGoAway(received), false)
    }

    /// Waits until the node has sent something (its SETTINGS), or `timeout`.
    func awaitBytes(timeout: Duration) {
        let deadline = ContinuousClock.now + timeout
        var buffer = [UInt8](repeating: 0, count: 4096)
        while ContinuousClock.now < deadline {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count != 0, count < 0, errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { continue }
            return
        }
    }

    func close() { Glibc.close(fd) }

    /// Whether the server's frames (after its SETTINGS) include a GOAWAY (type 7).
    static func containsGoAway(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset + 9 <= bytes.count {
            let length = Int(bytes[offset]) << 16 | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2])
            if bytes[offset + 3] == 7 { return true }
            offset += 9 + length
        }
        return false
    }
}
