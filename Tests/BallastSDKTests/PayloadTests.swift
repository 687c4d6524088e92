import BallastProto
@testable import BallastSDK
import Foundation
import Testing

/// A toy "encryption" codec: XOR with a key byte, marking the payload.
struct XORCodec: PayloadCodec {
    var key: UInt8
    func encode(_ payloads: [Ballast_V1_Payload]) throws -> [Ballast_V1_Payload] {
        try payloads.map { payload in
            var encoded = Ballast_V1_Payload()
            encoded.metadata["encoding"] = Data("binary/xor".utf8)
            encoded.data = Data(try payload.serializedData().map { $0 ^ key })
            return encoded
        }
    }
    func decode(_ payloads: [Ballast_V1_Payload]) throws -> [Ballast_V1_Payload] {
        try payloads.map { payload in
            guard payload.metadata["encoding"] == Data("binary/xor".utf8) else { return payload }
            return try Ballast_V1_Payload(serializedBytes: Data(payload.data.map { $0 ^ key }))
        }
    }
}

@Suite("Payloads and codecs")
struct PayloadTests {
    @Test("JSON payloads carry encoding json/plain and round-trip")
    func json() throws {
        let payload = try DataConverter.default.toPayloads(TransferInput(from: "a", to: "b", amount: 5))
        #expect(payload.payloads[0].metadata["encoding"] == Data("json/plain".utf8))
        #expect(String(decoding: payload.payloads[0].data, as: UTF8.self) == #"{"amount":5,"from":"a","to":"b"}"#)
        #expect(try DataConverter.default.fromPayloads(payload, as: TransferInput.self) == TransferInput(from: "a", to: "b", amount: 5))
    }

    @Test("a codec chain hides the plaintext and is undone in reverse order")
    func codecChain() throws {
        let converter = DataConverter(codecs: [XORCodec(key: 0x5A), XORCodec(key: 0x33)])
        let payloads = try converter.toPayloads("secret account 42")
        #expect(!String(decoding: payloads.payloads[0].data, as: UTF8.self).contains("secret"))
        #expect(try converter.fromPayloads(payloads, as: String.self) == "secret account 42")
        #expect(throws: PayloadConversionError.self) { try DataConverter.default.fromPayloads(payloads, as: String.self) }
    }

    @Test("a workflow runs with an encrypting codec: history holds ciphertext, the result decodes")
    func codecThroughRuntime() async throws {
        let converter = DataConverter(codecs: [XORCodec(key: 0x5A)])
        var registry = ActivityRegistry()
        registry.register(Debit())
        registry.register(Credit())
        let env = WorkflowTestEnvironment(workflows: [TransferWorkflow.self], activities: registry, dataConverter: converter)
        let handle = try await env.start(TransferWorkflow.self, input: TransferInput(from: "alice", to: "bob", amount: 7))
        #expect(try await handle.result() == "debited 7, credited 7")
        let plaintext = handle.history.contains { event in
            guard case .activityTaskScheduled(let a) = event.attributes else { return false }
            return String(decoding: a.input.payloads[0].data, as: UTF8.self).contains("alice")
        }
        #expect(!plaintext)
    }
}

@Suite("Replayer history files")
struct HistoryFileTests {
    @Test("a history exported as the protobuf JSON of ballast.v1.History replays from a file")
    func replayFile() async throws {
        var registry = ActivityRegistry()
        registry.register(Debit())
        registry.register(Credit())
        let env = WorkflowTestEnvironment(workflows: [TransferWorkflow.self], activities: registry)
        let handle = try await env.start(TransferWorkflow.self, input: TransferInput(from: "a", to: "b", amount: 1))
        _ = try await handle.result()
        var history = Ballast_V1_History()
        history.events = handle.history
        let json = try history.jsonString()
        #expect(json.contains(#""workflowExecutionStarted""#) && json.contains(#""eventId":"1""#))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ballast-history-\(UUID().uuidString).json").path
        try Data(json.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        try WorkflowReplayer(workflows: [TransferWorkflow.self]).replay(historyFile: path)
        #expect(throws: NonDeterminismError.self) {
            try WorkflowReplayer(workflows: [ReorderedTransferWorkflow.self]).replay(historyFile: path)
        }
    }

    @Test("the JSON example in docs/sdk.md parses")
    func docExample() throws {
        let json = """
        {"events": [
          {"eventId": "1", "eventTimeUnixNanos": "1700000000000000000",
           "workflowExecutionStarted": {"workflowType": {"name": "Transfer"}, "taskQueue": "payments",
                                        "input": {"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="},
                                                                "data": "eyJhbW91bnQiOjEwMH0="}]}}},
          {"eventId": "2", "eventTimeUnixNanos": "1700000000000000000",
           "workflowTaskScheduled": {"taskQueue": "payments", "attempt": 1}}
        ]}
        """
        let history = try Ballast_V1_History(jsonString: json)
        #expect(history.events.count == 2)
        #expect(String(decoding: history.events[0].workflowExecutionStarted.input.payloads[0].data, as: UTF8.self) == #"{"amount":100}"#)
    }

    @Test("malformed files and histories are refused with a clear error")
    func malformed() throws {
        let replayer = WorkflowReplayer(workflows: [TransferWorkflow.self])
        #expect(throws: WorkflowTaskError.self) { try replayer.replay(historyJSON: Data("{not json".utf8)) }
        #expect(throws: WorkflowTaskError.self) { try replayer.replay(historyFile: "/nonexistent/history.json") }
        #expect(throws: WorkflowTaskError.self) { try replayer.replay([]) }
        var history = HistoryBuilder(workflowType: "Transfer", input: payloads(TransferInput(from: "a", to: "b", amount: 1)))
        history.startWorkflowTask()
        var events = history.events
        events[1].eventID = 7
        let error = try #require(throws: WorkflowTaskError.self) { try replayer.replay(events) }
        #expect(error.message.contains("history is not contiguous: expected event 2, got 7"))
    }
}

@Suite("Data converter as the client's payload converter")
struct ClientConverterTests {
    @Test("the client side encodes with the same codec chain the worker decodes with")
    func sharedCodecs() throws {
        let converter = DataConverter(codecs: [XORCodec(key: 0x21)])
        let client: any ClientPayloadConverting = converter
        let payload = try client.encode(TransferInput(from: "alice", to: "bob", amount: 3))
        #expect(!String(decoding: payload.data, as: UTF8.self).contains("alice"))
        var payloads = Ballast_V1_Payloads()
        payloads.payloads = [payload]
        #expect(try converter.fromPayloads(payloads, as: TransferInput.self) == TransferInput(from: "alice", to: "bob", amount: 3))
        #expect(throws: BallastClientError.self) { _ = try client.decode(payload, as: Int.self) }
    }
}
