import BallastWire
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// Certificates made once per test run with scripts/tls-certs (openssl).
enum TLSTestCertificates {
    /// Directory holding: ca (trusted), other-ca, server (node/1), alice, expired, future,
    /// stranger (from other-ca), wrongname (server cert naming only other.example), server2.
    static let directory: Task<URL, any Error> = Task {
        let dir = try TestPaths.sharedTemporaryDirectory("ballast-tls")
        let script = TestPaths.repoRoot.appendingPathComponent("scripts/tls-certs").path
        func run(_ arguments: [String]) async throws {
            let (status, _, stderr) = try await ChildProcess.run("/bin/bash", [script] + arguments)
            guard status == 0 else { throw ChildProcessError(command: "tls-certs \(arguments)", detail: stderr) }
        }
        let path = dir.path
        try await run(["ca", path, "ca"])
        try await run(["ca", path, "other-ca"])
        try await run(["issue", path, "ca", "server", "node/1"])
        try await run(["issue", path, "ca", "server2", "node/1"])
        try await run(["issue", path, "ca", "alice", "alice"])
        try await run(["issue", path, "ca", "expired", "old-alice", "--start", "20200101000000Z", "--end", "20200102000000Z"])
        try await run(["issue", path, "ca", "future", "new-alice", "--start", "20400101000000Z", "--end", "20410101000000Z"])
        try await run(["issue", path, "other-ca", "stranger", "mallory"])
        try await run(["issue", path, "ca", "wrongname", "node/9", "--only-names", "--dns", "other.example"])
        return dir
    }

    static func path(_ name: String) async throws -> String {
        try await directory.value.appendingPathComponent(name).path
    }

    /// Server options with `name`'s certificate, trusting `ca`.
    static func server(_ name: String = "server", ca: String = "ca", required: Bool = true) async throws -> TLSServerOptions {
        TLSServerOptions(files: TLSFiles(certificate: try await path("\(name).crt"), privateKey: try await path("\(name).key"),
                                         trustRoots: try await path("\(ca).crt")), required: required)
    }

    /// Client options presenting `name` (nil: no certificate), trusting `ca`.
    static func client(_ name: String?, ca: String = "ca") async throws -> TLSClientOptions {
        TLSClientOptions(trustRoots: try await path("\(ca).crt"),
                         certificate: name == nil ? nil : try await path("\(name!).crt"),
                         privateKey: name == nil ? nil : try await path("\(name!).key"))
    }
}

/// Log lines kept in memory, to check what a refused handshake logs.
final class CapturedLog: Sendable {
    let lines = NIOLockedValueBox<[String]>([])

    var logger: Logger {
        Logger(label: "test") { _ in CapturingHandler(log: self) }
    }

    func contains(_ text: String) -> Bool { lines.withLockedValue { $0.contains { $0.contains(text) } } }

    /// Polls until a line containing `text` was logged (the server logs after the client saw the close).
    func waitFor(_ text: String, seconds: Double = 5) async -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if contains(text) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return contains(text)
    }

    struct CapturingHandler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .info
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let all = self.metadata.merging(event.metadata ?? [:]) { $1 }
            let text = "\(event.level) \(event.message) "
                + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            log.lines.withLockedValue { $0.append(text) }
        }
    }
}

/// Mutual TLS on a gRPC server: the verified peer reaches handlers; every bad handshake is
/// refused with a log line on the server and a clear error on the client, and none disturbs a
/// good client of the same server.
@Suite("TLS handshakes", .serialized)
struct TLSHandshakeTests {
    static let whoami = "/ballast.v1.testing.EchoService/Echo"

