import ArgumentParser
import BallastProto
import BallastServer
import BallastWire
import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// The leader's API address and `connections` HTTP/2 connections to it, each on its own event
/// loop. Callers that meet UNAVAILABLE follow the `ballast-leader` hint (or ask the cluster
/// again); one reconnection runs at a time and every caller that saw the same generation waits
/// for it instead of starting its own.
final class LeaderConnections: Sendable {
    private struct State {
        var generation = 0
        var address: HostPort
        var clients: [GRPCClient]
        var reconnecting: Task<Void, Never>?
    }

    private let seeds: [HostPort]
    private let connections: Int
    private let group: MultiThreadedEventLoopGroup
    private let state: Mutex<State>
    /// The options of every connection (TLS with `bench cluster --tls`).
    private let configuration: GRPCClientConfiguration

    private init(seeds: [HostPort], connections: Int, group: MultiThreadedEventLoopGroup, address: HostPort, clients: [GRPCClient],
                 configuration: GRPCClientConfiguration) {
        self.configuration = configuration
        self.seeds = seeds
        self.connections = connections
        self.group = group
        state = Mutex(State(address: address, clients: clients))
    }

    /// Finds the leader through `DescribeCluster` on any of `seeds` and connects to it.
    static func connect(seeds: [HostPort], connections: Int, timeout: Duration,
                        configuration: GRPCClientConfiguration = GRPCClientConfiguration()) async throws -> LeaderConnections {
        precondition(connections >= 1, "at least one connection")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: connections)
        do {
            let leader = try await discoverLeader(seeds: seeds, group: group, timeout: timeout, configuration: configuration)
            let clients = try await open(leader, count: connections, group: group, configuration: configuration)
            return LeaderConnections(seeds: seeds, connections: connections, group: group, address: leader, clients: clients,
                                     configuration: configuration)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// The connection worker `index` should use now, and the generation it belongs to.
    func client(for index: Int) -> (generation: Int, client: GRPCClient, address: HostPort) {
        state.withLock { ($0.generation, $0.clients[index % $0.clients.count], $0.address) }
    }

    /// Moves every connection to `hint` (or to the leader the cluster names) unless someone
    /// already did since `generation`; returns once the move is over, successful or not.
    func follow(hint: String?, seenGeneration generation: Int) async {
        let task: Task<Void, Never>? = state.withLock { state in
            guard state.generation == generation else { return nil }
            if let running = state.reconnecting { return running }
            let seeds = self.seeds, count = self.connections, group = self.group, configuration = self.configuration
            let running = Task {
                var moved: (HostPort, [GRPCClient])?
                do {
                    let target: HostPort
                    if let hint { target = try HostPort(parsing: hint) } else {
                        target = try await Self.discoverLeader(seeds: seeds, group: group, timeout: .seconds(5),
                                                               configuration: configuration)
                    }
                    // UNAVAILABLE from a live leader (e.g. its proposal backlog is full) is no reason to reconnect.
                    let current = self.state.withLock { ($0.address, $0.clients.allSatisfy { $0.channel.isActive }) }
                    if target != current.0 || !current.1 {
                        moved = (target, try await Self.open(target, count: count, group: group, configuration: configuration))
                    }
                } catch {
                    // Nothing moved; the callers retry and come back here with the same generation.
                }
                let old: [GRPCClient] = self.state.withLock { state in
                    state.reconnecting = nil
                    guard let (target, clients) = moved else { return [] }
                    defer { state.clients = clients; state.address = target; state.generation += 1 }
                    return state.clients
                }
                for client in old { client.channel.close(promise: nil) }
            }
            state.reconnecting = running
            return running
        }
        await task?.value
    }

    /// Closes every connection and the event loops.
    func close() async {
        let clients = state.withLock { $0.clients }
        for client in clients { client.channel.close(promise: nil) }
        for client in clients { try? await client.channel.closeFuture.get() }
        try? await group.shutdownGracefully()
    }

    static func open(_ address: HostPort, count: Int, group: MultiThreadedEventLoopGroup,
                     configuration: GRPCClientConfiguration) async throws -> [GRPCClient] {
        var clients: [GRPCClient] = []
        for loop in group.makeIterator().prefix(count) {
            clients.append(try await GRPCClient.connect(host: address.host, port: address.port, configuration: configuration, group: loop))
        }
        return clients
    }

    /// Asks each seed in turn for the leader's API address until one names it.
    static func discoverLeader(seeds: [HostPort], group: EventLoopGroup, timeout: Duration,
                               configuration: GRPCClientConfiguration) async throws -> HostPort {
        let deadline = ContinuousClock.now + timeout
        var lastError = "no seed answered"
        while ContinuousClock.now < deadline {
            for seed in seeds {
                do {
                    let client = try await GRPCClient.connect(host: seed.host, port: seed.port, configuration: configuration,
                                                              group: group)
                    let response: Ballast_V1_DescribeClusterResponse = try await client.unary(
                        BallastMethod.Cluster.describeCluster, request: Ballast_V1_DescribeClusterRequest(), timeout: .seconds(2))
                    client.channel.close(promise: nil)
                    if !response.leaderApiAddress.isEmpty { return try HostPort(parsing: response.leaderApiAddress) }
                    lastError = "\(seed) knows no leader yet"
                } catch {
                    lastError = "\(seed): \(error)"
                }
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ValidationError("found no leader within \(timeout): \(lastError)")
    }
}

/// What the closed loop measured.
struct ClusterLoadResult {
    var histogram = LatencyHistogram()
    var starts = 0
    var signals = 0
    var errors: [String: Int] = [:]
    /// The first message seen for each error status, to say what went wrong.
    var firstErrorMessages: [String: String] = [:]
    var measuredSeconds = 0.0

    var operations: Int { starts + signals }
    var errorCount: Int { errors.values.reduce(0, +) }

    mutating func merge(_ other: ClusterLoadResult) {
        histogram.merge(other.histogram)
        starts += other.starts
        signals += other.signals
        errors.merge(other.errors, uniquingKeysWith: +)
        firstErrorMessages.merge(other.firstErrorMessages) { mine, _ in mine }
    }
}

/// A closed loop: `concurrency` callers, each sending its next engine operation (StartWorkflow,
/// or with `signalPercent` > 0 sometimes SignalWorkflow on a run it started) as soon as the
/// previous one is answered. Operations answered during the measured window count.
struct ClusterLoad {
    var concurrency: Int
    var signalPercent: Int
    var measure: Duration
    var callTimeout: Duration = .seconds(10)
    /// Prefix of every workflow id and request id, unique per run of the benchmark.
    var runTag = "bench-\(getpid())-\(String(UInt32.random(in: 0 ... .max), radix: 36))"

    /// Runs the loop until `measureStart + measure`; only calls sent at or after `measureStart`
    /// and answered before the end count.
    func run(_ leader: LeaderConnections, measureStart: ContinuousClock.Instant) async -> ClusterLoadResult {
        let measureEnd = measureStart + measure
        let results = await withTaskGroup(of: ClusterLoadResult.self) { group in
            for worker in 0 ..< concurrency {
                group.addTask { await runCaller(worker, leader: leader, window: measureStart ..< measureEnd) }
            }
            return await group.reduce(into: ClusterLoadResult()) { $0.merge($1) }
        }
        var merged = results
        merged.measuredSeconds = Double(measure.nanoseconds) / 1e9
        return merged
    }

    private func runCaller(_ worker: Int, leader: LeaderConnections, window: Range<ContinuousClock.Instant>) async -> ClusterLoadResult {
        var result = ClusterLoadResult()
        var random = SplitMix64(seed: UInt64(worker) &+ 0x9E37_79B9)
        var started = StartedRing(capacity: 64)
        var sequence = 0
        while ContinuousClock.now < window.upperBound {
            sequence += 1
            let (generation, client, _) = leader.client(for: worker)
            let signalTarget = signalPercent > 0 && Int(random.next() % 100) < signalPercent ? started.pick(&random) : nil
            let id = "\(runTag)-\(worker)-\(sequence)"
            let (path, payload) = signalTarget.map { Self.signal(workflowID: $0, requestID: id) } ?? Self.start(workflowID: id)
            let callStart = ContinuousClock.now
            let (status, _, _) = await client.rawUnary(path, payload: payload, timeout: callTimeout)
            let callEnd = ContinuousClock.now
            let counted = window.contains(callStart) && callEnd < window.upperBound
            if status.code == .ok {
                if signalTarget == nil { started.add(id) }
                guard counted else { continue }
                result.histogram.record(callEnd - callStart)
                if signalTarget == nil { result.starts += 1 } else { result.signals += 1 }
                continue
            }
            if counted {
                result.errors["\(status.code)", default: 0] += 1
                if result.firstErrorMessages["\(status.code)"] == nil { result.firstErrorMessages["\(status.code)"] = status.message }
            }
            if status.code == .unavailable {
                await leader.follow(hint: status.leaderAddress, seenGeneration: generation)
            }
        }
        return result
    }

    /// A StartWorkflow request for a new, never-used workflow id; the id is also the request id.
    static func start(workflowID: String) -> (String, [UInt8]) {
        var request = Ballast_V1_StartWorkflowRequest()
        request.workflowID = workflowID
        request.workflowType.name = "BenchWorkflow"
        request.taskQueue = "bench"
        request.requestID = workflowID
        return (BallastMethod.Workflow.start, (try? request.serializedBytes()) ?? [])
    }

    /// A SignalWorkflow request to the current run of `workflowID`.
    static func signal(workflowID: String, requestID: String) -> (String, [UInt8]) {
        var request = Ballast_V1_SignalWorkflowRequest()
        request.workflowExecution.workflowID = workflowID
        request.signalName = "bench"
        request.requestID = requestID
        return (BallastMethod.Workflow.signal, (try? request.serializedBytes()) ?? [])
    }
}

/// The last `capacity` workflow ids a caller started (signal targets); older ones are dropped.
struct StartedRing {
    private var ids: [String] = []
    private var next = 0
    let capacity: Int

    init(capacity: Int) {
        precondition(capacity > 0, "a ring holds at least one id")
        self.capacity = capacity
    }

    mutating func add(_ id: String) {
        if ids.count < capacity { ids.append(id) } else { ids[next] = id }
        next = (next + 1) % capacity
    }

    func pick(_ random: inout SplitMix64) -> String? {
        ids.isEmpty ? nil : ids[Int(random.next() % UInt64(ids.count))]
    }
}

/// A small seeded generator (SplitMix64), so the operation mix is reproducible per caller.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
