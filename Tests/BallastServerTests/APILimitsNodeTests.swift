import BallastProto
import BallastWire
import Foundation
import Testing
@testable import BallastServer

/// `ballast server --max-connections / --max-message-bytes` reach the node's API port.
@Suite struct APILimitsNodeTests {
    @Test("a node closes API connections over its connection limit and refuses messages over its size limit")
    func theNodeAppliesItsAPILimits() async throws {
        let single = try await SingleNode { configuration in
            configuration.apiLimits.maxConnections = 2
            configuration.apiLimits.maxReceiveMessageBytes = 2048
        }
        let first = try await single.client()
        let second = try await single.client()
        for client in [first, second] {
            let _: Ballast_V1_CountWorkflowExecutionsResponse = try await client.unary(
                BallastMethod.Workflow.count, request: Ballast_V1_CountWorkflowExecutionsRequest(), timeout: .seconds(5))
        }

        // The third connection is closed at accept: no call gets through it.
        await #expect(throws: (any Error).self) {
            let third = try await single.client()
            defer { Task { await third.close() } }
            let _: Ballast_V1_CountWorkflowExecutionsResponse = try await third.unary(
                BallastMethod.Workflow.count, request: Ballast_V1_CountWorkflowExecutionsRequest(), timeout: .seconds(5))
        }

        // A start whose input is over 2 KiB is refused before it is read; a small one is taken.
        var large = startRequest("large")
        var payload = Ballast_V1_Payload()
        payload.data = Data(repeating: 0x61, count: 4096)
        large.input.payloads = [payload]
        do {
            let _: Ballast_V1_StartWorkflowResponse = try await first.unary(BallastMethod.Workflow.start, request: large,
                                                                             timeout: .seconds(5))
            Issue.record("a 4 KiB start went through a 2 KiB limit")
        } catch let status as GRPCStatus {
            #expect(status.code == .resourceExhausted, "\(status)")
        }
        let _: Ballast_V1_StartWorkflowResponse = try await second.unary(BallastMethod.Workflow.start, request: startRequest("small"),
                                                                          timeout: .seconds(5))
        await first.close()
        await second.close()
        await single.stop()
    }
}
