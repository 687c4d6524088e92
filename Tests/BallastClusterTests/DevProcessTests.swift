import BallastEngine
import BallastProto
import BallastSDK
import BallastServer
import Foundation
import SwiftProtobuf
import TransfersKit
import NIOPosix
import Testing

/// `ballast dev` as a user runs it: one process, its two address lines, workflows against it,
/// the web UI and its protected actions, and a clean exit on Ctrl-C.
@Suite("ballast dev and its web UI", .serialized)
struct DevProcessTests {
    static let token = "dev-test-token-0123456789"

    /// A running `ballast dev`, its output files and ports; killed and removed in `stop`.
    final class Dev: @unchecked Sendable {
        let binary: String
        let directory: String
        let apiPort: Int
        let adminPort: Int
        let process = Process()

        init(extraArguments: [String] = []) throws {
            binary = try ProcessCluster.locateBinary()
            directory = NSTemporaryDirectory() + "ballast-dev-test-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            (apiPort, adminPort) = (try ProcessCluster.freePort(), try ProcessCluster.freePort())
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["dev", "--api", "127.0.0.1:\(apiPort)", "--admin", "127.0.0.1:\(adminPort)"] + extraArguments
            var environment = ProcessInfo.processInfo.environment
            environment["TMPDIR"] = directory  // the temporary data directory goes here, so the test can see it go away
            process.environment = environment
            process.standardOutput = try Self.file(directory + "/dev.out")
            process.standardError = try Self.file(directory + "/dev.err")
            try process.run()
        }

        static func file(_ path: String) throws -> FileHandle {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
            return try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        }

        var output: String { (try? String(contentsOfFile: directory + "/dev.out", encoding: .utf8)) ?? "" }
        var errors: String { (try? String(contentsOfFile: directory + "/dev.err", encoding: .utf8)) ?? "" }

        /// Waits for the `api:` and `ui:` lines.
        func waitForAddresses(timeout: Duration = .seconds(60)) async throws -> [String] {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                let lines = output.split(separator: "\n").map(String.init)
                if lines.contains(where: { $0.hasPrefix("ui: ") }) { return lines }
                guard process.isRunning else { throw ClusterTestFailure("ballast dev exited: \(output) \(errors)") }
                try await Task.sleep(for: .milliseconds(50))
            }
            throw ClusterTestFailure("ballast dev printed no addresses within \(timeout): \(output) \(errors)")
        }

