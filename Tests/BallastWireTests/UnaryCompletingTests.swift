import BallastWire
import Dispatch
import Foundation
import Testing

/// `GRPCMethodRegistry.unaryCompleting`: handlers that answer from another thread (the node's
/// Raft loop, here a dispatch queue) without a Swift task.
@Suite("Unary calls answered from a callback")
struct UnaryCompletingTests {
    private static func registry() -> GRPCMethodRegistry {
        var registry = GRPCMethodRegistry()
        let elsewhere = DispatchQueue(label: "unary-completing-test")
        registry.unaryCompleting(EchoService.echo) { (request: EchoRequest, context, respond) in
            // Answered later, from a thread that is not the event loop.
            elsewhere.asyncAfter(deadline: .now() + .milliseconds(Int(request.sleepMs))) {
                respond(.success(EchoService.response(request, context)))
            }
        }
        registry.unaryCompleting(EchoService.fail) { (request: EchoRequest, _, respond: @escaping @Sendable (Result<EchoResponse, any Error>) -> Void) in
            let status = GRPCStatus(GRPCStatusCode(rawValue: Int(request.statusCode)) ?? .unknown, request.text)
            if request.sleepMs == 0 {
                respond(.failure(status))  // at once, on the event loop
            } else {
                elsewhere.async { respond(.failure(status)) }
            }
        }
        return registry
    }

    @Test("answers and failures come back from any thread; concurrent calls each get their own answer")
    func answersFromAnotherThread() async throws {
        let server = try await GRPCServer.start(host: "127.0.0.1", port: 0, registry: Self.registry())
        let port = try #require(server.port)
        let client = try await GRPCClient.connect(host: "127.0.0.1", port: port)
        let answers = try await withThrowingTaskGroup(of: String.self) { group in
            for number in 0 ..< 50 {
                group.addTask {
                    var request = EchoRequest()
                    request.text = "call \(number)"
                    request.sleepMs = Int32(number % 5)
                    return try await client.unary(EchoService.echo, request: request, responseType: EchoResponse.self).text
                }
            }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(answers == Set((0 ..< 50).map { "call \($0)" }))
        for sleep: Int32 in [0, 1] {
            var failing = EchoRequest()
            (failing.statusCode, failing.text, failing.sleepMs) = (Int32(GRPCStatusCode.failedPrecondition.rawValue), "refused", sleep)
            let request = failing
            let status = await #expect(throws: GRPCStatus.self) {
                _ = try await client.unary(EchoService.fail, request: request, responseType: EchoResponse.self)
            }
            #expect(status?.code == .failedPrecondition && status?.message == "refused")
        }
        await server.close()
    }

    @Test("a request that does not decode is refused before the handler runs")
    func undecodableRequest() async throws {
        let server = try await GRPCServer.start(host: "127.0.0.1", port: 0, registry: Self.registry())
        let port = try #require(server.port)
        let raw = try await HTTP2TestClient(port: port)
        // One message of 1 byte, 0xFF: a field tag that never ends.
        let call = try await raw.call(path: EchoService.echo, port: port, body: [0, 0, 0, 0, 1, 0xFF], end: true)
        let status = try await raw.waitFor(call) { $0.last("grpc-status") != nil }.last("grpc-status")
        #expect(status == "\(GRPCStatusCode.internal.rawValue)")
        await raw.close()
        await server.close()
    }
}
