import BallastProto
import BallastWire
import Foundation
import Testing
@testable import BallastServer

/// The workflow counters a dashboard plots come from what the node applies.
@Suite struct NodeMetricsTests {
    @Test func countsRunsStartedAndClosedByStatus() async throws {
        let single = try await SingleNode()
        let client = try await single.client()
        for number in 0..<3 {
            let _: Ballast_V1_StartWorkflowResponse = try await client.unary(
                BallastMethod.Workflow.start, request: startRequest("metrics-\(number)"))
        }
        var terminate = Ballast_V1_TerminateWorkflowRequest()
        terminate.workflowExecution.workflowID = "metrics-1"
        terminate.reason = "counted"
        let _: Ballast_V1_TerminateWorkflowResponse = try await client.unary(BallastMethod.Workflow.terminate, request: terminate)

        // A call is answered once applied, and the counters move on apply: no waiting needed.
        let text = single.node.metrics.text()
        #expect(text.contains("ballast_workflows_started_total 3"))
        #expect(text.contains("ballast_workflows_closed_total{status=\"terminated\"} 1"))
        #expect(text.contains("ballast_workflows_closed_total{status=\"completed\"} 0"))
        await client.close()
        await single.stop()
    }

    /// Every series the Grafana dashboard in docs/ plots is one the node exposes, so a renamed
    /// metric cannot silently blank a panel.
    @Test func theDashboardPlotsOnlyMetricsTheNodeExposes() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let dashboard = try String(contentsOf: root.appendingPathComponent("docs/grafana/ballast-cluster.json"), encoding: .utf8)
        let pattern = try NSRegularExpression(pattern: "ballast_[a-z_]+")
        let range = NSRange(dashboard.startIndex..., in: dashboard)
        let names = Set(pattern.matches(in: dashboard, range: range).compactMap { Range($0.range, in: dashboard) }
            .map { String(dashboard[$0]) })
        #expect(names.count >= 15)

        let single = try await SingleNode()
        let client = try await single.client()
        // The backlog gauge exists for each queue a worker is connected to on the leader: a long
        // poll on an otherwise empty queue stays open and makes it appear.
        let poller = try await single.client()
        let poll = Task {
            var request = Ballast_V1_PollWorkflowTaskRequest()
            request.taskQueue = "dashboard-idle"
            let _: Ballast_V1_PollWorkflowTaskResponse = try await poller.unary(BallastMethod.Worker.pollWorkflowTask, request: request)
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while !single.node.metrics.text().contains("ballast_dispatch_pending_tasks{"), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let exposed = single.node.metrics.text()
        poll.cancel()
        await poller.close()
        for name in names.sorted() {
            #expect(exposed.contains("\n\(name)") || exposed.contains("\n\(name){"),
                    "the dashboard plots \(name), which /metrics does not expose")
        }
        await client.close()
        await single.stop()
    }
}
