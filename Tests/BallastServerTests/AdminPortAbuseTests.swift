import BallastProto
import BallastWire
import Foundation
import Logging
import NIOPosix
import Testing
@testable import BallastServer

/// What anyone who can reach a node's admin port may send it: bytes that are not HTTP, HTTP that
/// breaks its own rules, every method on every route, and query parameters, path segments and
/// page tokens with extreme or malformed values. Each is answered with a status or the
/// connection is closed, never a server error or a hang, and after each group the node still
/// answers `/healthz` and the API. A trap in a handler would end this test process.
@Suite("Admin port: malformed and hostile requests")
struct AdminPortAbuseTests {
    @Test func everyRequestIsAnsweredOrClosedAndTheNodeKeepsServing() async throws {
        let single = try await SingleNode()
        defer { Task { await single.stop() } }
        let client = try await single.client()
        let started: Ballast_V1_StartWorkflowResponse = try await client.unary(BallastMethod.Workflow.start, request: startRequest("target"))
        for number in 0..<3 {
            let _: Ballast_V1_StartWorkflowResponse = try await client.unary(BallastMethod.Workflow.start, request: startRequest("other-\(number)"))
        }
        let admin = try #require(Int(single.node.info.admin.split(separator: ":").last.map(String.init) ?? ""))
        let run = started.runID

        /// The node answers its health check and the API.
        func stillServing(_ after: String) async throws {
            let health = try await Self.exchange(port: admin, patience: .seconds(10), Array("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
            #expect(Self.status(of: health) == 200, "after \(after): /healthz gave \(String(decoding: health.prefix(200), as: UTF8.self))")
            var describe = Ballast_V1_DescribeWorkflowExecutionRequest()
            describe.execution.workflowID = "target"
            let described: Ballast_V1_DescribeWorkflowExecutionResponse = try await client.unary(BallastMethod.Workflow.describe, request: describe)
            #expect(described.info.execution.runID == run, "after \(after)")
        }

        // 1. Bytes that are not HTTP, or HTTP that breaks its rules: no answer, or one below 500;
        // an answer that says `Connection: close` is followed by the close.
        var random = SplitMix64(seed: 7)
        var raw: [(String, [UInt8])] = (0..<48).map { number in
            let length = [1, 3, 17, 255, 1024, 8192][number % 6]
            return ("random bytes \(number)", (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) })
        }
        let crlf = "\r\n"
        let malformed: [(String, String)] = [
            ("empty line", crlf + crlf),
            ("no version", "GET /healthz" + crlf + crlf),
            ("unknown version", "GET /healthz HTTP/9.9" + crlf + "Host: x" + crlf + crlf),
            ("HTTP/0.9", "GET /healthz" + crlf),
            ("HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            ("negative length", "POST /workflows/target/x/terminate HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"),
            ("length past 64 bits", "POST /workflows/target/x/terminate HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\nab"),
            ("two lengths", "POST /workflows/target/x/terminate HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 7\r\n\r\nab"),
            ("length and chunked", "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            ("bad chunk size", "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n"),
            ("chunk size past 64 bits", "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nab\r\n"),
            ("body promised, not sent", "POST /workflows/target/x/signal HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000000\r\n\r\nab"),
            ("header without colon", "GET /healthz HTTP/1.1\r\nHost x\r\n\r\n"),
            ("NUL in the header", "GET /healthz HTTP/1.1\r\nHost: x\u{0}y\r\n\r\n"),
            ("NUL in the target", "GET /work\u{0}flows HTTP/1.1\r\nHost: x\r\n\r\n"),
            ("bare LF", "GET /healthz HTTP/1.1\nHost: x\n\n"),
            ("folded header", "GET /healthz HTTP/1.1\r\nHost: x\r\n  folded\r\n\r\n"),
            ("space before colon", "GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n"),
            ("a 200 KB header", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "a", count: 200_000) + "\r\n\r\n"),
            ("5,000 headers", "GET /healthz HTTP/1.1\r\n" + (0..<5_000).map { "X-\($0): y\r\n" }.joined() + "\r\n"),
            ("a 200 KB target", "GET /workflows/" + String(repeating: "a", count: 200_000) + " HTTP/1.1\r\nHost: x\r\n\r\n"),
            ("absolute target", "GET http://evil.example/healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
            ("asterisk target", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"),
            ("CONNECT", "CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n"),
            ("unknown method", "BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
            ("lower-case method", "get /healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
        ]
        raw += malformed.map { ($0.0, Array($0.1.utf8)) }
        raw.append(("a TLS ClientHello on the cleartext port", [0x16, 0x03, 0x01, 0x00, 0xA5, 0x01, 0x00, 0x00, 0xA1, 0x03, 0x03] + Array(repeating: 0x42, count: 160)))
        raw.append(("1,000 pipelined requests", Array(String(repeating: "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", count: 1_000).utf8)))
        for (what, bytes) in raw {
            // A server that answers "Connection: close" closes: within 5 s (it is at once).
            let (answer, closed) = try await Self.exchangeNotingClose(port: admin, patience: .milliseconds(300), bytes)
            let text = String(decoding: answer.prefix(300), as: UTF8.self)
            if let code = Self.status(of: answer) {
                #expect(code < 500, "\(what): \(text)")
            }
            if !closed, text.lowercased().contains("connection: close") {
                let socketClosed = try await Self.exchangeNotingClose(port: admin, patience: .seconds(5), bytes).closed
                #expect(socketClosed, "\(what): answered with Connection: close, and left open: \(text)")
            }
        }
        try await stillServing("malformed HTTP")

        // 2. Every method on every route, with and without a body.
        let paths = ["/", "/healthz", "/readyz", "/status", "/status?digest=1", "/metrics", "/cluster", "/cluster?local=1", "/failing",
                     "/workflows", "/workflows/target", "/workflows/target/\(run)", "/workflows/target/\(run)/history.json",
                     "/workflows/target/\(run)/terminate", "/workflows/target/\(run)/signal", "/workflows/target/\(run)/cancel",
                     "/workflows/target/\(run)/nonsense", "/ui/style.css", "/ui/app.js", "/nowhere", "/workflows/a/b/c/d/e/f/g"]
        let methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"]
        for path in paths {
            for method in methods {
                for body in ["", "reason=x&confirm=yes&signal_name=s&input=%7B%7D&csrf=forged"] {
                    var request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                    if !body.isEmpty {
                        request += "Content-Type: application/x-www-form-urlencoded\r\nOrigin: http://evil.example\r\nContent-Length: \(body.utf8.count)\r\n"
                    }
                    let began = ContinuousClock.now
                    let (answer, closed) = try await Self.exchangeNotingClose(port: admin, patience: .seconds(10), Array((request + "\r\n" + body).utf8))
                    let code = Self.status(of: answer)
                    #expect(code.map { $0 < 500 || $0 == 503 } == true,
                            "\(method) \(path) (closed \(closed) after \(ContinuousClock.now - began)): \(String(decoding: answer.prefix(300), as: UTF8.self))")
                    if method == "POST", !body.isEmpty, path.hasSuffix("/terminate") || path.hasSuffix("/cancel") || path.hasSuffix("/signal") {
                        #expect(code.map { (400 ..< 500).contains($0) } == true, "a forged action is refused: \(method) \(path)")
                    }
                }
            }
        }
        try await stillServing("every method on every route")
        // The forged actions changed nothing.
        var describe = Ballast_V1_DescribeWorkflowExecutionRequest()
        describe.execution.workflowID = "target"
        let described: Ballast_V1_DescribeWorkflowExecutionResponse = try await client.unary(BallastMethod.Workflow.describe, request: describe)
        #expect(described.info.status == .running)

        // 3. Query parameters, path segments and page tokens with extreme or malformed values.
        let numbers = ["", "-1", "0", "1", "2147483647", "2147483648", "-2147483649", "9223372036854775807", "9223372036854775808",
                       "-9223372036854775808", "99999999999999999999999", "1e9", "nan", "inf", "0x10", "%00", "%ff", "+1", "1.5", "３"]
        let texts = ["%00", "%ff%fe", "%C3%28", String(repeating: "a", count: 5_000), String(repeating: "%25", count: 3_000), "'", "\"",
                     "WorkflowType%20%3D%20'", "StartTime%20%3E%2099999999999999999999999", "ExecutionStatus%20%3D%20'Nope'",
                     "(((((((((((((((((((((((((((((((((((((((((((", "WorkflowType%20%3D%20'a'%20AND", "%E2%80%AE", "%F0%9F%92%B8"]
        var listRequest = Ballast_V1_ListWorkflowExecutionsRequest()
        listRequest.pageSize = 1
        let listed: Ballast_V1_ListWorkflowExecutionsResponse = try await client.unary(BallastMethod.Workflow.list, request: listRequest)
        let realToken = Array(listed.nextPageToken)
        #expect(!realToken.isEmpty)
        var tokens: [[UInt8]] = [realToken, [], [0], [0xFF], Array(repeating: 0xFF, count: 64)]
        // The real token with each byte zeroed, saturated and its top bit flipped, cut at every
        // length, and lengthened by a byte.
        for position in realToken.indices {
            for value in [0x00, 0xFF, realToken[position] ^ 0x80] {
                var mutated = realToken
                mutated[position] = value
                tokens.append(mutated)
            }
        }
        tokens += (0..<realToken.count).map { Array(realToken.prefix($0)) } + [realToken + [0]]
        tokens += (0..<24).map { number in (0..<(number * 3 + 1)).map { _ in UInt8(truncatingIfNeeded: random.next()) } }
        var targets: [String] = []
        targets += numbers.map { "/failing?n=\($0)" }
        targets += texts.map { "/workflows?query=\($0)" }
        targets += (numbers + texts).map { "/workflows?next=\($0)" }
        targets += tokens.map { "/workflows?next=" + Data($0).uiBase64URL }
        targets += tokens.map { "/workflows?query=WorkflowType%20%3D%20'Transfer'&next=" + Data($0).uiBase64URL }
        targets += texts.map { "/workflows/\($0)" } + texts.map { "/workflows/target/\($0)" } + texts.map { "/workflows/\($0)/\($0)/history.json" }
        targets += ["/workflows/%2F..%2F..%2Fetc%2Fpasswd", "/workflows/..%2F/..", "/workflows/target/\(run)?done=terminate",
                    "/workflows/target/\(run)?done=%00", "/status?digest=1&digest=0&digest=%00", "/cluster?local=" + String(repeating: "1", count: 4_000),
                    "/?" + (0..<2_000).map { "k\($0)=v" }.joined(separator: "&"), "/?=&&==&%=%%"]
        for target in targets {
            let answer = try await Self.exchange(port: admin, patience: .seconds(10), Array("GET \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/html\r\nConnection: close\r\n\r\n".utf8))
            let code = Self.status(of: answer)
            #expect(code.map { $0 < 500 } == true, "GET \(target.prefix(200)): \(String(decoding: answer.prefix(300), as: UTF8.self))")
        }
        try await stillServing("extreme query parameters and page tokens")

        // 4. More idle connections than the port keeps: the API goes on serving (the process's
        // descriptors are not all taken), and the admin port again once they are gone.
        var idle: [Int32] = []
        for _ in 0 ..< AdminHTTPServer.defaultMaxConnections + 72 { idle.append(try Self.connect(port: admin)) }
        var describeAgain = Ballast_V1_DescribeWorkflowExecutionRequest()
        describeAgain.execution.workflowID = "target"
        let _: Ballast_V1_DescribeWorkflowExecutionResponse = try await client.unary(BallastMethod.Workflow.describe, request: describeAgain)
        // The server closed those over its limit at accept; the others stay open (idle, within the deadline).
        var refusedHere = 0
        try await waitUntil("the connections over the limit are closed") {
            refusedHere = idle.filter { !Self.isOpen($0) }.count
            return refusedHere >= idle.count - AdminHTTPServer.defaultMaxConnections
        }
        for socket in idle { close(socket) }
        try await waitUntil("the admin port serves again") {
            (try? await Self.status(of: Self.exchange(port: admin, patience: .seconds(2),
                                                Array("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8)))) == 200
        }
        try await stillServing("\(idle.count) idle connections")
        // The refusals show in /metrics.
        let metrics = String(decoding: try await Self.exchange(port: admin, patience: .seconds(10),
                                                               Array("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8)),
                             as: UTF8.self)
        let refusedLine = metrics.split(separator: "\n").first { $0.hasPrefix("ballast_connections_refused_total{port=\"admin\"}") }
        let refused = refusedLine.flatMap { $0.split(separator: " ").last }.flatMap { Double($0) }
        #expect(refused == Double(refusedHere), "admin refusals in /metrics: \(refusedLine ?? "none"), seen closed here: \(refusedHere)")
    }

    @Test("the admin port keeps at most its connection limit, closes idle and trickling connections at the request deadline, and restarts the deadline after each answer")
    func connectionLimitAndRequestDeadline() async throws {
        let deadline = Duration.seconds(2)  // the server's request deadline below
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try await AdminHTTPServer(host: "127.0.0.1", port: 0, group: group, logger: Logger(label: "test"),
                                               maxConnections: 4, requestDeadline: .seconds(2)) { request in
            if request.path == "/slow" { try? await Task.sleep(for: .seconds(3)) }  // longer than the deadline
            return .text("ok\n")
        }
        let port = server.port
        let request = Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        // One idle, one trickling a request a byte at a time, one asking once and then idle, one
        // asking every 200 ms on a kept-alive connection.
        let idle = try Self.connect(port: port)
        let trickling = try Self.connect(port: port)
        let askedOnce = try Self.connect(port: port)
        let asking = try Self.connect(port: port)
        let askingOpened = ContinuousClock.now
        defer { for socket in [idle, trickling, askedOnce, asking] { close(socket) } }
        let firstAnswer = try await Self.offThePool { try Self.Asker(socket: askedOnce).ask(request) }
        #expect(firstAnswer)
        // A fifth is over the limit: closed at accept, unanswered.
        let overTheLimit = try await Self.exchangeNotingClose(port: port, patience: .seconds(5), request)
        #expect(overTheLimit.closed && overTheLimit.answer.isEmpty)
        #expect(server.refusedConnections == 1)
        // The asking connection must be answered every time until twice the deadline has passed
        // since it was opened: only a deadline restarted after each answer lets it live that long.
        var asks = 0
        var answers = 0
        var trickled = 0
        let asker = Self.Asker(socket: asking)
        while Self.isOpen(idle) || Self.isOpen(trickling) || Self.isOpen(askedOnce) || ContinuousClock.now - askingOpened < deadline * 2 {
            if trickled < request.count - 1 {
                _ = request[trickled...].prefix(1).withUnsafeBytes { send(trickling, $0.baseAddress, 1, Int32(MSG_NOSIGNAL)) }
                trickled += 1
            }
            asks += 1
            if try await Self.offThePool({ [asker] in try asker.ask(request) }) { answers += 1 }
            try await Task.sleep(for: .milliseconds(200))
            #expect(ContinuousClock.now - askingOpened < .seconds(20), "the idle, trickling or once-answered connection is still open after 20 s")
            if ContinuousClock.now - askingOpened >= .seconds(20) { break }
        }
        // Those three were closed at the deadline; the asking connection, answered within it each time, is open.
        #expect(answers == asks, "the asking connection was answered throughout: \(answers) of \(asks)")
        let answeredAfterDeadline = try await Self.offThePool { [asker] in try asker.ask(request) }
        #expect(answeredAfterDeadline, "the asking connection outlived the deadline")
        // A request whose answer takes longer than the deadline is answered: the deadline counts
        // only while a request is incomplete.
        let (slow, closed) = try await Self.exchangeNotingClose(port: port, patience: .seconds(10),
                                                          Array("GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        #expect(Self.status(of: slow) == 200 && closed, "\(String(decoding: slow.prefix(300), as: UTF8.self)) closed \(closed)")
        await server.close()
        try await group.shutdownGracefully()
    }

    /// Asks on one kept-alive connection and reads the whole answer (its head and
    /// `content-length` bytes of body); whether it was a 200.
    struct Asker: Sendable {
        let socket: Int32
        func ask(_ request: [UInt8]) throws -> Bool {
            let wrote = request.withUnsafeBytes { send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard wrote == request.count else { return false }
            var answer: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4_096)
            let separator = Array("\r\n\r\n".utf8)
            while true {
                let read = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
                guard read > 0 else { return false }
                answer += buffer[0..<read]
                guard let end = answer.indices.first(where: { answer[$0...].starts(with: separator) }) else { continue }
                let head = String(decoding: answer[..<end], as: UTF8.self).lowercased()
                let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                if answer.count >= end + separator.count + length { return AdminPortAbuseTests.status(of: answer) == 200 }
            }
        }
    }

    /// Whether the server has not closed `socket` (nothing to read, no end of stream).
    static func isOpen(_ socket: Int32) -> Bool {
        var byte: UInt8 = 0
        let read = recv(socket, &byte, 1, Int32(MSG_DONTWAIT | MSG_PEEK))
        return read < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
    }

    /// Connects to 127.0.0.1:`port`; a read waits at most `patience` for a byte.
    static func connect(port: Int, patience: Duration = .seconds(10)) throws -> Int32 {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw GRPCStatus(.internal, "socket failed") }
        let (seconds, attoseconds) = patience.components
        var timeout = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(socket)
            throw GRPCStatus(.unavailable, "connect to the admin port failed: errno \(errno)")
        }
        return socket
    }

    /// Sends `bytes` on a new connection and reads until the server closes it or sends nothing
    /// for `patience` (a kept-alive connection, or a partial request the server waits to see
    /// completed). A server that closes while the bytes are still being sent is an answer too.
    static func exchange(port: Int, patience: Duration, _ bytes: [UInt8]) async throws -> [UInt8] {
        try await exchangeNotingClose(port: port, patience: patience, bytes).answer
    }

    /// `exchangeNow` on a thread of its own: a blocking read on one of the few threads of the
    /// concurrency pool could keep the in-process server's router tasks from running at all.
    static func exchangeNotingClose(port: Int, patience: Duration, _ bytes: [UInt8]) async throws -> (answer: [UInt8], closed: Bool) {
        try await offThePool { try exchangeNow(port: port, patience: patience, bytes) }
    }

    /// Runs blocking `work` on a dispatch queue and waits for it.
    static func offThePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
        }
    }

    /// `exchange` on the calling thread, and whether the server closed the connection (false:
    /// it was still open after `patience` of silence).
    static func exchangeNow(port: Int, patience: Duration, _ bytes: [UInt8]) throws -> (answer: [UInt8], closed: Bool) {
        let socket = try connect(port: port, patience: patience)
        defer { close(socket) }
        var sent = 0
        while sent < bytes.count {
            let wrote = bytes[sent...].withUnsafeBytes { send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard wrote > 0 else { break }  // the server closed the connection
            sent += wrote
        }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let read = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if read > 0 {
                answer += buffer[0..<read]
                continue
            }
            // 0: closed; EAGAIN: quiet for `patience`; anything else (a reset) is a close too.
            return (answer, !(read < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)))
        }
    }

    /// The status code of the first response in `answer`, nil if none.
    static func status(of answer: [UInt8]) -> Int? {
        let line = answer.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }
        let parts = String(decoding: line, as: UTF8.self).split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/") else { return nil }
        return Int(parts[1])
    }
}
