import BallastRaft
@testable import BallastServer
import Logging
import NIOCore
import NIOPosix
import Testing

@Suite("Admin HTTP port")
struct AdminHTTPTests {
    @Test("a request reaches the router with its path and decoded query, and the answer comes back")
    func roundTrip() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try await AdminHTTPServer(host: "127.0.0.1", port: 0, group: group, logger: Logger(label: "test")) { request in
            .text("\(request.method) \(request.path) \(request.query["q"] ?? "-")")
        }
        let (status, body) = try await AdminHTTPClient.get(host: "127.0.0.1", port: server.port, path: "/x/y?q=a%20b+c",
                                                           timeout: .seconds(5), group: group)
        #expect(status == 200)
        #expect(String(decoding: body, as: UTF8.self) == "GET /x/y a b c")
        await server.close()
        try await group.shutdownGracefully()
    }

    @Test("asking a port where nothing listens fails with an error and does not crash the asking node")
    func refusedConnection() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let closed = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(closed.localAddress?.port)
        try await closed.close()
        await #expect(throws: (any Error).self) {
            _ = try await AdminHTTPClient.get(host: "127.0.0.1", port: port, path: "/", timeout: .seconds(5), group: group)
        }
        try await group.shutdownGracefully()
    }

    @Test("malformed percent escapes are kept as they are")
    func percentDecoding() {
        #expect(AdminQuery.percentDecoded("%41%zz+%4") == "A%zz %4")
        #expect(AdminQuery.split(uri: "/status").0 == "/status")
        #expect(AdminQuery.split(uri: "/a?x&y=1").1 == ["x": "", "y": "1"])
    }

    @Test("a node is ready only with a known leader and applied within the lag bound of commit")
    func readiness() {
        func status(leader: NodeID?, commit: UInt64, applied: UInt64) -> RaftStatus {
            RaftStatus(id: NodeID(1), role: .follower, term: Term(2), leader: leader, commit: LogIndex(commit),
                       applied: LogIndex(applied), lastIndex: LogIndex(commit), persistedIndex: LogIndex(commit),
                       membership: Membership(voters: [NodeID(1)]), progress: [:])
        }
        #expect(BallastNode.readiness(status(leader: nil, commit: 5, applied: 5)).0 == false)
        #expect(BallastNode.readiness(status(leader: NodeID(2), commit: 5, applied: 5)).0 == true)
        #expect(BallastNode.readiness(status(leader: NodeID(2), commit: 500, applied: 5)).0 == false)
    }
}