    /// A server whose Echo answers the caller's verified identity (or "-" in cleartext).
    static func withServer(_ options: TLSServerOptions?, log: CapturedLog,
                           _ body: (Int, TLSContextStore?) async throws -> Void) async throws {
        var registry = GRPCMethodRegistry()
        registry.unaryOnEventLoop(whoami) { (request: EchoRequest, context) -> EchoResponse in
            var response = EchoResponse()
            response.text = context.peer?.name ?? "-"
            response.payload = request.payload
            return response
        }
        var configuration = GRPCServerConfiguration()
        let store = try options.map { try TLSContextStore(options: $0, applicationProtocols: ["h2"], portName: "api", logger: log.logger) }
        configuration.tls = store
        let server = try await GRPCServer.start(host: "127.0.0.1", port: 0, registry: registry, configuration: configuration,
                                                logger: log.logger)
        do {
            try await body(server.port!, store)
        } catch {
            await server.close()
            throw error
        }
        await server.close()
    }

    static func connect(_ port: Int, _ tls: TLSClientOptions?) async throws -> GRPCClient {
        var configuration = GRPCClientConfiguration()
        configuration.tls = tls
        return try await GRPCClient.connect(host: "127.0.0.1", port: port, configuration: configuration)
    }

    static func whoami(_ client: GRPCClient) async throws -> String {
        try await client.unary(whoami, request: EchoRequest(), responseType: EchoResponse.self, timeout: .seconds(5)).text
    }

