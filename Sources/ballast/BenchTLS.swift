import BallastChaos
import BallastWire
import Foundation

/// Throwaway certificates for a benchmark cluster with TLS on (`ballast bench cluster --tls`):
/// a CA, `node-<id>` for each node (`ballast://node/<id>`) and a `client`, made by
/// `ThrowawayCertificates` in `directory` (one day), and a roles file.
struct BenchTLS: Sendable {
    let certificates: ThrowawayCertificates

    init(directory: String, nodes: [Int]) throws {
        certificates = try ThrowawayCertificates(directory: directory, validityDays: 1)
        for id in nodes { try certificates.issue("node-\(id)", identity: "node/\(id)") }
        try certificates.issue("client", identity: "bench-client")
        // A TLS node enforces roles: the benchmark's client may do everything.
        try "bench-client admin *\n".write(toFile: certificates.path("roles"), atomically: true, encoding: .utf8)
    }

    /// `ballast server` flags for node `id`.
    func serverFlags(_ id: Int) -> [String] {
        certificates.serverFlags("node-\(id)") + ["--roles", certificates.path("roles")]
    }

    /// What the benchmark's own connections present.
    var client: TLSClientOptions { certificates.client("client") }
}
