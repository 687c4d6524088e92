import BallastProto
import BallastRaft
import BallastServer
import BallastWire
import NIOCore
import NIOEmbedded
import SwiftProtobuf

/// The decoders `scripts/fuzz` drives with libFuzzer, by name. Each takes one input and must
/// return (a value or a thrown error is fine); a trap, a hang or runaway memory is a finding.
enum FuzzTarget: String, CaseIterable {
    case raftMessage = "raft-message"
    case raftFrame = "raft-frame"
    case memberTable = "member-table"
    case grpcFrame = "grpc-frame"
    case lz4Batch = "lz4-batch"
    case protobuf = "protobuf"

    /// Runs the decoder on `bytes`.
    func run(_ bytes: [UInt8]) {
        switch self {
        case .raftMessage:
            let codec = RaftMessageCodec()
            if let message = try? codec.decode(bytes) { _ = codec.encode(message) }
        case .raftFrame:
            // Through a channel pipeline, as the transport reads the Raft port.
            let channel = EmbeddedChannel(handler: ByteToMessageHandler(RaftFrameDecoder(maxPayloadBytes: 1 << 20)))
            _ = try? channel.writeInbound(ByteBuffer(bytes: bytes))
            while let frame = try? channel.readInbound(as: (RaftFrame.Kind, ByteBuffer).self) {
                if frame.0 == .message { _ = try? RaftMessageCodec().decode(Array(frame.1.readableBytesView)) }
            }
            _ = try? channel.finish()
        case .memberTable:
            _ = try? MemberTableCodec.decodeBook(bytes)
            _ = try? MemberTableCodec.decodeList(bytes)
        case .grpcFrame:
            var deframer = GRPCMessageDeframer(maxMessageBytes: 1 << 20)
            bytes.withUnsafeBytes { deframer.append($0) }
            while let frame = try? deframer.next() { precondition(frame.payload.readableBytes <= 1 << 20) }
        case .lz4Batch:
            // First 4 bytes: the announced event count; the rest: the LZ4 frame.
            guard bytes.count >= 4 else { return }
            let count = bytes.prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            let batch = LZ4EventBatch(eventCount: count, firstEventID: 1, uncompressedBytes: 0, lz4Frame: Array(bytes.dropFirst(4)))
            if let events = try? LZ4EventBatchCodec.decode(batch, maxUncompressedBytes: 1 << 20) {
                precondition(events.reduce(0) { $0 + $1.count } <= 1 << 20)
                for event in events { _ = try? Ballast_V1_HistoryEvent(serializedBytes: event) }
            }
        case .protobuf:
            // First byte: which request type; the rest: its serialized bytes.
            guard let selector = bytes.first else { return }
            let types = Self.requestTypes
            let type = types[Int(selector) % types.count]
            if let message = try? type.init(serializedBytes: Array(bytes.dropFirst())) { _ = try? message.serializedBytes() as [UInt8] }
        }
    }

    /// The request types the API handlers decode (and what the Raft log and history carry).
    static let requestTypes: [any SwiftProtobuf.Message.Type] = [
        Ballast_V1_StartWorkflowRequest.self, Ballast_V1_SignalWorkflowRequest.self, Ballast_V1_SignalWithStartWorkflowRequest.self,
        Ballast_V1_RespondWorkflowTaskCompletedRequest.self, Ballast_V1_RespondWorkflowTaskFailedRequest.self,
        Ballast_V1_RespondActivityTaskCompletedRequest.self, Ballast_V1_RespondActivityTaskFailedRequest.self,
        Ballast_V1_RespondActivityTaskCanceledRequest.self, Ballast_V1_RespondQueryTaskCompletedRequest.self,
        Ballast_V1_RecordActivityTaskHeartbeatRequest.self, Ballast_V1_PollWorkflowTaskRequest.self,
        Ballast_V1_PollActivityTaskRequest.self, Ballast_V1_StreamTasksRequest.self, Ballast_V1_GrantTaskSlotsRequest.self,
        Ballast_V1_QueryWorkflowRequest.self, Ballast_V1_ListWorkflowExecutionsRequest.self,
        Ballast_V1_CountWorkflowExecutionsRequest.self, Ballast_V1_DescribeWorkflowExecutionRequest.self,
        Ballast_V1_GetWorkflowExecutionHistoryRequest.self, Ballast_V1_WaitWorkflowExecutionClosedRequest.self,
        Ballast_V1_TerminateWorkflowRequest.self, Ballast_V1_RequestCancelWorkflowRequest.self,
        Ballast_V1_AddMemberRequest.self, Ballast_V1_RemoveMemberRequest.self, Ballast_V1_PromoteMemberRequest.self,
        Ballast_V1_AddSearchAttributesRequest.self, Ballast_V1_EngineEntry.self, Ballast_V1_HistoryEvent.self,
    ]
}
