import BallastEngine
import BallastProto
import BallastWire
import Foundation
import Testing
@testable import BallastServer

/// AddSearchAttributes refuses the built-in visibility field names: such an attribute could never
/// be queried and would share the built-in's posting lists (Count would count its rows twice).
@Suite struct SearchAttributeNameTests {
    @Test("registering a search attribute under a built-in field's name is INVALID_ARGUMENT and changes nothing",
          arguments: ["ExecutionStatus", "WorkflowType", "TaskQueue", "WorkflowId", "StartTime"])
    func builtInNamesAreRefused(name: String) async throws {
        let single = try await SingleNode()
        let client = try await single.client()
        var request = Ballast_V1_AddSearchAttributesRequest()
        request.searchAttributes = [name: .keyword, "Region": .keyword]
        do {
            let _: Ballast_V1_AddSearchAttributesResponse = try await client.unary(BallastMethod.Workflow.addSearchAttributes,
                                                                                  request: request)
            Issue.record("\(name) was registered")
        } catch let status as GRPCStatus {
            #expect(status.code == .invalidArgument)
            #expect(status.message.contains(name) && status.message.contains("reserved"), "\(status.message)")
        }
        // Nothing of the refused request was applied: "Region" is still unknown to a query.
        var list = Ballast_V1_ListWorkflowExecutionsRequest()
        list.query = "Region = 'eu'"
        await #expect(throws: GRPCStatus.self) {
            let _: Ballast_V1_ListWorkflowExecutionsResponse = try await client.unary(BallastMethod.Workflow.list, request: list)
        }
        // Another name goes through, and then the query knows it.
        request.searchAttributes = ["Region": .keyword]
        let _: Ballast_V1_AddSearchAttributesResponse = try await client.unary(BallastMethod.Workflow.addSearchAttributes,
                                                                              request: request)
        let _: Ballast_V1_ListWorkflowExecutionsResponse = try await client.unary(BallastMethod.Workflow.list, request: list)
        await client.close()
        await single.stop()
    }
}
