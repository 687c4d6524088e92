import BallastEngine
import BallastRaft
import BallastWire

/// The API port's limits an operator may change; everything else about the port keeps
/// `GRPCServerConfiguration`'s defaults.
public struct APILimits: Sendable, Hashable {
    /// Open client connections; more are closed at accept.
    public var maxConnections = GRPCServerConfiguration().maxConnections
    /// New connections accepted per second (and in a burst); over it accepting pauses.
    public var maxNewConnectionsPerSecond = GRPCServerConfiguration().maxNewConnectionsPerSecond
    /// Largest request message; larger ones get RESOURCE_EXHAUSTED.
    public var maxReceiveMessageBytes = GRPCServerConfiguration().maxReceiveMessageBytes

    /// The defaults.
    public init() {}

    /// `configuration` with these limits.
    public func applied(to configuration: GRPCServerConfiguration) -> GRPCServerConfiguration {
        var configuration = configuration
        configuration.maxConnections = maxConnections
        configuration.maxNewConnectionsPerSecond = maxNewConnectionsPerSecond
        configuration.maxReceiveMessageBytes = maxReceiveMessageBytes
        return configuration
    }
}

/// Mutual TLS for a node's three ports (`--tls-cert`, `--tls-key`, `--tls-ca`, docs/security.md).
public struct NodeTLSConfiguration: Sendable, Hashable {
    /// The node's certificate (naming `ballast://node/<id>`), key and CA bundle.
    public var files: TLSFiles
    /// Lowest TLS version accepted and offered (`--tls-min-version`, default 1.3).
    public var minimumVersion: TLSMinimumVersion = .v1_3
    /// Serve cleartext connections too (`--tls-allow-cleartext`, for migrating a cluster only).
    public var allowCleartext = false
    /// How often the files are checked for changes (0: only on SIGHUP).
    public var reloadPollInterval: Duration = .seconds(2)

    /// Creates the configuration.
    public init(files: TLSFiles) {
        self.files = files
    }

    /// The options of one listening port.
    public var serverOptions: TLSServerOptions {
        TLSServerOptions(files: files, minimumVersion: minimumVersion, required: !allowCleartext)
    }

    /// What this node presents and trusts when it dials a peer or a member's API or admin port.
    public var clientOptions: TLSClientOptions { TLSClientOptions(files: files, minimumVersion: minimumVersion) }
}

