import BallastWire
import Foundation

/// The certificates and roles of a chaos run with TLS on (`ballast chaos --tls`): a throwaway CA
/// and, in `<run>/tls/`, `node-<id>` for each node, `chaos-worker` for the transfers workers,
/// `chaos-load` for the load generators and `chaos-checker` for the run's own probes and the
/// invariant checker. The nodes require TLS, so they enforce roles: `roles` grants each identity
/// only what it needs (docs/reliability.md, "TLS").
public struct ChaosTLS: Sendable {
    /// The identities the run's processes present.
    public static let workerIdentity = "chaos-worker"
    public static let loadIdentity = "chaos-load"
    public static let checkerIdentity = "chaos-checker"

    /// The bindings the first leader bootstraps: the worker polls every queue of `default`; the
    /// load starts and signals transfers and waits for them (writer, implied by admin); both
    /// register the example's search attribute when they start (admin on `default`, nothing
    /// cluster-wide); the checker only reads (reader).
    public static let roles = """
        # identity     role    namespace  [task queue]
        chaos-worker   worker  default
        chaos-worker   admin   default
        chaos-load     admin   default
        chaos-checker  reader  default

        """

    public let certificates: ThrowawayCertificates

    /// Makes the CA, every certificate and the roles file in `directory`.
    public init(directory: String, nodes: [Int]) throws {
        certificates = try ThrowawayCertificates(directory: directory)
        for node in nodes { try certificates.issue("node-\(node)", identity: "node/\(node)") }
        for identity in [Self.workerIdentity, Self.loadIdentity, Self.checkerIdentity] {
            try certificates.issue(identity, identity: identity)
        }
        try Self.roles.write(toFile: rolesPath, atomically: true, encoding: .utf8)
    }

    /// `directory/roles`.
    public var rolesPath: String { certificates.path("roles") }

    /// `ballast server` flags of node `node`: its certificate (TLS required) and the roles file.
    public func serverFlags(_ node: Int) -> [String] {
        certificates.serverFlags("node-\(node)") + ["--roles", rolesPath]
    }

    /// `transfers worker` flags.
    public var workerFlags: [String] { certificates.clientFlags(Self.workerIdentity) }
    /// `transfers start` flags.
    public var loadFlags: [String] { certificates.clientFlags(Self.loadIdentity) }
    /// What the run's probes of the admin ports and the checker present.
    public var checker: TLSClientOptions { certificates.client(Self.checkerIdentity) }
}
