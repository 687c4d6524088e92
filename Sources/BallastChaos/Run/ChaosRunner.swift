import BallastSDK
import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A chaos run (docs/reliability.md, "cluster/chaos"): starts the proxies, the nodes, the workers
/// and the load; plays the seeded schedule; heals everything; waits for the load; runs the
/// checker; reports. Every line it prints goes through `emit`.
public final class ChaosRunner: Sendable {
    public let configuration: ChaosRunConfiguration
    public let schedule: ChaosSchedule
    let emit: @Sendable (String) -> Void
    let logger: Logger
    private let state: Mutex<RunState>

    private struct RunState {
        var faults: FaultState
        var appliedLinks: [Link: LinkFaults] = [:]
        var injected: [FaultKind: Int] = [:]
        var skipped: [FaultKind: Int] = [:]
        var notes: [String] = []
        var problems: [String] = []
        var reportedExits: Set<String> = []
        var start: ContinuousClock.Instant = .now
        /// How much later than scheduled the rest of the schedule runs (recovery waits).
        var delay: Duration = .zero
    }

    /// A run of `configuration` (whose schedule parameters must be valid).
    public init(configuration: ChaosRunConfiguration, logger: Logger, emit: @escaping @Sendable (String) -> Void) {
        self.configuration = configuration
        self.schedule = ChaosSchedule(configuration.scheduleParameters)
        self.emit = emit
        self.logger = logger
        self.state = Mutex(RunState(faults: FaultState(nodes: Array(1 ... configuration.nodeCount))))
    }

    /// Runs to the end and returns the report. Kills every child before returning.
    public func run() async -> ChaosRunReport {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var check: ChaosCheckReport?
        var mesh: ProxyMesh?
        do {
            let setup = try await setUp(group: group)
            mesh = setup.mesh
            try await play(setup)
            await healEverything(setup)
            await waitForLoad(setup)
            check = await runChecker(setup)
        } catch {
            problem("the run stopped: \(error)")
        }
        await ChildProcesses.shared.killAll()
        let links = await mesh?.statistics() ?? [:]
        await mesh?.stop()
        try? await group.shutdownGracefully()
        var result = report(check: check)
        result.proxyConnections = links.values.reduce(0) { $0 + $1.accepted }
        result.proxyResets = links.values.reduce(0) { $0 + $1.resets }
        result.proxyForwardedBytes = links.values.reduce(0) { $0 + $1.forwardedBytes }
        return result
    }

    // MARK: - Setting up

    struct Setup {
        var mesh: ProxyMesh
        var cluster: ChaosCluster
        var workload: ChaosWorkload
        /// The run's certificates with `--tls`.
        var tls: ChaosTLS?
    }

    private func setUp(group: MultiThreadedEventLoopGroup) async throws -> Setup {
        let configuration = configuration
        try FileManager.default.createDirectory(atPath: configuration.directory, withIntermediateDirectories: true)
        for line in schedule.lines { emit(line) }
        var used: Set<Int> = []
        var ports: [Int: ChaosCluster.Ports] = [:]
        for node in 1 ... configuration.nodeCount {
            ports[node] = ChaosCluster.Ports(raft: try FreePorts.take(excluding: &used), api: try FreePorts.take(excluding: &used),
                                             admin: try FreePorts.take(excluding: &used))
        }
        let mesh = try await ProxyMesh.start(raftPorts: ports.mapValues(\.raft), loop: group.next(), seed: configuration.seed,
                                             logger: logger)
        let peerAddresses = Dictionary(uniqueKeysWithValues: ports.keys.map { ($0, mesh.peerAddressArgument(for: $0)) })
        let tls = try configuration.tls ? ChaosTLS(directory: configuration.directory + "/tls", nodes: ports.keys.sorted()) : nil
        let cluster = ChaosCluster(binary: configuration.ballastBinary, directory: configuration.directory, ports: ports,
                                   peerAddresses: peerAddresses, logLevel: configuration.nodeLogLevel,
                                   extraServerArguments: ["--snapshot-threshold-bytes", String(configuration.snapshotThresholdBytes)],
                                   nodeArguments: tls.map { tls in Dictionary(uniqueKeysWithValues: ports.keys.map { ($0, tls.serverFlags($0)) }) } ?? [:],
                                   adminTLS: tls?.checker, group: group)
        let workload = ChaosWorkload(binary: configuration.transfersBinary, directory: configuration.directory,
                                     apiEndpoints: cluster.apiEndpoints, logLevel: configuration.clientLogLevel,
                                     workerArguments: tls?.workerFlags ?? [], loadArguments: tls?.loadFlags ?? [])
        let setup = Setup(mesh: mesh, cluster: cluster, workload: workload, tls: tls)
        for node in cluster.nodes { try cluster.start(node) }
        emit("started \(configuration.nodeCount) nodes in \(configuration.directory) (each dials its peers through a fault proxy)"
            + (tls.map { " with mutual TLS on every port and roles enforced; certificates in \($0.certificates.directory)" } ?? ""))
        guard let leader = await cluster.waitForAgreedLeader(timeout: configuration.startupTimeout) else {
            throw ChaosRunError.noLeader(configuration.startupTimeout, configuration.directory)
        }
        if let tls { try await waitForRoles(cluster, tls: tls) }
        for worker in 0 ..< configuration.workerCount { try setup.workload.startWorker(worker) }
        try setup.workload.startLoad(duration: configuration.duration, closeTimeout: configuration.quiescenceDeadline,
                                     seed: configuration.seed, options: configuration.load)
        emit("leader is node \(leader); \(configuration.workerCount) workers and the load started; faults for \(configuration.duration)")
        return setup
    }