/// A `HOST:PORT` pair as given on the command line, validated.
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    /// Host name or IP literal (IPv6 without brackets).
    public var host: String
    /// TCP port, 0…65535 (0 binds a free port).
    public var port: Int

    /// Creates an address.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT` or `[IPv6]:PORT`.
    public init(parsing text: String) throws(ConfigurationError) {
        let trimmed = text.trimmingSpaces
        guard let colon = trimmed.lastIndex(of: ":") else { throw .invalid("address '\(text)' needs HOST:PORT") }
        var host = String(trimmed[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, host.utf8.count <= 253, !host.contains(" ") else { throw .invalid("address '\(text)' has no valid host") }
        guard let port = Int(trimmed[trimmed.index(after: colon)...]), (0 ... 65_535).contains(port) else {
            throw .invalid("address '\(text)' has no valid port (0-65535)")
        }
        self.init(host: host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Why a node's configuration was refused. The message says what to change.
public enum ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalid(String)
    public var description: String {
        switch self {
        case .invalid(let why): why
        }
    }
}

/// Everything a `ballast server` process needs, from flags or a config file.
public struct NodeConfiguration: Sendable {
    /// This member's id (a positive integer, shown as a string in status output).
    public var id: NodeID
    /// The data directory: WAL, hard state, snapshots, history store.
    public var dataDirectory: String
    /// Where this node listens for Raft peers.
    public var raftAddress: HostPort
    /// Where this node serves clients and workers (gRPC over HTTP/2).
    public var apiAddress: HostPort
    /// Where this node serves `/healthz`, `/readyz`, `/status`, `/metrics` and the UI.
    public var adminAddress: HostPort
    /// The initial voters and their Raft addresses, this node included.
    public var peers: [NodeID: HostPort]
    /// Local overrides of how to reach a peer (e.g. through a fault proxy).
    public var peerAddressOverrides: [NodeID: HostPort] = [:]
    /// `--join`: API addresses of an existing cluster this brand-new node joins (as a learner,
    /// added by `ballast cluster add-node`) instead of bootstrapping a cluster of its own.
    public var joinAddresses: [HostPort] = []
    /// Free bytes in the data directory's file system below which the node refuses new
    /// proposals with RESOURCE_EXHAUSTED (0 turns the check off; writes that fail for lack of
    /// space are still retried). See docs/reliability.md, "Disk faults".
    public var diskReserveBytes: UInt64 = 256 << 20
    /// The joined cluster's initial voters, fetched from `joinAddresses` before the node starts
    /// (`BallastNode.prepareJoin`); ignored once the data directory has a members file.
    public var joinInitialVoters: [NodeID]?
    /// When set, the web UI's mutating actions (signal, cancel, terminate) require this token;
    /// they are recorded under the identity `admin-token`.
    public var adminToken: String?
    /// `--admin-tokens FILE`: `IDENTITY TOKEN` lines; a UI action presenting one of these tokens
    /// is recorded under (and, when roles are enforced, checked as) the identity bound to it.
    /// Reloaded on SIGHUP and when the file changes (docs/security.md, "Admin UI tokens").
    public var adminTokensPath: String?
    /// Length of one Raft tick.
    public var tickInterval: Duration = .milliseconds(10)
    /// Raft tunables (election timeout in ticks, batching, snapshots).
    public var raft: RaftConfiguration
    /// Authorization and the roles bootstrap (docs/security.md).
    public var security = SecuritySettings()
    /// Mutual TLS on the Raft, API and admin ports; nil serves them in cleartext.
    public var tls: NodeTLSConfiguration?
    /// Limits of the API port against misbehaving clients (`--max-connections`,
    /// `--max-new-connections-per-second`, `--max-message-bytes`; docs/protocol.md, "Limits
    /// against hostile clients"). The defaults are `GRPCServerConfiguration`'s.
    public var apiLimits = APILimits()
    /// Connections the admin port keeps open at most (`--admin-max-connections`); more are
    /// closed at accept (docs/operations.md, "The admin port").
    public var adminMaxConnections = AdminHTTPServer.defaultMaxConnections
    /// Eager dispatch (`--eager-dispatch`): entries that make tasks ready start them for a
    /// worker with free slots (format-version-2 entries, which builds before it cannot apply).
    public var eagerDispatch = true
    /// The newest engine entry format this node applies and reports (`--max-engine-format`,
    /// hidden: lower only to make a node act as an older build when rehearsing an upgrade).
    /// The leader proposes eager entries only while every member reports 2 or more.
    public var maxEngineFormat: UInt32 = newestEngineFormatVersion
    /// Rows of the visibility index a List page may read on the Raft loop thread; a page that
    /// needs more is built on a copy of the engine off the loop (BallastNode.listWorkflows).
    /// 5,000 rows take about 1.5 ms in a release build; a page of the largest size (1,000
    /// runs) from an index that serves its query reads 1,001. Tests set it low.
    public var listRowsOnLoop = 5_000

    /// Creates a configuration; call `validate()` before use.
    public init(id: NodeID, dataDirectory: String, raftAddress: HostPort, apiAddress: HostPort, adminAddress: HostPort,
                peers: [NodeID: HostPort]) {
        self.id = id
        self.dataDirectory = dataDirectory
        self.raftAddress = raftAddress
        self.apiAddress = apiAddress
        self.adminAddress = adminAddress
        self.peers = peers
        var raft = RaftConfiguration(id: id)
        raft.electionTimeoutTicks = 15
        // A restarted node applies its log since the last snapshot (up to the snapshot
        // threshold, 64 MiB) a MiB at a time, ticking, voting and answering /status between.
        raft.maxCommittedBytesPerReady = 1 << 20
        self.raft = raft
    }

    /// The address this node dials for `peer`: the override if there is one.
    public func dialAddress(for peer: NodeID) -> HostPort? { peerAddressOverrides[peer] ?? peers[peer] }

    /// Checks the configuration as a whole.
    public func validate() throws(ConfigurationError) {
        guard id.rawValue > 0 else { throw .invalid("--id must be a positive integer") }
        guard !dataDirectory.isEmpty else { throw .invalid("--data-dir is required") }
        guard let own = peers[id] else { throw .invalid("--peers must include this node (\(id.rawValue)=\(raftAddress))") }
        guard own.port == raftAddress.port || raftAddress.port == 0 else {
            throw .invalid("--peers gives \(own) for this node but --raft is \(raftAddress)")
        }
        let ports = [raftAddress.port, apiAddress.port, adminAddress.port].filter { $0 != 0 }
        guard Set(ports).count == ports.count else { throw .invalid("--raft, --api and --admin must use different ports") }
        guard tickInterval >= .milliseconds(1) else { throw .invalid("the tick interval must be at least 1 ms") }
    }

    /// Parses `id=HOST:PORT,id=HOST:PORT`.
    public static func parseMemberList(_ text: String, flag: String) throws(ConfigurationError) -> [NodeID: HostPort] {
        var members: [NodeID: HostPort] = [:]
        for item in text.split(separator: ",") where !item.trimmingSpaces.isEmpty {
            let parts = item.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let raw = UInt64(parts[0].trimmingSpaces), raw > 0 else {
                throw .invalid("\(flag): '\(item)' must be ID=HOST:PORT with a positive integer ID")
            }
            guard members[NodeID(raw)] == nil else { throw .invalid("\(flag): member \(raw) is listed twice") }
            members[NodeID(raw)] = try HostPort(parsing: String(parts[1]))
        }
        return members
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs.
    var trimmingSpaces: String {
        let characters = Array(self)
        guard let first = characters.firstIndex(where: { $0 != " " && $0 != "\t" }),
              let last = characters.lastIndex(where: { $0 != " " && $0 != "\t" }) else { return "" }
        return String(characters[first ... last])
    }
}
