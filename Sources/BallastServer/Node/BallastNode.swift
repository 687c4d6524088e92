import BallastRaft
import BallastStorage
import BallastWire
import Foundation
import Logging
import NIOCore
import NIOPosix

/// One `ballast server` process: the Raft driver on its write-ahead log, the Raft TCP transport,
/// the tick timer and the admin HTTP port, around a replicated state machine.
public final class BallastNode: @unchecked Sendable {
    public let configuration: NodeConfiguration
    let logger: Logger
    let group: MultiThreadedEventLoopGroup
    let transport: TCPRaftTransport
    let driver: RaftDriver
    let stateMachine: EngineStateMachine
    let dispatcher: Dispatcher
    /// State digests for `/status?digest=1`, one computed at a time.
    let digests: SingleFlight<StatusDigest>
    /// Reads that run on a copy of the engine, one at a time (`readOnCopy`).
    let offLoopReads = AdmissionGate(capacity: 1, maxWaiting: BallastNode.maxWaitingOffLoopReads)
    /// List pages being built on the Raft loop thread, a few at a time (`listWorkflows`).
    let listsOnLoop = AdmissionGate(capacity: BallastNode.listPagesOnLoopAtOnce, maxWaiting: BallastNode.maxWaitingListPages)
    /// Authorization, the roles bootstrap and the audit outbox (Security/).
    let security: NodeSecurity
    /// Whether the disk is too full for new writes (free space, stalled writes).
    public let diskGuard: DiskSpaceGuard
    private var ticker: RepeatedTask?
    private var metricsRefresher: RepeatedTask?
    private var timerTicker: RepeatedTask?
    private var formatAgreementTimer: RepeatedTask?
    /// The leader's rounds of asking members which engine format they apply.
    let formatRounds = FormatAgreementRounds()
    /// The node's Prometheus metrics (`/metrics`).
    public let metrics: NodeMetrics
    private var admin: AdminHTTPServer?
    private var api: GRPCServer?
    /// The addresses actually bound (ports may have been 0 in the configuration).
    public private(set) var info: NodeInfo
    /// The TLS contexts of the API, Raft and admin ports (nil in cleartext), and their reloader.
    let tlsStores: (api: TLSContextStore, raft: TLSContextStore, admin: TLSContextStore)?
    private let tlsReloader: TLSReloader?
    /// The web UI's identity-bound tokens (`--admin-tokens`), reloaded on SIGHUP and file change.
    let adminTokens: AdminTokenStore?
    /// What this node presents when it dials a member's API or admin port (nil in cleartext).
    var clientTLS: TLSClientOptions? { configuration.tls?.clientOptions }

    /// Opens the data directory and restores Raft state; nothing listens until `start()`.
    public init(configuration: NodeConfiguration, stateMachine: EngineStateMachine, logger: Logger) throws {
        try configuration.validate()
        self.configuration = configuration
        self.logger = logger
        self.stateMachine = stateMachine
        var securitySettings = configuration.security
        // A node that verifies every caller's certificate enforces roles (docs/security.md).
        if let tls = configuration.tls, !tls.allowCleartext { securitySettings.enforceAuthorization = true }
        group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        info = NodeInfo(id: configuration.id.rawValue, raft: configuration.raftAddress.description,
                        api: configuration.apiAddress.description, admin: configuration.adminAddress.description)
        let raftDirectory = configuration.dataDirectory + "/raft"
        try FileManager.default.createDirectory(atPath: raftDirectory, withIntermediateDirectories: true)
        let diskGuard = DiskSpaceGuard(directory: configuration.dataDirectory, reserveBytes: configuration.diskReserveBytes,
                                       nodeID: configuration.id.rawValue, logger: logger)
        diskGuard.refresh()
        self.diskGuard = diskGuard
        stateMachine.onHistoryNoSpace = { diskGuard.noteWriteStalled("history", $0) }
        adminTokens = try configuration.adminTokensPath.map { try AdminTokenStore(path: $0, logger: logger) }
        let (book, bootstrap) = try Self.openAddressBook(configuration, logger: logger)
        if let tls = configuration.tls {
            let options = tls.serverOptions
            let stores = (api: try TLSContextStore(options: options, applicationProtocols: ["h2"], portName: "api", logger: logger),
                          raft: try TLSContextStore(options: options, applicationProtocols: [], portName: "raft", logger: logger),
                          admin: try TLSContextStore(options: options, applicationProtocols: ["http/1.1"], portName: "admin",
                                                     logger: logger))
            tlsStores = stores
            tlsReloader = TLSReloader(stores: [stores.api, stores.raft, stores.admin])
        } else {
            tlsStores = nil
            tlsReloader = nil
        }
        let raftTLS = tlsStores.map { RaftTLS(server: $0.raft, client: configuration.tls!.clientOptions) }
        transport = Self.makeTransport(configuration, info: info, book: book, group: group, logger: logger, tls: raftTLS)
        let transport = self.transport
        security = NodeSecurity(settings: securitySettings, publisher: stateMachine.rolePublisher,
                                nodeID: configuration.id.rawValue, logger: logger,
                                isMemberNode: { transport.knownNodes[$0] != nil })
        let metrics = NodeMetrics()
        self.metrics = metrics
        let dispatcher = Dispatcher(logger: logger, metrics: metrics, stateMachine: stateMachine, history: StoreHistorySource(stateMachine: stateMachine),
                                    eagerDispatch: configuration.eagerDispatch)
        self.dispatcher = dispatcher
        stateMachine.onApplied = { index, result in
            metrics.recordApplied(result)
            dispatcher.applied(index: index, result: result)
        }
        stateMachine.onRestored = { dispatcher.restored() }
        driver = try RaftDriver(
            configuration: configuration.raft, log: try WriteAheadLog(directory: raftDirectory), bootstrap: bootstrap,
            stateMachine: MembershipTracker(inner: stateMachine, transport: transport, localID: configuration.id, logger: logger),
            transport: transport,
            randomSeed: configuration.id.rawValue ^ UInt64(truncatingIfNeeded: ContinuousClock.now.hashValue),
            logger: logger,
            writerOptions: LogWriter.Options(onGroupCommitted: metrics.recordGroupCommit,
                                             onDiskPressure: { diskGuard.noteWriteStalled("wal", $0) }),
            leadershipObserver: { dispatcher.leadershipChanged($0) },
            diskFullReason: { diskGuard.fullReason })
        dispatcher.driver = driver
        digests = Self.digestRounds(driver: driver, machine: stateMachine)
        dispatcher.notLeaderStatus = { [weak self] in
            await self?.notLeaderStatus(waitForLeader: .seconds(2)) ?? GRPCStatus.notLeader(leaderAddress: nil)
        }
    }