    /// A TLS node enforces roles, and the first leader bootstraps them from the roles file a
    /// moment after it is elected: wait until they are in force (the checker's reader role
    /// answers), so the workers and the load do not start into PERMISSION_DENIED.
    private func waitForRoles(_ cluster: ChaosCluster, tls: ChaosTLS) async throws {
        var options = BallastClientOptions()
        options.tls = tls.checker
        options.callTimeout = .seconds(2)
        let endpoints = try BallastEndpoint.parseList(cluster.apiEndpoints.joined(separator: ","))
        let client = BallastClient(endpoints: endpoints, options: options, logger: logger)
        defer { Task { await client.close() } }
        let deadline = ContinuousClock.now + configuration.startupTimeout
        var lastError = ""
        while ContinuousClock.now < deadline {
            do {
                _ = try await client.count()
                return
            } catch {
                lastError = "\(error)"
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ChaosRunError.cannotStart("the load", "the roles file was not in force within \(configuration.startupTimeout): \(lastError)")
    }

    // MARK: - Playing the schedule

    private func play(_ setup: Setup) async throws {
        let start = ContinuousClock.now
        state.withLock { $0.start = start }
        for action in schedule.actions {
            let delay = state.withLock { $0.delay }
            try await Task.sleep(until: start + .milliseconds(action.atMilliseconds) + delay, clock: .continuous)
            noteUnexpectedExits(setup)
            switch action.step {
            case .inject: await inject(action.fault, setup)
            case .heal: await heal(action.fault.id, setup)
            }
        }
        try await Task.sleep(until: start + configuration.duration + state.withLock { $0.delay }, clock: .continuous)
        noteUnexpectedExits(setup)
    }

    /// Injects `fault` now (internal for `RecoveringNodeTests`).
    func inject(_ fault: ScheduledFault, _ setup: Setup) async {
        if fault.disruptsNodes, !(await nodesRecovered(before: fault, setup)) { return }
        var leader: Int?
        if fault.kind == .killLeader || fault.kind == .isolateLeader {
            let disrupted = state.withLock { $0.faults.disrupted }
            leader = await setup.cluster.leader(excluding: disrupted, timeout: .seconds(2))
        }
        let (effect, disrupted) = state.withLock { $0.faults.resolve(fault, leader: leader) }
        var note = ""
        if fault.kind == .killLeader || fault.kind == .isolateLeader {
            note = leader.map { " (leader: node \($0))" } ?? " (no leader known: took an undisrupted node)"
        }
        log("inject #\(fault.id) \(fault.kind.rawValue): \(effect)\(note)")
        state.withLock {
            $0.faults.add(id: fault.id, effect: effect, disrupted: disrupted)
            $0.injected[fault.kind, default: 0] += 1
        }
        switch effect {
        case .killNodes(let nodes): for node in nodes { await setup.cluster.kill(node) }
        case .freezeNodes(let nodes): for node in nodes { setup.cluster.freeze(node) }
        case .links: await applyLinks(setup)
        case .killWorker(let worker): await setup.workload.killWorker(worker)
        }
    }

    /// A node still replaying its log after a restart is as good as down: a node fault injected
    /// now could leave no quorum. So a node fault first waits (up to `recoveryWait`) for every node
    /// that no fault in force disrupts to be ready, and is skipped (logged, counted) if one is not.
    private func nodesRecovered(before fault: ScheduledFault, _ setup: Setup) async -> Bool {
        let (disrupted, delay, degraded) = state.withLock { ($0.faults.disrupted, $0.delay, $0.faults.degradesEveryLink) }
        // The schedule may run late by at most a quarter of its duration (then faults are skipped
        // instead), so a run's length stays bounded. While latency or packet drop is on every
        // link, waiting could not help (its own heal is queued behind this fault: the soak saw a
        // 2 s latency fault held 35 s that way), so the wait is short.
        var wait = min(configuration.recoveryWait, max(.zero, configuration.duration / 4 - delay))
        if degraded { wait = min(wait, Self.degradedLinksWait) }
        let waitStart = ContinuousClock.now
        let lagging = await setup.cluster.waitUntilReady(excluding: disrupted, timeout: wait)
        let waited = ContinuousClock.now - waitStart
        if waited > .milliseconds(500) {
            state.withLock { $0.delay += waited }
            log("#\(fault.id) \(fault.kind.rawValue) waited \(Self.seconds(waited)) for the nodes to recover; "
                + "the rest of the schedule runs that much later")
        }
        if lagging.isEmpty { return true }
        state.withLock { $0.skipped[fault.kind, default: 0] += 1 }
        log("skip #\(fault.id) \(fault.kind.rawValue): node\(lagging.count == 1 ? "" : "s") "
            + "\(lagging.map(String.init).joined(separator: ",")) not ready after earlier faults "
            + "(a node still recovering counts as down)")
        return false
    }

    /// How long a node fault waits for readiness while every link is degraded.
    static let degradedLinksWait: Duration = .seconds(2)

    static func seconds(_ duration: Duration) -> String {
        ChaosSchedule.seconds(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }

    private func heal(_ id: Int, _ setup: Setup) async {
        guard let active = state.withLock({ $0.faults.remove(id: id) }) else { return }
        let (down, disrupted) = state.withLock { ($0.faults.down, $0.faults.disrupted) }
        switch active.effect {
        case .killNodes(let nodes):
            for node in nodes where !down.contains(node) { startNode(node, setup) }
            log("heal #\(id): restarted node\(nodes.count == 1 ? "" : "s") \(nodes.map(String.init).joined(separator: ","))")
        case .freezeNodes(let nodes):
            for node in nodes where !disrupted.contains(node) { setup.cluster.thaw(node) }
            log("heal #\(id): SIGCONT node\(nodes.count == 1 ? "" : "s") \(nodes.map(String.init).joined(separator: ","))")
        case .links(let links, _):
            await applyLinks(setup)
            log("heal #\(id): \(links.count == 1 ? "link" : "\(links.count) links") back to what other faults leave")
        case .killWorker(let worker):
            do {
                try setup.workload.startWorker(worker)
                log("heal #\(id): worker \(worker) started again")
            } catch {
                problem("could not restart worker \(worker): \(error)")
            }
        }
    }

    private func startNode(_ node: Int, _ setup: Setup) {
        do {
            try setup.cluster.start(node)
        } catch {
            problem("could not restart node \(node): \(error)")
        }
    }

    /// Sets every link whose combined faults changed.
    private func applyLinks(_ setup: Setup) async {
        let changes: [(Link, LinkFaults)] = state.withLock { run in
            let wanted = run.faults.linkFaults
            let changed = wanted.filter { run.appliedLinks[$0.key] ?? .pass != $0.value }.sorted { $0.key < $1.key }
            for (link, faults) in changed { run.appliedLinks[link] = faults }
            return changed
        }
        for (link, faults) in changes { await setup.mesh.apply(faults, to: [link]) }
    }

    // MARK: - Healing and waiting

    private func healEverything(_ setup: Setup) async {
        let active = state.withLock { $0.faults.active }
        if !active.isEmpty { log("healing \(active.count) fault\(active.count == 1 ? "" : "s") still in force") }
        for fault in active.reversed() { await heal(fault.id, setup) }
        await setup.mesh.healAll()
        noteUnexpectedExits(setup)
        for node in setup.cluster.nodes where !setup.cluster.isRunning(node) {
            log("node \(node) is not running after the heal: starting it")
            startNode(node, setup)
        }
        for worker in 0 ..< configuration.workerCount {
            do { try setup.workload.startWorker(worker) } catch { problem("could not restart worker \(worker): \(error)") }
        }
        let deadline = configuration.quiescenceDeadline
        if let leader = await setup.cluster.waitForAgreedLeader(timeout: deadline) {
            log("healed: every node follows node \(leader)")
        } else {
            problem("after healing, the nodes did not agree on a leader within \(Self.seconds(deadline)) "
                + "(logs: \(configuration.directory)/node-*/log)")
        }
    }

    private func waitForLoad(_ setup: Setup) async {
        log("waiting up to \(configuration.quiescenceDeadline) for the load to close its transfers")
        for load in setup.workload.loadProcesses {
            guard let status = await load.waitForExit(timeout: configuration.quiescenceDeadline + .seconds(15)) else {
                problem("\(load.name) did not finish; see \(load.logPath)")
                continue
            }
            if status != 0 { problem("\(load.name) exited with status \(status) (not every transfer closed?); see \(load.logPath)") }
        }
        noteUnexpectedExits(setup)
        log("load finished")
    }

    private func runChecker(_ setup: Setup) async -> ChaosCheckReport? {
        var check = ChaosCheckConfiguration(apiEndpoints: setup.cluster.apiEndpoints, adminEndpoints: setup.cluster.adminEndpoints,
                                            namespace: "default", ledgerPath: setup.workload.ledgerPath,
                                            ackLogPaths: setup.workload.existingAckLogPaths,
                                            quiescenceDeadline: configuration.quiescenceDeadline)
        check.tls = setup.tls?.checker
        let missing = setup.workload.ackLogPaths.count - check.ackLogPaths.count
        log("checking the invariants (\(check.ackLogPaths.count) ack logs\(missing > 0 ? "; \(missing) processes ended before opening theirs" : ""))")
        do {
            return try await ChaosChecker.check(check, logger: logger)
        } catch {
            problem("the checker failed: \(error)")
            return nil
        }
    }

    // MARK: - Bookkeeping

    /// Records, once each, nodes and workers that exited without the run killing them.
    private func noteUnexpectedExits(_ setup: Setup) {
        for (node, status) in setup.cluster.unexpectedExits {
            let key = "node \(node) \(status)"
            guard state.withLock({ $0.reportedExits.insert(key).inserted }) else { continue }
            problem("node \(node) exited on its own with status \(status); see \(setup.cluster.logPath(node))")
        }
        // A worker that gives up (e.g. its start-up call found no leader before its deadline) is
        // restarted and noted: the workload's resilience, not a broken invariant.
        for (worker, status, logPath) in setup.workload.unexpectedWorkerExits {
            let key = "worker \(worker) \(logPath)"
            guard state.withLock({ $0.reportedExits.insert(key).inserted }) else { continue }
            let reason = (try? String(contentsOfFile: logPath, encoding: .utf8))?
                .split(separator: "\n").last { $0.hasPrefix("error:") }.map(String.init) ?? "no error line"
            note("worker \(worker) exited on its own with status \(status) (\(reason)); see \(logPath); started again")
            do { try setup.workload.startWorker(worker) } catch { problem("could not restart worker \(worker): \(error)") }
        }
    }

    private func log(_ message: String) {
        let elapsed = ContinuousClock.now - state.withLock { $0.start }
        let milliseconds = elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000
        emit("[\(ChaosSchedule.seconds(milliseconds).leftPadded(to: 7))] \(message)")
    }

    private func note(_ message: String) {
        state.withLock { $0.notes.append(message) }
        log("note: \(message)")
    }

    private func problem(_ message: String) {
        state.withLock { $0.problems.append(message) }
        log("PROBLEM: \(message)")
    }

    func report(check: ChaosCheckReport?) -> ChaosRunReport {
        let (injected, skipped, notes, problems) = state.withLock { ($0.injected, $0.skipped, $0.notes, $0.problems) }
        var report = ChaosRunReport(seed: configuration.seed, nodes: configuration.nodeCount,
                                    durationSeconds: Double(configuration.duration.components.seconds),
                                    workers: configuration.workerCount, directory: configuration.directory,
                                    faultsByKind: injected, check: check, problems: problems)
        report.skippedByKind = skipped
        report.notes = notes
        report.tls = configuration.tls
        return report
    }
}

extension String {
    /// Padded with spaces on the left to `width`.
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
