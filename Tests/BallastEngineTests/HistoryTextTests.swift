import BallastEngine
import BallastProto
import Foundation
import Testing

@Suite("The timeline renderer shared by `workflow show` and the web UI, and the failing-runs read")
struct HistoryTextTests {
    @Test("times render as ISO 8601 UTC with milliseconds, the same as Foundation's formatter, across leap days and eras")
    func times() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let instants: [Int64] = [1, 951_782_400_000_000_000 /* 2000-02-29 */, 1_709_164_800_999_000_000 /* 2024-02-29 */,
                                 1_700_000_000_123_456_789, 4_102_444_799_999_000_000 /* 2099-12-31 */, 86_399_999_000_000]
        for nanos in instants {
            let expected = formatter.string(from: Date(timeIntervalSince1970: Double(nanos / 1_000_000) / 1e3))
            #expect(HistoryText.time(nanos) == expected, "\(nanos)")
        }
        #expect(HistoryText.time(0) == "-")
        #expect(HistoryText.time(-5) == "-")
    }

    @Test("durations: milliseconds under a second, tenths above, a dash for none")
    func durations() {
        #expect(HistoryText.duration(0) == "-")
        #expect(HistoryText.duration(350_000_000) == "350ms")
        #expect(HistoryText.duration(1_249_000_000) == "1.2s")
        #expect(HistoryText.duration(61_960_000_000) == "62.0s")
        #expect(HistoryText.duration(1_250_000_000) == "1.3s")
        // The longest timer (a sleep beyond 292 years in the Swift SDK): adding half a tenth first overflowed.
        #expect(HistoryText.duration(.max) == "9223372036.9s")
        #expect(HistoryText.duration(.max - 50_000_000) == "9223372036.8s")
        // An event's offset from the first: held at the ends instead of wrapping.
        #expect(HistoryText.elapsed(from: 5, to: 12) == 7)
        #expect(HistoryText.elapsed(from: .min, to: .max) == .max)
        #expect(HistoryText.elapsed(from: .max, to: .min) == .min)
        #expect(HistoryText.offset(HistoryText.elapsed(from: .min, to: 1)) == "+9223372036.9s")
    }

    @Test("base64 matches Foundation's for every length remainder")
    func base64() {
        for length in 0 ..< 20 {
            let bytes = (0 ..< length).map { UInt8(truncatingIfNeeded: $0 * 37 + 11) }
            #expect(HistoryText.base64(bytes) == Data(bytes).base64EncodedString())
        }
    }

    @Test("payloads: plain JSON as text, a codec's encoding shown as encoded")
    func payloadRendering() {
        var plain = Ballast_V1_Payload()
        plain.metadata["encoding"] = Data("json/plain".utf8)
        plain.data = Data(#"{"a":1}"#.utf8)
        #expect(HistoryText.isPlainJSON(plain))
        #expect(HistoryText.payload(plain) == #"{"a":1}"#)
        var encrypted = plain
        encrypted.metadata["encoding"] = Data("binary/encrypted".utf8)
        #expect(!HistoryText.isPlainJSON(encrypted))
        #expect(HistoryText.payload(encrypted) == "<binary/encrypted: eyJhIjoxfQ==>")
    }

    @Test("the timeline names the activity of each outcome and shows who signalled, cancelled or terminated and why")
    func timelineRows() {
        var h = Harness()
        let run = h.start("t1")
        h.workflowTask(run, [Commands.scheduleActivity("debit-1", type: "Debit")])
        _ = h.completeActivity(h.startActivity(run, "debit-1"))
        var signalRequest = Ballast_V1_SignalWorkflowRequest()
        signalRequest.workflowExecution.workflowID = run.workflowId
        signalRequest.signalName = "approve"
        signalRequest.identity = "web-ui:ann@127.0.0.1"
        signalRequest.reason = "manager said yes"
        h.apply(.signalWorkflow(signalRequest))
        var cancel = Ballast_V1_RequestCancelWorkflowRequest()
        cancel.workflowExecution = run.execution
        cancel.identity = "ballast-cli@host"
        cancel.reason = "customer called"
        h.apply(.requestCancel(cancel))
        let rows = HistoryText.rows(h.events(run))
        let completed = rows.first { $0.type == "ActivityTaskCompleted" }
        #expect(completed?.details.hasPrefix("activity=Debit#debit-1 ") == true)
        #expect(completed?.tone == .good)
        let signaled = rows.first { $0.type == "WorkflowExecutionSignaled" }
        #expect(signaled?.details.contains("identity=web-ui:ann@127.0.0.1 reason=\"manager said yes\"") == true)
        let requested = rows.first { $0.type == "WorkflowExecutionCancelRequested" }
        #expect(requested?.details == "reason=\"customer called\" identity=ballast-cli@host")
        #expect(requested?.tone == .warning)
        let text = HistoryText.timeline(h.events(run))
        #expect(text.split(separator: "\n").count == rows.count)
        #expect(text.contains("activity=Debit#debit-1"))
        #expect(HistoryText.timeline([]) == "no events")
    }

    @Test("failing runs: an activity that failed more than N times in a row is listed with its last failure, and not at N")
    func failingRuns() {
        var h = Harness()
        let run = h.start("flaky")
        let healthy = h.start("healthy")
        h.workflowTask(run, [Commands.scheduleActivity("bank", type: "InstructBank")])
        h.workflowTask(healthy, [Commands.scheduleActivity("ok", type: "Debit")])
        for failures in 1 ... 3 {
            _ = h.failActivity(h.startActivity(run, "bank"))
            _ = h.fireDue(within: Int64(1 << failures) * second)
        }
        #expect(h.engine.failingRuns(namespace: "", moreThan: 3, limit: 10).runs.isEmpty, "3 failures are not more than 3")
        let (runs, truncated) = h.engine.failingRuns(namespace: "", moreThan: 2, limit: 10)
        #expect(!truncated)
        #expect(runs.count == 1)
        #expect(runs.first?.info.execution.workflowID == "flaky")
        #expect(runs.first?.kind == .activity)
        #expect(runs.first?.activityType == "InstructBank")
        #expect(runs.first?.consecutiveFailures == 3)
        #expect(runs.first?.lastFailure?.type == "Flaky")
        #expect(h.engine.failingRuns(namespace: "", moreThan: 0, limit: 1).runs.count == 1)
    }
}
