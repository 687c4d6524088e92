import BallastFuzzSupport
import BallastProto
import BallastWire
import Foundation
import NIOCore
import SwiftProtobuf
import Testing

/// Seeded fuzzing of the decoders that read what clients and workers send, and what workers
/// read back (issue 8 §3): mutated valid inputs and pure noise must give a thrown error or a
/// bounded result, never a crash, a hang or an allocation beyond the configured limits.
/// `BALLAST_FUZZ_ITERATIONS=N` runs N inputs per test instead of the default.
@Suite("fuzz: gRPC framing, LZ4 event batches, protobuf requests")
struct FuzzWireDecoderTests {
    /// A byte stream of several valid gRPC messages.
    static func validFrames(_ random: inout FuzzRandom) -> [UInt8] {
        var buffer = ByteBuffer()
        for _ in 0 ... random.below(4) {
            let payload = random.bytes(random.below(300))
            payload.withUnsafeBytes { GRPCFraming.write(payload: $0, compressed: random.below(4) == 0, into: &buffer) }
        }
        return Array(buffer.readableBytesView)
    }

    @Test("gRPC deframing: mutated message streams fed in random splits end in frames or a status, with bounded buffering")
    func grpcDeframer() async throws {
        let limit = 64 << 10
        await forEachFuzzCase(seed: 0xF00D_0001, count: fuzzIterations(5_000)) { random, caseSeed in
            let input = FuzzMutation.mutate(Self.validFrames(&random), &random)
            var deframer = GRPCMessageDeframer(maxMessageBytes: limit)
            var offset = 0
            var delivered = 0
            feeding: while offset < input.count {
                let step = 1 + random.below(max(1, input.count - offset))
                input[offset ..< offset + step].withUnsafeBytes { deframer.append($0) }
                offset += step
                do {
                    while let frame = try deframer.next() {
                        #expect(frame.payload.readableBytes <= limit, "case \(caseSeed)")
                        delivered += frame.payload.readableBytes + GRPCFraming.prefixBytes
                    }
                } catch let status as GRPCStatus {
                    #expect(status.code == .resourceExhausted || status.code == .internal, "case \(caseSeed): \(status)")
                    break feeding
                } catch {
                    Issue.record("case \(caseSeed): unexpected \(error)")
                    break feeding
                }
                #expect(deframer.bufferedBytes <= input.count, "case \(caseSeed)")
            }
            #expect(delivered <= input.count, "case \(caseSeed)")
        }
    }

    @Test("LZ4 event batches: mutated frames and counts decode to an error or to at most the size limit")
    func lz4Batches() async throws {
        let events = try SampleHistory.transfer(eventCount: 40).map { try $0.serializedBytes() as [UInt8] }
        let batch = try LZ4EventBatchCodec.encode(serializedEvents: events, firstEventID: 1)
        let limit = 1 << 20
        await forEachFuzzCase(seed: 0xF00D_0002, count: fuzzIterations(3_000)) { random, caseSeed in
            var mutated = batch
            mutated.lz4Frame = random.below(10) == 0 ? random.bytes(random.below(200)) : FuzzMutation.mutate(batch.lz4Frame, &random)
            if random.below(4) == 0 { mutated.eventCount = UInt32(truncatingIfNeeded: random.next()) }
            if random.below(4) == 0 { mutated.uncompressedBytes = UInt32(truncatingIfNeeded: random.next()) }
            if let decoded = try? LZ4EventBatchCodec.decode(mutated, maxUncompressedBytes: limit) {
                #expect(decoded.count == Int(mutated.eventCount), "case \(caseSeed)")
                #expect(decoded.reduce(0) { $0 + $1.count } <= limit, "case \(caseSeed)")
                // What decodes is handed to protobuf as events: that must not crash either.
                for event in decoded { _ = try? Ballast_V1_HistoryEvent(serializedBytes: event) }
            }
        }
    }

