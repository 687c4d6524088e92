import ArgumentParser
import BallastEngine
import BallastRaft
import BallastServer
import BallastStorage
import BallastWire
import CBallastAllocator
import Foundation
import Logging
import NIOPosix

/// `ballast server`: one cluster member. Restarting with the same data directory resumes;
/// SIGTERM or SIGINT hands leadership to a peer, drains and exits 0.
struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "Run one Ballast cluster member.",
        discussion: """
            Flags or a config file (--config, one `key = value` per line using the flag names, e.g. \
            `id = 1`, `peers = 1=127.0.0.1:7001,2=127.0.0.1:7002`); flags override the file.
            """)

    @Option(help: "Config file with `flag-name = value` lines.") var config: String?
    @Option(help: "This member's id, a positive integer.") var id: UInt64?
    @Option(help: "Data directory (created if missing).") var dataDir: String?
    @Option(help: "Raft listen address HOST:PORT.") var raft: String?
    @Option(help: "Client and worker API address HOST:PORT.") var api: String?
    @Option(help: "Admin HTTP address HOST:PORT (binds 127.0.0.1 unless told otherwise).") var admin: String?
    @Option(help: "Initial voters: ID=HOST:PORT,… (Raft addresses, this node included).") var peers: String?
    @Option(help: "Local override of how to reach a peer: ID=HOST:PORT,… (e.g. a fault proxy).") var peerAddress: String?
    @Option(help: "Join an existing cluster: API addresses HOST:PORT,… of its members. The node starts with no membership of its own and waits for `ballast cluster add-node`.")
    var join: String?
    @Option(help: "Take a state-machine snapshot after this many bytes of applied log (default 64 MiB).") var snapshotThresholdBytes: Int?
    @Option(help: "Log entries kept behind a snapshot for slightly lagging followers (default 1024).") var compactionSlackEntries: Int?
    @Option(help: "Free bytes in the data directory's file system below which new writes are refused with RESOURCE_EXHAUSTED (default 256 MiB; 0 turns the check off).")
    var diskReserveBytes: UInt64?
    @Option(help: "Most client and worker connections the API port keeps open; more are closed at accept (default 1024).")
    var maxConnections: Int?
    @Option(help: "Most connections the admin port keeps open; more are closed at accept (default 128).")
    var adminMaxConnections: Int?
    @Option(help: "New API connections accepted per second and in a burst; over it accepting pauses (default 500).")
    var maxNewConnectionsPerSecond: Int?
    @Option(help: "Largest request message on the API port in bytes; larger ones get RESOURCE_EXHAUSTED (default 4 MiB, at most 15 MiB: a request becomes one Raft log entry).")
    var maxMessageBytes: Int?
    @Option(help: "Eager dispatch, true or false (default true): an entry that makes tasks ready starts them itself for a worker with free slots, saving an entry per task. The leader turns it on by itself once every member applies it (docs/operations.md, \"Upgrades\").")
    var eagerDispatch: String?
    @Option(help: "The newest engine entry format this node applies and reports (default: the newest this build knows, \(newestEngineFormatVersion)); a lower one makes it act as an older build. Given to every member, it keeps a downgrade to that build possible; to one member, it rehearses an upgrade (docs/operations.md, \"Upgrades\").")
    var maxEngineFormat: String?
    @Option(help: "Raft tick in milliseconds.") var tickMs: Int?
    @Option(help: "Election timeout in ticks.") var electionTicks: Int?
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel: String?
    @Option(help: "Require this token for the web UI's actions (signal, cancel, terminate); prefer the config file's `admin-token` key, which `ps` does not show.")
    var adminToken: String?
    @Option(help: "Web UI tokens bound to identities: `IDENTITY TOKEN` lines (tokens of 32+ characters; keep the file mode 600). A UI action is recorded as, and checked as, the identity of the token it presents. Reloaded on SIGHUP and when the file changes.")
    var adminTokens: String?
    @Option(help: "Roles file (`IDENTITY ROLE NAMESPACE [TASK_QUEUE]` lines), applied once when the cluster's roles were never set (docs/security.md).")
    var roles: String?
    @Option(help: "TLS: this node's certificate chain, PEM (naming ballast://node/<id>). With --tls-key and --tls-ca, every port uses mutual TLS.")
    var tlsCert: String?
    @Option(help: "TLS: the private key of --tls-cert, PEM.") var tlsKey: String?
    @Option(help: "TLS: the CA bundle that clients' and peers' certificates must chain to, PEM.") var tlsCa: String?
    @Option(help: "TLS: lowest version accepted, 1.2 or 1.3 (default 1.3).") var tlsMinVersion: String?
    @Flag(help: "Refuse to start unless the TLS files are given (a guard against starting a production node in cleartext).")
    var tlsRequired = false
    @Flag(help: "TLS: also serve cleartext connections (for moving a running cluster to TLS; not for production).")
    var tlsAllowCleartext = false
    @Option(help: "TLS: check the certificate files for changes every this many milliseconds (0: only on SIGHUP; default 2000).")
    var tlsReloadIntervalMs: Int?

    func run() async throws {
        let settings = try ServerSettings(fileAt: config).overridden(by: flagValues)
        var configuration = try settings.nodeConfiguration()
        configuration = try await BallastNode.prepareJoin(configuration, group: MultiThreadedEventLoopGroup.singleton)
        var logger = Logger(label: "ballast.node.\(configuration.id.rawValue)")
        logger.logLevel = Logger.Level(rawValue: settings["log-level"] ?? "info") ?? .info
        let fatalLogger = logger
        Self.logAllocator(logger)
        FileDescriptorLimit.raiseAndReport(for: configuration, logger: logger)
        try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
        let history = try HistoryFileStore(directory: configuration.dataDirectory + "/history")
        if let torn = history.recoveryReport.tornTail {
            logger.notice("history store: cut a torn tail (the Raft log replays it)",
                          metadata: ["file": "\(torn.file)", "offset": "\(torn.offset)", "reason": "\(torn.reason)"])
        }
        let machine = EngineStateMachine(logger: logger, history: history, newestFormatVersion: configuration.maxEngineFormat) { why in
            fatalLogger.critical("\(why)")
            Foundation.exit(70)
        }
        let node = try BallastNode(configuration: configuration, stateMachine: machine, logger: logger)
        try await node.start()
        ReloadSignal.onHangUp {
            node.reloadTLS(reason: "SIGHUP")
            node.reloadAdminTokens(reason: "SIGHUP")
        }
        let maintenance = HistoryMaintenance.start(history, logger: logger)
        await ShutdownSignal.wait()
        logger.info("shutting down: handing over leadership and draining")
        await node.shutdown()
        maintenance.cancel()
        history.close()
        logger.info("stopped")
    }

    /// Says which allocator the process runs on: jemalloc, linked in (`CBallastAllocator`).
    private static func logAllocator(_ logger: Logger) {
        let version = String(cString: ballast_allocator_version())
        logger.info("allocator: jemalloc \(version.isEmpty ? "(version unknown)" : version)")
    }

    private var flagValues: [String: String] {
        var values: [String: String] = [:]
        values["id"] = id.map { String($0) }
        values["data-dir"] = dataDir
        values["raft"] = raft
        values["api"] = api
        values["admin"] = admin
        values["peers"] = peers
        values["peer-address"] = peerAddress
        values["join"] = join
        values["snapshot-threshold-bytes"] = snapshotThresholdBytes.map { String($0) }
        values["compaction-slack-entries"] = compactionSlackEntries.map { String($0) }
        values["tick-ms"] = tickMs.map { String($0) }
        values["disk-reserve-bytes"] = diskReserveBytes.map { String($0) }
        values["election-ticks"] = electionTicks.map { String($0) }
        values["max-connections"] = maxConnections.map { String($0) }
        values["admin-max-connections"] = adminMaxConnections.map { String($0) }
        values["max-new-connections-per-second"] = maxNewConnectionsPerSecond.map { String($0) }
        values["max-message-bytes"] = maxMessageBytes.map { String($0) }
        values["eager-dispatch"] = eagerDispatch
        values["max-engine-format"] = maxEngineFormat
        values["log-level"] = logLevel
        values["admin-token"] = adminToken
        values["admin-tokens"] = adminTokens
        values["roles"] = roles
        values["tls-cert"] = tlsCert
        values["tls-key"] = tlsKey
        values["tls-ca"] = tlsCa
        values["tls-min-version"] = tlsMinVersion
        if tlsRequired { values["tls-required"] = "true" }
        if tlsAllowCleartext { values["tls-allow-cleartext"] = "true" }
        values["tls-reload-interval-ms"] = tlsReloadIntervalMs.map { String($0) }
        return values
    }
}

