import ArgumentParser
import BallastWire
import Foundation

/// Throwaway certificates for a benchmark cluster with TLS on (`ballast bench cluster --tls`):
/// a CA, `node-<id>` for each node (`ballast://node/<id>`, IP 127.0.0.1) and a `client`, made
/// with the `openssl` command in `directory` (EC P-256, one day).
struct BenchTLS: Sendable {
    let directory: String

    init(directory: String, nodes: [Int]) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Self.openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", path("ca.key")])
        try Self.openssl(["req", "-x509", "-new", "-key", path("ca.key"), "-sha256", "-days", "2", "-subj", "/CN=bench-ca",
                          "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
                          "-out", path("ca.crt")])
        for (name, identity) in nodes.map({ ("node-\($0)", "node/\($0)") }) + [("client", "bench-client")] {
            try issue(name, identity: identity)
        }
        // A TLS node enforces roles: the benchmark's client may do everything.
        try "bench-client admin *\n".write(toFile: path("roles"), atomically: true, encoding: .utf8)
    }

    private func issue(_ name: String, identity: String) throws {
        let extensions = path("\(name).ext")
        try ("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n"
             + "subjectAltName=URI:ballast://\(identity),DNS:localhost,IP:127.0.0.1\n")
            .write(toFile: extensions, atomically: true, encoding: .utf8)
        try Self.openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", path("\(name).key")])
        try Self.openssl(["req", "-new", "-key", path("\(name).key"), "-subj", "/CN=\(identity.replacingOccurrences(of: "/", with: "\\/"))",
                          "-out", path("\(name).csr")])
        try Self.openssl(["x509", "-req", "-in", path("\(name).csr"), "-CA", path("ca.crt"), "-CAkey", path("ca.key"),
                          "-CAcreateserial", "-days", "1", "-sha256", "-extfile", extensions, "-out", path("\(name).crt")])
    }

    func path(_ name: String) -> String { directory + "/" + name }

    /// `ballast server` flags for node `id`.
    func serverFlags(_ id: Int) -> [String] {
        ["--tls-cert", path("node-\(id).crt"), "--tls-key", path("node-\(id).key"), "--tls-ca", path("ca.crt"),
         "--roles", path("roles")]
    }

    /// What the benchmark's own connections present.
    var client: TLSClientOptions {
        TLSClientOptions(trustRoots: path("ca.crt"), certificate: path("client.crt"), privateKey: path("client.key"))
    }

    static func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch { throw ValidationError("--tls needs the openssl command: \(error)") }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ValidationError("openssl \(arguments.first ?? "") failed: \(String(decoding: output, as: UTF8.self))")
        }
    }
}