    /// Connects and calls once; returns the error's text (connect or call), nil if it worked.
    static func failure(_ port: Int, _ tls: TLSClientOptions?) async -> String? {
        do {
            let client = try await connect(port, tls)
            defer { Task { await client.close() } }
            _ = try await whoami(client)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test("a verified client certificate names the caller in every call's context")
    func peerIdentity() async throws {
        let log = CapturedLog()
        try await Self.withServer(try await TLSTestCertificates.server(), log: log) { port, _ in
            let client = try await Self.connect(port, try await TLSTestCertificates.client("alice"))
            #expect(try await Self.whoami(client) == "alice")
            var large = EchoRequest()
            large.payload = Data(repeating: 9, count: 1 << 20)
            #expect(try await client.unary(Self.whoami, request: large, responseType: EchoResponse.self).payload == large.payload)
            await client.close()
        }
    }

    @Test("no certificate, another CA, expired, not yet valid: refused with a log line and a clear client error; a good client keeps working")
    func refusedClients() async throws {
        let log = CapturedLog()
        try await Self.withServer(try await TLSTestCertificates.server(), log: log) { port, _ in
            let good = try await Self.connect(port, try await TLSTestCertificates.client("alice"))
            #expect(try await Self.whoami(good) == "alice")

            let cases: [(String?, String, String)] = [
                (nil, "requires a client certificate", "the client presented no certificate"),
                ("stranger", "not issued by a CA the peer trusts", "client certificate refused: mallory is not issued by a trusted CA"),
                ("expired", "it has expired or is not valid yet", "client certificate refused: old-alice expired at 2020-01-02"),
                ("future", "it has expired or is not valid yet", "client certificate refused: new-alice is not valid before 2040-01-01"),
            ]
            for (name, clientText, serverText) in cases {
                let before = log.lines.withLockedValue { $0.count }
                let error = await Self.failure(port, try await TLSTestCertificates.client(name))
                #expect(error?.contains("UNAVAILABLE") == true || error?.contains("unavailable") == true, "\(name ?? "none"): \(error ?? "accepted")")
                #expect(error?.contains(clientText) == true, "\(name ?? "none"): \(error ?? "accepted")")
                #expect(await log.waitFor(serverText), "\(name ?? "none"): \(log.lines.withLockedValue { $0 })")
                #expect(log.lines.withLockedValue { $0.dropFirst(before).contains { $0.contains("refused") } })
                // The serving connection is untouched.
                #expect(try await Self.whoami(good) == "alice")
            }
            await good.close()
        }
    }

    @Test("the client refuses a server whose certificate is from another CA or names another host")
    func refusedServers() async throws {
        let log = CapturedLog()
        try await Self.withServer(try await TLSTestCertificates.server("wrongname"), log: log) { port, _ in
            let error = await Self.failure(port, try await TLSTestCertificates.client("alice"))
            #expect(error?.contains("does not name the host") == true, "\(error ?? "accepted")")
        }
        try await Self.withServer(try await TLSTestCertificates.server("stranger", ca: "ca"), log: log) { port, _ in
            let error = await Self.failure(port, try await TLSTestCertificates.client("alice"))
            #expect(error?.contains("failed verification") == true, "\(error ?? "accepted")")
        }
    }

    @Test("a TLS-required port refuses cleartext with a log line; an optional one serves it without a peer")
    func cleartext() async throws {
        let log = CapturedLog()
        try await Self.withServer(try await TLSTestCertificates.server(), log: log) { port, _ in
            let error = await Self.failure(port, nil)
            #expect(error != nil)
            #expect(await log.waitFor("refused a cleartext connection"))
            // A TLS client of a cleartext server gets a clear error too.
        }
        try await Self.withServer(try await TLSTestCertificates.server(required: false), log: log) { port, _ in
            let plain = try await Self.connect(port, nil)
            #expect(try await Self.whoami(plain) == "-")
            let secure = try await Self.connect(port, try await TLSTestCertificates.client("alice"))
            #expect(try await Self.whoami(secure) == "alice")
            await plain.close()
            await secure.close()
        }
        try await Self.withServer(nil, log: log) { port, _ in
            let error = await Self.failure(port, try await TLSTestCertificates.client("alice"))
            #expect(error?.contains("TLS") == true, "\(error ?? "accepted")")
        }
    }

    @Test("a reload puts new certificates in use for new connections, keeps established ones, and refuses a bad file")
    func reload() async throws {
        let dir = try TestPaths.temporaryDirectory("ballast-tls-reload")
        defer { try? FileManager.default.removeItem(at: dir) }
        let files = TLSFiles(certificate: dir.appendingPathComponent("node.crt").path,
                             privateKey: dir.appendingPathComponent("node.key").path,
                             trustRoots: dir.appendingPathComponent("ca.crt").path)
        func install(_ name: String, ca: String) async throws {
            for (from, to) in [("\(name).crt", files.certificate), ("\(name).key", files.privateKey), ("\(ca).crt", files.trustRoots)] {
                let data = try Data(contentsOf: URL(fileURLWithPath: try await TLSTestCertificates.path(from)))
                try data.write(to: URL(fileURLWithPath: to), options: .atomic)
            }
        }
        try await install("server", ca: "ca")
        let log = CapturedLog()
        try await Self.withServer(TLSServerOptions(files: files), log: log) { port, store in
            let store = try #require(store)
            let old = try await Self.connect(port, try await TLSTestCertificates.client("alice"))
            #expect(try await Self.whoami(old) == "alice")
            // A client trusting only the other CA cannot connect yet.
            #expect(await Self.failure(port, try await TLSTestCertificates.client("stranger", ca: "other-ca")) != nil)

            // Rotate to a certificate from the other CA (trusting it for clients too).
            try await install("stranger", ca: "other-ca")
            #expect(store.reloadIfChanged() == .reloaded)
            #expect(store.reloadIfChanged() == .unchanged)
            let new = try await Self.connect(port, try await TLSTestCertificates.client("stranger", ca: "other-ca"))
            #expect(try await Self.whoami(new) == "mallory")
            #expect(try await Self.whoami(old) == "alice", "the established connection survives the rotation")

            // A broken key file is refused; the certificates in use stay.
            try Data("not a key".utf8).write(to: URL(fileURLWithPath: files.privateKey))
            guard case .refused = store.reloadIfChanged() else { Issue.record("a bad key was accepted"); return }
            #expect(log.contains("reload refused"))
            let again = try await Self.connect(port, try await TLSTestCertificates.client("stranger", ca: "other-ca"))
            #expect(try await Self.whoami(again) == "mallory")
            await old.close()
            await new.close()
            await again.close()
        }
    }
}
