import BallastEngine
import BallastProto
import BallastRaft
import Foundation
import Logging
import Testing
@testable import BallastServer

@Suite("The node logs the engine's history warnings")
struct HistoryWarningLogTests {
    static func entry(_ index: UInt64, _ payload: Ballast_V1_EngineEntry.OneOf_Payload) throws -> Entry {
        var message = Ballast_V1_EngineEntry()
        message.formatVersion = newestEngineFormatVersion
        message.leaderTimeUnixNanos = 1_700_000_000_000_000_000 + Int64(index) * 1_000_000
        message.payload = payload
        return Entry(term: Term(1), index: LogIndex(index), data: try DeterministicBinaryEncoder.encode(message))
    }

    @Test("a run passing 10 MiB of history is logged once, with the run and its size")
    func historySizeWarningIsLogged() throws {
        let lines = CapturedLogLines()
        let machine = EngineStateMachine(logger: lines.logger(label: "test.history-warning")) { why in
            Issue.record("fatal: \(why)")
        }
        var start = Ballast_V1_StartWorkflowRequest()
        start.workflowID = "big"
        start.workflowType.name = "Transfer"
        start.taskQueue = "q"
        start.requestID = "start-big"
        _ = machine.apply(try Self.entry(1, .startWorkflow(start)))
        // Seven signals of 1.9 MiB: the count passes 10 MiB at the sixth.
        for index in 0..<7 {
            var signal = Ballast_V1_SignalWorkflowRequest()
            signal.workflowExecution.workflowID = "big"
            signal.signalName = "s\(index)"
            var payload = Ballast_V1_Payload()
            payload.data = Data(repeating: 0x62, count: 1_900_000)
            signal.input.payloads = [payload]
            _ = machine.apply(try Self.entry(UInt64(2 + index), .signalWorkflow(signal)))
        }
        let warnings = lines.all.filter { $0.message.hasPrefix("a run's history is large") }
        #expect(warnings.count == 1, "\(lines.all.map(\.message))")
        let metadata = try #require(warnings.first?.metadata)
        #expect("\(metadata["workflow_id"] ?? "")" == "big")
        #expect("\(metadata["namespace"] ?? "")" == "default")
        #expect("\(metadata["index"] ?? "")" == "7")
        let bytes = try #require(Int64("\(metadata["bytes"] ?? "")"))
        #expect(bytes >= 10 * 1024 * 1024 && bytes < 12 * 1024 * 1024)
        #expect(warnings.first?.message.contains("fails at 52428800 bytes") == true)
    }
}
