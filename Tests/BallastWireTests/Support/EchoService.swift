import BallastProto
import BallastWire
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

typealias EchoRequest = Ballast_V1_Testing_EchoRequest
typealias EchoResponse = Ballast_V1_Testing_EchoResponse

/// The test EchoService (proto/ballast/v1/testing/echo.proto) served by a Ballast server.
enum EchoService {
    static let prefix = "/ballast.v1.testing.EchoService/"
    static let echo = prefix + "Echo"
    static let expand = prefix + "Expand"
    static let fail = prefix + "Fail"
    static let sleep = prefix + "Sleep"
    static let noop = prefix + "Noop"

    static func response(_ request: EchoRequest, _ context: GRPCServerContext, index: Int32 = 0) -> EchoResponse {
        var response = EchoResponse()
        response.text = request.text
        response.payload = request.payload
        response.index = index
        for field in context.metadata.fields { response.metadata[field.name] = field.value }
        return response
    }

    static func registry(probe: StreamProbe? = nil) -> GRPCMethodRegistry {
        var registry = GRPCMethodRegistry()
        registry.unary(echo) { (request: EchoRequest, context) in response(request, context) }
        registry.serverStreaming(expand) { (request: EchoRequest, context, writer: GRPCStreamWriter<EchoResponse>) in
            do {
                for index in 0..<request.count {
                    try await writer.send(response(request, context, index: index))
                    probe?.sent.withLockedValue { $0 += 1 }
                }
            } catch {
                probe?.failed.withLockedValue { $0 = true }
                throw error
            }
        }
        registry.unary(fail) { (request: EchoRequest, _) -> EchoResponse in
            var trailers = GRPCMetadata()
            for key in request.trailers.keys.sorted() { trailers.add(key, request.trailers[key] ?? "") }
            throw GRPCStatus(GRPCStatusCode(rawValue: Int(request.statusCode)) ?? .unknown, request.text, trailers: trailers)
        }
        registry.unary(sleep) { (request: EchoRequest, context) in
            probe?.sleepsStarted.withLockedValue { $0 += 1 }
            try await Task.sleep(for: .milliseconds(Int(request.sleepMs)))
            return response(request, context)
        }
        registry.unaryOnEventLoop(noop) { (_: EchoRequest, _) in EchoResponse() }
        registerBallastTestHandlers(&registry)
        return registry
    }

    /// Runs `body` with an EchoService server on 127.0.0.1 and a free port; closes it afterwards.
    static func withServer<T>(configuration: GRPCServerConfiguration = GRPCServerConfiguration(), probe: StreamProbe? = nil,
                              _ body: (GRPCServer, Int) async throws -> T) async throws -> T {
        let server = try await GRPCServer.start(host: "127.0.0.1", port: 0, registry: registry(probe: probe),
                                                configuration: configuration)
        do {
            let result = try await body(server, server.port ?? 0)
            await server.close()
            return result
        } catch {
            await server.close()
            throw error
        }
    }
}

/// Test handlers for Ballast's own services (the real behaviour is the server's job).
func registerBallastTestHandlers(_ registry: inout GRPCMethodRegistry) {
    registry.unaryOnEventLoop(BallastMethod.Cluster.describeCluster) { (_: Ballast_V1_DescribeClusterRequest, _) in
        var response = Ballast_V1_DescribeClusterResponse()
        response.leaderID = "n1"
        response.leaderApiAddress = "127.0.0.1:7233"
        response.answeredBy = "n2"
        response.members = (1...3).map { index in
            var member = Ballast_V1_ClusterMember()
            member.id = "n\(index)"
            member.role = index == 1 ? .leader : .follower
            member.term = 4
            member.commit = 100
            member.applied = 99
            member.apiAddress = "127.0.0.1:72\(30 + index)"
            member.reachable = true
            return member
        }
        return response
    }
    registry.unary(BallastMethod.Workflow.getHistory) { (request: Ballast_V1_GetWorkflowExecutionHistoryRequest, _) in
        let events = SampleHistory.transfer(eventCount: Int(request.maximumPageSize))
        var response = Ballast_V1_GetWorkflowExecutionHistoryBatchesResponse()
        response.batches = try LZ4EventBatchCodec.makeBatches(events: events, firstEventID: 1, maxUncompressedBytes: 64 << 10)
            .map(\.message)
        return response
    }
}

/// Counts what the test handlers did: messages the streaming handler managed to send (to check
/// back-pressure), and sleep calls the server has begun to serve.
final class StreamProbe: Sendable {
    let sent = NIOLockedValueBox(0)
    let failed = NIOLockedValueBox(false)
    let sleepsStarted = NIOLockedValueBox(0)
}
