import Logging
import NIOCore
import NIOPosix

/// A TCP proxy for one directed link (node i dials node j through it) whose faults can be changed
/// at run time: pass, cut, added latency, chunk drop (docs/reliability.md, "cluster/chaos").
///
/// All state lives on one event loop; the listener and both channels of every proxied connection
/// use that loop. Each direction of a connection holds at most `maxBufferedBytes` in its delay
/// line; past that the proxy stops reading from the sending side, so a slow receiver (or a long
/// latency) pushes back on the sender through TCP instead of growing memory.
public final class FaultProxy: @unchecked Sendable {
    /// Counters since the proxy started.
    public struct Statistics: Sendable, Equatable {
        /// Connections accepted from the dialling side.
        public var accepted = 0
        /// Connections currently open.
        public var open = 0
        /// Bytes written out, both directions.
        public var forwardedBytes = 0
        /// Connections reset because a chunk was dropped.
        public var resets = 0
        /// Connections blackholed by a cut and closed when it healed.
        public var closedByHeal = 0
        /// Connections whose target refused (the target node is down).
        public var targetRefused = 0
        /// The most bytes one direction of one connection held at once.
        public var peakBufferedBytes = 0
    }

    /// Name used in logs, e.g. `1->2`.
    public let name: String
    /// Where accepted connections are forwarded.
    public let targetHost: String
    public let targetPort: Int
    /// Bound on the bytes one direction of one connection holds.
    public let maxBufferedBytes: Int
    /// How long a connection whose target refused stays open before it is closed: a sender that
    /// reconnects at once must not spin (dialling the target directly it would have been refused
    /// and backed off).
    public let refusedHold: Duration
    let loop: any EventLoop
    let logger: Logger

    // Event-loop state.
    private(set) var faults = LinkFaults.pass
    private var random: ChaosRandom
    private var connections: [ObjectIdentifier: ProxyConnection] = [:]
    private var listener: (any Channel)?
    private var stopped = false
    var statistics = Statistics()

    /// A proxy that forwards to `targetHost:targetPort`; `seed` drives the drop decisions.
    public init(name: String, targetHost: String, targetPort: Int, loop: any EventLoop, maxBufferedBytes: Int = 1 << 20,
                refusedHold: Duration = .milliseconds(100), seed: UInt64 = 1, logger: Logger) {
        precondition(maxBufferedBytes > 0, "the buffer bound must be positive")
        self.name = name
        self.targetHost = targetHost
        self.targetPort = targetPort
        self.loop = loop
        self.maxBufferedBytes = maxBufferedBytes
        self.refusedHold = refusedHold
        self.random = ChaosRandom(seed: seed)
        var logger = logger
        logger[metadataKey: "link"] = "\(name)"
        self.logger = logger
    }

    /// Starts listening on `host:port` (0: a free port); returns the port.
    public func start(host: String = "127.0.0.1", port: Int = 0) async throws -> Int {
        let channel = try await ServerBootstrap(group: loop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] child in
                child.eventLoop.makeCompletedFuture { try accept(child) }
            }
            .bind(host: host, port: port).get()
        try await loop.submit { [self] in
            guard !stopped else { channel.close(promise: nil); return }
            listener = channel
        }.get()
        guard let bound = channel.localAddress?.port else { throw FaultProxyError.noLocalPort(name) }
        return bound
    }

    /// Applies `faults` from now on. A cut blackholes every open connection at once; lifting a cut
    /// closes the connections it blackholed. Latency and drop apply to chunks read from now on.
    public func apply(_ faults: LinkFaults) async {
        try? await loop.submit { [self] in applyOnLoop(faults) }.get()
    }

    /// The counters so far.
    public func currentStatistics() async -> Statistics {
        (try? await loop.submit { [self] in statistics }.get()) ?? statistics
    }

    /// The faults in force.
    public func currentFaults() async -> LinkFaults {
        (try? await loop.submit { [self] in faults }.get()) ?? .pass
    }

    /// Closes the listener and every connection.
    public func stop() async {
        let closing = try? await loop.submit { [self] () -> EventLoopFuture<Void>? in
            stopped = true
            for connection in connections.values { connection.close() }
            let future = listener?.close()
            listener = nil
            return future
        }.get()
        if let closing { try? await closing.get() }
    }

    private func applyOnLoop(_ newFaults: LinkFaults) {
        loop.preconditionInEventLoop()
        let old = faults
        faults = newFaults
        if newFaults.cut && !old.cut {
            for connection in connections.values { connection.stall() }
        } else if old.cut && !newFaults.cut {
            let stalled = connections.values.filter(\.stalled)
            statistics.closedByHeal += stalled.count
            for connection in stalled { connection.close() }
        }
        if old != newFaults { logger.debug("link faults changed", metadata: ["faults": "\(newFaults)"]) }
    }

    private func accept(_ child: any Channel) throws {
        loop.preconditionInEventLoop()
        guard !stopped else { child.close(promise: nil); return }
        let connection = ProxyConnection(proxy: self)
        try child.pipeline.syncOperations.addHandler(connection.downstream)
        connections[ObjectIdentifier(connection)] = connection
        statistics.accepted += 1
        statistics.open += 1
        if faults.cut {
            connection.stall()  // blackholed from the start; never reaches the target
        } else {
            connectUpstream(connection)
        }
    }

    private func connectUpstream(_ connection: ProxyConnection) {
        let half = connection.upstream
        ClientBootstrap(group: loop)
            .connectTimeout(.seconds(2))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(half) }
            }
            .connect(host: targetHost, port: targetPort)
            .whenFailure { [self] _ in
                statistics.targetRefused += 1
                let nanoseconds = refusedHold.components.seconds * 1_000_000_000 + refusedHold.components.attoseconds / 1_000_000_000
                loop.scheduleTask(in: .nanoseconds(nanoseconds)) { connection.close() }
            }
    }

    /// Whether the next chunk is dropped (draws from the seeded generator only when drops are on).
    func drawDrop() -> Bool {
        guard faults.dropProbability > 0 else { return false }
        return random.nextUnitInterval() < faults.dropProbability
    }

    /// A connection closed on both sides.
    func forget(_ connection: ProxyConnection) {
        if connections.removeValue(forKey: ObjectIdentifier(connection)) != nil { statistics.open -= 1 }
    }
}

/// Why the proxy could not start.
public enum FaultProxyError: Error, CustomStringConvertible {
    case noLocalPort(String)

    public var description: String {
        switch self {
        case .noLocalPort(let name): "fault proxy \(name): the listener has no local port"
        }
    }
}