    /// Binds the Raft, API and admin ports and starts ticking.
    public func start(adminRouter: AdminRouter? = nil) async throws {
        loadFormatFloor()  // before the first tick: a leader elected at once writes at least the floor
        let driver = self.driver
        let raftPort = try await transport.listen(
            host: configuration.raftAddress.host, port: configuration.raftAddress.port) { driver.receive($0) }
        let tick = configuration.tickInterval
        let nanoseconds = tick.components.seconds * 1_000_000_000 + tick.components.attoseconds / 1_000_000_000
        ticker = group.next().scheduleRepeatedTask(initialDelay: .nanoseconds(nanoseconds), delay: .nanoseconds(nanoseconds)) { _ in
            driver.tick()
        }
        let metrics = self.metrics
        let dispatcher = self.dispatcher
        let diskGuard = self.diskGuard
        metricsRefresher = group.next().scheduleRepeatedTask(initialDelay: .milliseconds(250), delay: .milliseconds(250)) { _ in
            diskGuard.refresh()
            driver.inspect { metrics.update(from: $0) }
            let (streams, pending) = dispatcher.metricsSnapshot()
            metrics.updateDispatch(streams: streams, pending: pending)
        }
        timerTicker = group.next().scheduleRepeatedTask(initialDelay: .milliseconds(5), delay: .milliseconds(5)) { _ in
            dispatcher.tick()
        }
        formatAgreementTimer = group.next().scheduleRepeatedTask(initialDelay: .milliseconds(100), delay: .milliseconds(100)) {
            [self] _ in formatAgreementTick()
        }
        let router = adminRouter ?? { [self] request in await route(request) }
        let server = try await AdminHTTPServer(
            host: configuration.adminAddress.host, port: configuration.adminAddress.port, group: group, logger: logger,
            maxConnections: configuration.adminMaxConnections, tls: tlsStores?.admin, router: router)
        admin = server
        var apiConfiguration = configuration.apiLimits.applied(to: GRPCServerConfiguration())
        apiConfiguration.tls = tlsStores?.api
        let apiServer = try await GRPCServer.start(
            host: configuration.apiAddress.host, port: configuration.apiAddress.port, registry: makeRegistry(),
            configuration: apiConfiguration, group: group, logger: logger)
        if let tls = configuration.tls, tls.reloadPollInterval > .zero {
            tlsReloader?.startPolling(every: tls.reloadPollInterval)
        }
        if let tlsStores {
            // One audit record per reload (the three ports load the same files).
            tlsStores.api.observeReloads { [weak self] result, reason in
                let detail = switch result {
                case .reloaded: "certificates reloaded (\(reason))"
                case .refused(let why): "certificate reload refused (\(reason)): \(why)"
                case .unchanged: "certificates unchanged (\(reason))"
                }
                self?.recordSecurityEvent(.certificateReloaded, detail: detail)
            }
        }
        api = apiServer
        startSecurityLoop()
        info.raft = HostPort(host: configuration.raftAddress.host, port: raftPort).description
        info.admin = HostPort(host: configuration.adminAddress.host, port: server.port).description
        info.api = HostPort(host: configuration.apiAddress.host, port: apiServer.port ?? configuration.apiAddress.port).description
        transport.updateLocalInfo(info)
        logger.info("node started", metadata: ["node": "\(configuration.id.rawValue)", "raft": "\(info.raft)",
                                              "admin": "\(info.admin)", "api": "\(info.api)",
                                              "tls": "\(configuration.tls == nil ? "off" : configuration.tls!.allowCleartext ? "optional" : "required")"])
    }

