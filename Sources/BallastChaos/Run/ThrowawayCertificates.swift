import BallastWire
import Foundation

/// Throwaway certificates for a local TLS cluster started from Swift (`ballast chaos --tls`,
/// `ballast bench cluster --tls`), made with the `openssl` command exactly as
/// `scripts/tls-certs` makes them for `cluster/up --tls` (docs/security.md, "Certificates"):
/// an EC P-256 CA, and leaves naming `URI:ballast://<identity>`, `DNS:localhost` and
/// `IP:127.0.0.1`, usable for server and client authentication. The CA key stays in
/// `directory`: these certificates are for one run on one machine, never for production.
public struct ThrowawayCertificates: Sendable {
    /// Why a certificate could not be made.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        /// What went wrong, with openssl's output.
        public var description: String
    }

    /// Where `ca.crt`, `ca.key` and each `<name>.crt` / `<name>.key` are.
    public let directory: String
    /// How long every certificate is valid, from now.
    public let validityDays: Int

    /// Creates `directory` (if needed) and a new CA in it.
    public init(directory: String, validityDays: Int = 2) throws {
        precondition(validityDays >= 1, "a certificate is valid for at least a day")
        self.directory = directory
        self.validityDays = validityDays
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Self.openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", path("ca.key")])
        try Self.openssl(["req", "-x509", "-new", "-key", path("ca.key"), "-sha256", "-days", String(validityDays),
                          "-subj", "/O=Ballast/CN=throwaway-ca",
                          "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                          "-out", path("ca.crt")])
        try Self.restrict(path("ca.key"))
    }

    /// Issues `<name>.crt` and `<name>.key` for `identity` (`node/3`, `worker`, …), signed by the CA.
    public func issue(_ name: String, identity: String) throws {
        precondition(!name.contains("/"), "a certificate's file name is one path component")
        let extensions = path("\(name).ext")
        try ("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
             + "extendedKeyUsage=serverAuth,clientAuth\n"
             + "subjectAltName=URI:ballast://\(identity),DNS:localhost,IP:127.0.0.1\n")
            .write(toFile: extensions, atomically: true, encoding: .utf8)
        try Self.openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", path("\(name).key")])
        try Self.restrict(path("\(name).key"))
        try Self.openssl(["req", "-new", "-key", path("\(name).key"),
                          "-subj", "/O=Ballast/CN=\(identity.replacingOccurrences(of: "/", with: "\\/"))", "-out", path("\(name).csr")])
        try Self.openssl(["x509", "-req", "-in", path("\(name).csr"), "-CA", path("ca.crt"), "-CAkey", path("ca.key"),
                          "-CAcreateserial", "-days", String(validityDays), "-sha256", "-extfile", extensions,
                          "-out", path("\(name).crt")])
        try? FileManager.default.removeItem(atPath: path("\(name).csr"))
        try? FileManager.default.removeItem(atPath: extensions)
    }

    /// `directory/name`.
    public func path(_ name: String) -> String { directory + "/" + name }

    /// The `ballast server` flags that make a node serve and dial with `<name>.crt` (TLS required).
    public func serverFlags(_ name: String) -> [String] {
        ["--tls-cert", path("\(name).crt"), "--tls-key", path("\(name).key"), "--tls-ca", path("ca.crt")]
    }

    /// The `--tls-ca/--tls-cert/--tls-key` flags of a client presenting `<name>.crt`.
    public func clientFlags(_ name: String) -> [String] {
        ["--tls-ca", path("ca.crt"), "--tls-cert", path("\(name).crt"), "--tls-key", path("\(name).key")]
    }

    /// Client options presenting `<name>.crt`.
    public func client(_ name: String) -> TLSClientOptions {
        TLSClientOptions(trustRoots: path("ca.crt"), certificate: path("\(name).crt"), privateKey: path("\(name).key"))
    }

    private static func restrict(_ file: String) throws {
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file)
    }

    static func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch { throw Failure(description: "TLS needs the openssl command: \(error)") }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "openssl \(arguments.first ?? "") failed: \(String(decoding: output, as: UTF8.self))")
        }
    }
}