/// Server settings by flag name, from a config file and then flags.
struct ServerSettings {
    static let keys: Set<String> = ["id", "data-dir", "raft", "api", "admin", "peers", "peer-address", "tick-ms",
                                    "election-ticks", "log-level", "join", "snapshot-threshold-bytes", "compaction-slack-entries",
                                    "admin-token", "admin-tokens", "roles",
                                    "tls-cert", "tls-key", "tls-ca", "tls-min-version", "tls-required", "tls-allow-cleartext",
                                    "tls-reload-interval-ms", "disk-reserve-bytes",
                                    "max-connections", "max-new-connections-per-second", "max-message-bytes", "eager-dispatch", "max-engine-format",
                                    "admin-max-connections"]
    private var values: [String: String] = [:]

    subscript(key: String) -> String? { values[key] }

    /// Reads `key = value` lines (`#` comments, blank lines ignored); unknown keys are errors.
    init(fileAt path: String?) throws {
        guard let path else { return }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ValidationError("cannot read config file \(path)")
        }
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            guard !line.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\r" }) else { continue }
            let parts = line.split(separator: "=", maxSplits: 1)
            let key = parts.first.map { String($0).trimmingCharacters(in: .whitespaces) } ?? ""
            guard parts.count == 2, Self.keys.contains(key) else {
                throw ValidationError("\(path):\(number + 1): expected `key = value` with a key among \(Self.keys.sorted())")
            }
            values[key] = String(parts[1]).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    func overridden(by flags: [String: String]) -> ServerSettings {
        var merged = self
        for (key, value) in flags { merged.values[key] = value }
        return merged
    }

