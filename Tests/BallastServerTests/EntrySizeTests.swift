import BallastProto
import BallastRaft
import BallastWire
import Foundation
import Testing
@testable import BallastServer

/// A request becomes one log entry, and a follower refuses an AppendEntries whose entry is over
/// `RaftMessageCodec.defaultMaxBlobBytes`. A leader that proposed one would keep it in its log
/// unreplicated, with every entry after it: the cluster would take no more writes.
@Suite("Log entry size", .serialized)
struct EntrySizeTests {
    @Test("a follower refuses an entry over the limit: why the leader must not propose one")
    func followerRefusesALargeEntry() {
        let codec = RaftMessageCodec()
        func append(_ bytes: Int) -> [UInt8] {
            let entry = Entry(term: Term(1), index: LogIndex(1), kind: .normal, data: [UInt8](repeating: 7, count: bytes))
            return codec.encode(Message(from: NodeID(1), to: NodeID(2), term: Term(1),
                                        body: .append(previousIndex: .zero, previousTerm: .zero, entries: [entry], commit: .zero)))
        }
        #expect(throws: Never.self) { _ = try codec.decode(append(RaftMessageCodec.defaultMaxBlobBytes)) }
        #expect(throws: RaftWireError.self) { _ = try codec.decode(append(RaftMessageCodec.defaultMaxBlobBytes + 1)) }
    }

    @Test("a request that would make an entry over the limit is refused before it is proposed; the node serves on")
    func largeRequestRefused() async throws {
        let single = try await SingleNode { $0.apiLimits.maxReceiveMessageBytes = 32 << 20 }
        let client = try await single.client()
        var start = startRequest("large")
        start.input.payloads = [Ballast_V1_Payload.with { $0.data = Data(repeating: 1, count: RaftMessageCodec.defaultMaxBlobBytes) }]
        let lastIndex = await single.node.raftStatus().lastIndex
        let (status, _, _) = await client.rawUnary(BallastMethod.Workflow.start, payload: try bytesOf(start), timeout: .seconds(30))
        #expect(status.code == .resourceExhausted, "\(status)")
        #expect(status.message.contains("log entry"), "\(status)")
        #expect(await single.node.raftStatus().lastIndex == lastIndex, "nothing was proposed")
        try await APIExtremeValueWorkerTests.expectStillServingThenStop(single, client)
    }

    @Test("a request id over 1,000 bytes is refused; 1,000 are accepted")
    func requestIdLength() async throws {
        let single = try await SingleNode()
        let client = try await single.client()
        var start = startRequest("long-id")
        start.requestID = String(repeating: "r", count: 1_001)
        let (refused, _, _) = await client.rawUnary(BallastMethod.Workflow.start, payload: try bytesOf(start), timeout: .seconds(10))
        #expect(refused.code == .invalidArgument, "\(refused)")
        start.requestID = String(repeating: "r", count: 1_000)
        let (accepted, _, _) = await client.rawUnary(BallastMethod.Workflow.start, payload: try bytesOf(start), timeout: .seconds(10))
        #expect(accepted.code == .ok, "\(accepted)")
        try await APIExtremeValueWorkerTests.expectStillServingThenStop(single, client)
    }
}

private func bytesOf(_ request: Ballast_V1_StartWorkflowRequest) throws -> [UInt8] { try request.serializedBytes() }