    @Test("LZ4 frames: noise and mutated frames never produce more than maxOutputBytes")
    func lz4Frames() async throws {
        let plain = (0 ..< 100_000).map { UInt8(truncatingIfNeeded: $0 / 7) }
        let frame = try LZ4Frame.compress(plain)
        await forEachFuzzCase(seed: 0xF00D_0003, count: fuzzIterations(3_000)) { random, caseSeed in
            let input = random.below(5) == 0 ? random.bytes(random.below(1_000)) : FuzzMutation.mutate(frame, &random)
            let limit = 1 + random.below(200_000)
            if let output = try? input.withUnsafeBytes({ try LZ4Frame.decompress($0, maxOutputBytes: limit) }) {
                #expect(output.count <= limit, "case \(caseSeed)")
            }
        }
    }

    /// Every request type an API handler decodes, each with a populated valid example.
    static let requestTypes: [(any SwiftProtobuf.Message.Type, [UInt8])] = {
        var start = Ballast_V1_StartWorkflowRequest()
        start.workflowID = "transfer-42"
        start.workflowType.name = "MoneyTransfer"
        start.taskQueue = "payments"
        start.requestID = "request-1"
        start.input.payloads = [Ballast_V1_Payload()]
        var signal = Ballast_V1_SignalWorkflowRequest()
        signal.workflowExecution.workflowID = "transfer-42"
        signal.signalName = "approve"
        var completed = Ballast_V1_RespondWorkflowTaskCompletedRequest()
        completed.taskToken = Data([1, 2, 3, 4])
        completed.commands = [Ballast_V1_Command(), Ballast_V1_Command()]
        let examples: [any SwiftProtobuf.Message] = [
            start, signal, completed, Ballast_V1_AddMemberRequest(), Ballast_V1_AddSearchAttributesRequest(),
            Ballast_V1_CountWorkflowExecutionsRequest(), Ballast_V1_DescribeClusterRequest(),
            Ballast_V1_DescribeWorkflowExecutionRequest(), Ballast_V1_GetMemberProgressRequest(),
            Ballast_V1_GetWorkflowExecutionHistoryRequest(), Ballast_V1_GrantTaskSlotsRequest(),
            Ballast_V1_ListWorkflowExecutionsRequest(), Ballast_V1_PollActivityTaskRequest(), Ballast_V1_PollWorkflowTaskRequest(),
            Ballast_V1_PromoteMemberRequest(), Ballast_V1_QueryWorkflowRequest(), Ballast_V1_RecordActivityTaskHeartbeatRequest(),
            Ballast_V1_RemoveMemberRequest(), Ballast_V1_RequestCancelWorkflowRequest(),
            Ballast_V1_RespondActivityTaskCanceledRequest(), Ballast_V1_RespondActivityTaskCompletedRequest(),
            Ballast_V1_RespondActivityTaskFailedRequest(), Ballast_V1_RespondQueryTaskCompletedRequest(),
            Ballast_V1_RespondWorkflowTaskFailedRequest(), Ballast_V1_SignalWithStartWorkflowRequest(),
            Ballast_V1_TerminateWorkflowRequest(), Ballast_V1_WaitWorkflowExecutionClosedRequest(),
            Ballast_V1_StreamTasksRequest(), Ballast_V1_EngineEntry(), Ballast_V1_HistoryEvent(),
        ]
        return examples.map { (type(of: $0), (try? $0.serializedBytes()) ?? []) }
    }()

    @Test("protobuf request payloads: mutated and random bytes decode or throw, for every request type the API decodes")
    func protobufRequests() async throws {
        await forEachFuzzCase(seed: 0xF00D_0004, count: fuzzIterations(6_000)) { random, _ in
            let (type, valid) = Self.requestTypes[random.below(Self.requestTypes.count)]
            let input = random.below(6) == 0 ? random.bytes(random.below(256)) : FuzzMutation.mutate(valid, &random)
            if let decoded = try? type.init(serializedBytes: input) {
                // Whatever decodes re-encodes (what a handler may echo back or hash).
                _ = try? decoded.serializedBytes() as [UInt8]
            }
        }
    }
}