    /// Reads the TLS files again (SIGHUP): new connections on every port use the new certificates,
    /// established ones keep theirs; files that do not load are refused and the old ones stay.
    /// Returns false when TLS is off or a port refused the files.
    @discardableResult
    public func reloadTLS(reason: String) -> Bool {
        guard let tlsReloader else {
            logger.info("TLS reload requested, but this node serves cleartext", metadata: ["reason": "\(reason)"])
            return false
        }
        return tlsReloader.reloadAll(reason: reason).allSatisfy { $0 == .reloaded }
    }

    /// Reads `--admin-tokens FILE` again (SIGHUP, or the file changed when `onlyIfChanged`); a
    /// file that does not load is refused and the previous tokens stay. Each reload or refusal
    /// is recorded in the audit log. Returns false without a tokens file or when refused.
    @discardableResult
    public func reloadAdminTokens(reason: String, onlyIfChanged: Bool = false) -> Bool {
        guard let adminTokens else { return false }
        switch adminTokens.reload(reason: reason, onlyIfChanged: onlyIfChanged) {
        case .unchanged:
            return true
        case .reloaded(let count):
            recordSecurityEvent(.adminTokensReloaded, detail: "admin tokens reloaded (\(reason)): \(count) tokens from \(adminTokens.path)")
            return true
        case .refused(let why):
            recordSecurityEvent(.adminTokensReloaded, detail: "admin tokens reload refused (\(reason)); the previous tokens stay: \(why)")
            return false
        }
    }

    /// Per port: inbound connections open now, and those closed at accept since the node started
    /// (for `/metrics`).
    func connectionCounts() -> [(port: String, open: Int, refused: Int)] {
        var counts = [(port: "raft", open: transport.inboundCap.openConnections, refused: transport.inboundCap.refusedConnections)]
        if let api { counts.append(("api", api.connectionCount, api.refusedConnectionCount)) }
        if let admin { counts.append(("admin", admin.openConnections, admin.refusedConnections)) }
        return counts
    }

    /// The core's status, read on the driver's loop thread.
    public func raftStatus() async -> RaftStatus {
        await withCheckedContinuation { continuation in driver.inspect { continuation.resume(returning: $0) } }
    }

    /// This node's status as served at `/status`; with `digest`, also the engine's state digest,
    /// of the engine captured on the loop thread together with the Raft status (so the two
    /// describe one moment) and computed on a thread of its own, one digest at a time
    /// (`digests`: concurrent requests share the next one).
    public func status(digest: Bool = false) async -> NodeStatus {
        guard digest else { return describe(await raftStatus()) }
        let computed = await digests.next()
        var status = describe(computed.raft)
        status.stateDigest = computed.digest
        status.digestIndex = computed.index
        return status
    }

    /// A state digest and the Raft status of the moment it was captured.
    struct StatusDigest: Sendable {
        var raft: RaftStatus
        var index: UInt64
        var digest: String
    }

    /// Computes state digests for `status(digest: true)`, one at a time.
    static func digestRounds(driver: RaftDriver, machine: EngineStateMachine) -> SingleFlight<StatusDigest> {
        SingleFlight { done in
            driver.inspect { raft in
                let engine = machine.captureDigest()
                startThread(named: "state-digest") { done(StatusDigest(raft: raft, index: engine.index, digest: engine.compute())) }
            }
        }
    }

    private func describe(_ raft: RaftStatus) -> NodeStatus {
        var status = NodeStatus(raft: raft, info: info)
        status.engineFormatVersion = configuration.maxEngineFormat
        status.eagerDispatch = dispatcher.eagerActive
        status.entryFormat = dispatcher.entryFormat
        return status
    }

    /// Graceful stop: hands leadership to the most caught-up peer (waiting up to `transferTimeout`),
    /// then stops the driver and closes every port.
    public func shutdown(transferTimeout: Duration = .seconds(2)) async {
        // Stopped first, while the driver and the event loops it uses still run (it ends within
        // its current status read or admin request, at most a second).
        formatAgreementTimer?.cancel()
        await stopFormatAgreement()
        let status = await raftStatus()
        let voters = status.progress.filter { status.membership.isVoter($0.key) }
        if status.role == .leader, let target = voters.max(by: { $0.value.match < $1.value.match })?.key {
            logger.info("transferring leadership before shutdown", metadata: ["target": "\(target)"])
            driver.transferLeadership(to: target)
            let deadline = ContinuousClock.now + transferTimeout
            while ContinuousClock.now < deadline, await raftStatus().role == .leader {
                try? await Task.sleep(for: .milliseconds(10))
            }
        }
        await api?.shutdownGracefully()
        security.stop()
        tlsReloader?.stop()
        metricsRefresher?.cancel()
        timerTicker?.cancel()
        ticker?.cancel()
        driver.stop()
        await admin?.close()
        await transport.shutdown()
        try? await group.shutdownGracefully()
    }
}