        /// Runs another binary (the CLI, transfers) to completion within `timeout`.
        func run(_ executable: String, _ arguments: [String], timeout: Duration = .seconds(120)) async throws -> (Int32, String) {
            let child = Process()
            child.executableURL = URL(fileURLWithPath: executable)
            child.arguments = arguments
            let log = directory + "/child-\(UUID().uuidString.prefix(6)).log"
            child.standardOutput = try Self.file(log)
            child.standardError = child.standardOutput
            try child.run()
            let deadline = ContinuousClock.now + timeout
            while child.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
            if child.isRunning {
                child.terminate()
                throw ClusterTestFailure("\(arguments.prefix(2)) still running after \(timeout)")
            }
            return (child.terminationStatus, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
        }

        func stop() {
            if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    @Test("ballast dev prints its addresses, runs transfers, serves the UI, and exits 0 on SIGINT, removing its temporary data")
    func devLifecycle() async throws {
        let dev = try Dev()
        defer { dev.stop() }
        let lines = try await dev.waitForAddresses()
        #expect(lines.contains("api: 127.0.0.1:\(dev.apiPort)"), "\(lines)")
        #expect(lines.contains("ui: http://127.0.0.1:\(dev.adminPort)/"), "\(lines)")
        let dataLine = try #require(lines.first { $0.hasPrefix("data: ") })
        let dataDirectory = String(dataLine.dropFirst("data: ".count).split(separator: " ").first ?? "")
        #expect(dataDirectory.hasPrefix(dev.directory) && FileManager.default.fileExists(atPath: dataDirectory + "/raft"))

        let transfers = URL(fileURLWithPath: dev.binary).deletingLastPathComponent().appendingPathComponent("transfers").path
        let address = "127.0.0.1:\(dev.apiPort)"
        let worker = Process()
        worker.executableURL = URL(fileURLWithPath: transfers)
        worker.arguments = ["worker", "--address", address, "--ledger", dev.directory + "/ledger.sqlite"]
        worker.standardOutput = try Dev.file(dev.directory + "/worker.log")
        worker.standardError = worker.standardOutput
        try worker.run()
        defer { if worker.isRunning { kill(worker.processIdentifier, SIGKILL); worker.waitUntilExit() } }
        let (status, output) = try await dev.run(transfers, ["start", "--address", address, "--ledger", dev.directory + "/ledger.sqlite",
                                                             "--count", "5", "--large-fraction", "0", "--json"])
        #expect(status == 0, "transfers start: \(output)")
        #expect(output.contains("\"closed\":5"), "\(output)")

        let group = MultiThreadedEventLoopGroup.singleton
        let (code, body) = try await AdminHTTPClient.get(host: "127.0.0.1", port: dev.adminPort, path: "/", timeout: .seconds(10), group: group)
        let page = String(decoding: body, as: UTF8.self)
        #expect(code == 200)
        #expect(page.contains("<strong id=\"total-count\">5</strong>"), "the list counts the five transfers")
        #expect(page.components(separatedBy: "class=\"workflow-link\"").count == 6)

        // The detail page's download: the protobuf JSON of ballast.v1.History, as WorkflowReplayer decodes it.
        let link = try #require(page.components(separatedBy: "class=\"workflow-link\" href=\"").dropFirst().first?.split(separator: "\"").first)
        let (downloadCode, download) = try await AdminHTTPClient.get(host: "127.0.0.1", port: dev.adminPort, path: link + "/history.json",
                                                                     timeout: .seconds(10), group: group)
        #expect(downloadCode == 200)
        let history = try Ballast_V1_History(jsonUTF8Data: Data(download))
        #expect(history.events.first?.typeName == "WorkflowExecutionStarted")
        #expect(history.events.last?.typeName == "WorkflowExecutionCompleted")
        #expect(history.events.map(\.eventID) == Array(1 ... Int64(history.events.count)))
        try WorkflowReplayer(workflows: [TransferWorkflow.self]).replay(historyJSON: Data(download))

        kill(dev.process.processIdentifier, SIGINT)
        let deadline = ContinuousClock.now + .seconds(30)
        while dev.process.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!dev.process.isRunning, "ballast dev still runs 30 s after SIGINT")
        #expect(dev.process.terminationReason == .exit && dev.process.terminationStatus == 0, "\(dev.errors)")
        #expect(!FileManager.default.fileExists(atPath: dataDirectory), "the temporary data directory is removed on exit")
    }

    @Test("UI actions: the token and the page's CSRF token are required, a hostile id renders inert, and a cancel records the token's identity and why")
    func protectedActions() async throws {
        let dev = try Dev(extraArguments: ["--admin-token", Self.token])
        defer { dev.stop() }
        _ = try await dev.waitForAddresses()
        let hostile = "<script>alert(1)</script>/x?y#z"
        let (started, output) = try await dev.run(dev.binary, ["workflow", "start", "--address", "127.0.0.1:\(dev.apiPort)",
                                                               "--type", "Nobody", "--task-queue", "none", "--workflow-id", hostile, "--json"])
        #expect(started == 0, "\(output)")
        let json = try #require(output.split(separator: "\n").first { $0.contains("\"run_id\"") })
        let fields = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let runID = try #require(fields["run_id"] as? String)
        let path = "/workflows/" + (hostile.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "") + "/" + runID

        let group = MultiThreadedEventLoopGroup.singleton
        let (code, body) = try await AdminHTTPClient.get(host: "127.0.0.1", port: dev.adminPort, path: path, timeout: .seconds(10), group: group)
        let page = String(decoding: body, as: UTF8.self)
        #expect(code == 200)
        #expect(!page.contains("<script>alert(1)</script>"))
        #expect(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;/x?y#z"))
        let csrf = try #require(page.components(separatedBy: "name=\"csrf\" value=\"").dropFirst().first?.split(separator: "\"").first)

        let host = "127.0.0.1:\(dev.adminPort)"
        let form = "reason=customer+asked&operator=tester&confirm=yes&csrf=\(csrf)"
        let noToken = try RawHTTP.post(port: dev.adminPort, path: path + "/cancel", headers: ["Host": host, "Origin": "http://\(host)"], body: form)
        #expect(noToken.status == 401, "\(noToken)")
        let badCSRF = try RawHTTP.post(port: dev.adminPort, path: path + "/cancel", headers: ["Host": host],
                                       body: "reason=x&confirm=yes&csrf=guess&admin_token=\(Self.token)")
        #expect(badCSRF.status == 403, "\(badCSRF)")
        let crossOrigin = try RawHTTP.post(port: dev.adminPort, path: path + "/cancel", headers: ["Host": host, "Origin": "http://evil.example"],
                                           body: form + "&admin_token=\(Self.token)")
        #expect(crossOrigin.status == 403, "\(crossOrigin)")
        let noReason = try RawHTTP.post(port: dev.adminPort, path: path + "/terminate", headers: ["Host": host],
                                        body: "reason=&confirm=yes&csrf=\(csrf)&admin_token=\(Self.token)")
        #expect(noReason.status == 400, "\(noReason)")
        let get = try RawHTTP.request("GET", port: dev.adminPort, path: path + "/cancel", headers: ["Host": host], body: "")
        #expect(get.status == 404 || get.status == 405, "an action is never a GET: \(get)")

        let (signaled, signalOutput) = try await dev.run(dev.binary, ["workflow", "signal", "--address", "127.0.0.1:\(dev.apiPort)",
                                                                      "--workflow-id", hostile, "--name", "poke", "--reason", "cli reason"])
        #expect(signaled == 0, "\(signalOutput)")
        let accepted = try RawHTTP.post(port: dev.adminPort, path: path + "/cancel", headers: ["Host": host, "Origin": "http://\(host)"],
                                        body: form + "&admin_token=\(Self.token)")
        #expect(accepted.status == 303, "\(accepted)")
        #expect(accepted.headers["location"] == path + "?done=cancel")
        let (shown, history) = try await dev.run(dev.binary, ["workflow", "show", "--address", "127.0.0.1:\(dev.apiPort)",
                                                              "--workflow-id", hostile])
        #expect(shown == 0, "\(history)")
        let line = try #require(history.split(separator: "\n").first { $0.contains("WorkflowExecutionCancelRequested") })
        // The shared token stands for the identity `admin-token`; the typed name is not recorded.
        #expect(line.contains("reason=\"customer asked\" identity=admin-token") && !line.contains("tester"), "\(line)")
        let signalLine = try #require(history.split(separator: "\n").first { $0.contains("WorkflowExecutionSignaled") })
        #expect(signalLine.contains("identity=ballast-cli@") && signalLine.contains("reason=\"cli reason\""), "\(signalLine)")
        let bearer = try RawHTTP.post(port: dev.adminPort, path: path + "/terminate",
                                      headers: ["Host": host, "Authorization": "Bearer \(Self.token)"], body: "reason=done&confirm=yes")
        #expect(bearer.status == 303, "a script with the bearer token needs no CSRF token: \(bearer)")
    }
}

/// A minimal HTTP/1.1 client over a blocking socket, for POSTs the admin client does not make.
enum RawHTTP {
    struct Response: CustomStringConvertible {
        var status: Int
        var headers: [String: String]
        var body: String
        var description: String { "HTTP \(status) \(body.prefix(300))" }
    }

    static func post(port: Int, path: String, headers: [String: String], body: String) throws -> Response {
        try request("POST", port: port, path: path, headers: headers.merging(["Content-Type": "application/x-www-form-urlencoded"]) { $1 },
                    body: body)
    }

    static func request(_ method: String, port: Int, path: String, headers: [String: String], body: String) throws -> Response {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ClusterTestFailure("socket failed") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port)).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw ClusterTestFailure("connect to \(port) failed") }
        var text = "\(method) \(path) HTTP/1.1\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        let bytes = Array((text + "\r\n" + body).utf8)
        guard bytes.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == bytes.count else { throw ClusterTestFailure("send failed") }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            received += buffer[0 ..< count]
        }
        let response = String(decoding: received, as: UTF8.self)
        let parts = response.components(separatedBy: "\r\n\r\n")
        let head = parts.first?.components(separatedBy: "\r\n") ?? []
        let status = head.first.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
        var fields: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Response(status: status, headers: fields, body: parts.dropFirst().joined(separator: "\r\n\r\n"))
    }
}