    func nodeConfiguration() throws -> NodeConfiguration {
        func require(_ key: String) throws -> String {
            guard let value = values[key], !value.isEmpty else { throw ValidationError("--\(key) is required") }
            return value
        }
        guard let rawID = UInt64(try require("id")), rawID > 0 else { throw ValidationError("--id must be a positive integer") }
        let raftAddress = try HostPort(parsing: try require("raft"))
        var configuration = NodeConfiguration(
            id: NodeID(rawID), dataDirectory: try require("data-dir"), raftAddress: raftAddress,
            apiAddress: try HostPort(parsing: values["api"] ?? "127.0.0.1:0"),
            adminAddress: try HostPort(parsing: values["admin"] ?? "127.0.0.1:0"),
            peers: try NodeConfiguration.parseMemberList(values["peers"] ?? "\(rawID)=\(raftAddress)", flag: "--peers"))
        configuration.peerAddressOverrides = try NodeConfiguration.parseMemberList(values["peer-address"] ?? "", flag: "--peer-address")
        if let tick = values["tick-ms"] {
            guard let milliseconds = Int(tick), (1 ... 1000).contains(milliseconds) else { throw ValidationError("--tick-ms must be 1…1000") }
            configuration.tickInterval = .milliseconds(milliseconds)
        }
        if let ticks = values["election-ticks"] {
            guard let count = Int(ticks), (3 ... 10_000).contains(count) else { throw ValidationError("--election-ticks must be 3…10000") }
            configuration.raft.electionTimeoutTicks = count
        }
        if let join = values["join"] {
            configuration.joinAddresses = try join.split(separator: ",").map { try HostPort(parsing: String($0)) }
            guard !configuration.joinAddresses.isEmpty else { throw ValidationError("--join needs at least one HOST:PORT") }
        }
        if let bytes = values["snapshot-threshold-bytes"] {
            guard let count = Int(bytes), count >= 1024 else { throw ValidationError("--snapshot-threshold-bytes must be at least 1024") }
            configuration.raft.snapshotThresholdBytes = count
        }
        if let entries = values["compaction-slack-entries"] {
            guard let count = Int(entries), count >= 0 else { throw ValidationError("--compaction-slack-entries must be 0 or more") }
            configuration.raft.compactionSlackEntries = count
        }
        if let token = values["admin-token"] {
            guard (16 ... 1024).contains(token.utf8.count), token.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
                throw ValidationError("--admin-token must be 16-1024 printable ASCII characters without spaces")
            }
            configuration.adminToken = token
        }
        if let path = values["admin-tokens"] {
            guard !path.isEmpty else { throw ValidationError("--admin-tokens must name a file") }
            // Validated here so that a bad file stops the start with the line named; the node
            // loads it again (and warns about its mode).
            do { _ = try AdminTokens.load(path: path) } catch { throw ValidationError("--admin-tokens: \(error)") }
            configuration.adminTokensPath = path
        }
        if let path = values["roles"], !path.isEmpty {
            do { configuration.security.bootstrapRoles = try RolesFile.load(path: path) } catch { throw ValidationError("--roles: \(error)") }
            configuration.security.rolesSource = path
        }
        if let bytes = values["disk-reserve-bytes"] {
            guard let count = UInt64(bytes) else { throw ValidationError("--disk-reserve-bytes must be a byte count, 0 or more") }
            configuration.diskReserveBytes = count
        }
        configuration.apiLimits = try apiLimits()
        if let text = values["admin-max-connections"] {
            guard let count = Int(text), (1 ... 100_000).contains(count) else {
                throw ValidationError("--admin-max-connections must be 1…100000")
            }
            configuration.adminMaxConnections = count
        }
        if let text = values["eager-dispatch"] {
            guard let enabled = Bool(text) else { throw ValidationError("--eager-dispatch takes true or false, not '\(text)'") }
            configuration.eagerDispatch = enabled
        }
        if let text = values["max-engine-format"] {
            guard let version = UInt32(text), (engineFormatVersion ... newestEngineFormatVersion).contains(version) else {
                throw ValidationError("--max-engine-format takes \(engineFormatVersion) to \(newestEngineFormatVersion), not '\(text)'")
            }
            configuration.maxEngineFormat = version
        }
        configuration.tls = try tlsConfiguration()
        try configuration.validate()
        return configuration
    }

    /// `--max-connections`, `--max-new-connections-per-second`, `--max-message-bytes`.
    func apiLimits() throws -> APILimits {
        var limits = APILimits()
        func count(_ key: String, _ range: ClosedRange<Int>, _ what: String) throws -> Int? {
            guard let text = values[key] else { return nil }
            guard let value = Int(text), range.contains(value) else {
                throw ValidationError("--\(key) must be \(what)")
            }
            return value
        }
        if let value = try count("max-connections", 1 ... 1_000_000, "1…1000000") { limits.maxConnections = value }
        if let value = try count("max-new-connections-per-second", 1 ... 1_000_000, "1…1000000") {
            limits.maxNewConnectionsPerSecond = value
        }
        // A request becomes one log entry, a little larger than the request, and a follower
        // takes entries of at most 16 MiB: 15 MiB leaves room (reliability.md, bug 37).
        let largest = min(GRPCServerConfiguration().maxBufferedRequestBytesPerConnection, RaftMessageCodec.defaultMaxBlobBytes - (1 << 20))
        if let value = try count("max-message-bytes", 1024 ... largest,
                                 "1024…\(largest) bytes (a request becomes one Raft log entry, of at most \(RaftMessageCodec.defaultMaxBlobBytes >> 20) MiB)") {
            limits.maxReceiveMessageBytes = value
        }
        return limits
    }

    /// `--tls-*`: all three files or none; the version and the flags only with them.
    func tlsConfiguration() throws -> NodeTLSConfiguration? {
        func flag(_ key: String) throws -> Bool {
            guard let value = values[key] else { return false }
            guard let parsed = Bool(value) else { throw ValidationError("--\(key) takes true or false, not '\(value)'") }
            return parsed
        }
        let files = [values["tls-cert"], values["tls-key"], values["tls-ca"]]
        guard files.contains(where: { $0 != nil }) else {
            if try flag("tls-required") {
                throw ValidationError("--tls-required: give --tls-cert, --tls-key and --tls-ca (this node would serve cleartext)")
            }
            for key in ["tls-min-version", "tls-allow-cleartext", "tls-reload-interval-ms"] where values[key] != nil {
                throw ValidationError("--\(key) needs --tls-cert, --tls-key and --tls-ca")
            }
            return nil
        }
        guard let cert = files[0], let key = files[1], let ca = files[2], !cert.isEmpty, !key.isEmpty, !ca.isEmpty else {
            throw ValidationError("TLS needs all of --tls-cert, --tls-key and --tls-ca")
        }
        for path in [cert, key, ca] where !FileManager.default.isReadableFile(atPath: path) {
            throw ValidationError("cannot read TLS file \(path)")
        }
        var tls = NodeTLSConfiguration(files: TLSFiles(certificate: cert, privateKey: key, trustRoots: ca))
        if let version = values["tls-min-version"] {
            guard let parsed = TLSMinimumVersion(rawValue: version) else { throw ValidationError("--tls-min-version must be 1.2 or 1.3") }
            tls.minimumVersion = parsed
        }
        tls.allowCleartext = try flag("tls-allow-cleartext")
        if try flag("tls-required"), tls.allowCleartext {
            throw ValidationError("--tls-required and --tls-allow-cleartext contradict each other")
        }
        if let interval = values["tls-reload-interval-ms"] {
            guard let milliseconds = Int(interval), (0 ... 3_600_000).contains(milliseconds) else {
                throw ValidationError("--tls-reload-interval-ms must be 0…3600000")
            }
            tls.reloadPollInterval = .milliseconds(milliseconds)
        }
        return tls
    }
}

/// Runs a handler on every SIGHUP (certificate reload) for the life of the process.
enum ReloadSignal {
    static func onHangUp(_ handler: @escaping @Sendable () -> Void) {
        signal(SIGHUP, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        source.setEventHandler(handler: handler)
        source.resume()
        SignalSources.keep(source)
    }
}

/// Waits for SIGTERM or SIGINT.
enum ShutdownSignal {
    static func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let once = OnceFlag()
            for signalNumber in [SIGTERM, SIGINT] {
                signal(signalNumber, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
                source.setEventHandler { if once.claim() { continuation.resume() } }
                source.resume()
                SignalSources.keep(source)
            }
        }
    }
}

/// Keeps signal sources alive for the life of the process.
enum SignalSources {
    nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []
    private static let lock = NSLock()
    static func keep(_ source: any DispatchSourceSignal) {
        lock.lock()
        sources.append(source)
        lock.unlock()
    }
}

/// True for the first caller only.
final class OnceFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var claimed = false
    func claim() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if claimed { return false }
        claimed = true
        return true
    }
}
