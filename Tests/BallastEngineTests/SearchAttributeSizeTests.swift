import BallastEngine
import BallastProto
import Foundation
import Testing

/// From engine format 5 a search attribute value is at most `maxSearchAttributeValueBytes`
/// (2,048): the visibility index keeps every run's values in memory until retention ends.
@Suite("Search attribute value sizes (engine format 5)")
struct SearchAttributeSizeTests {
    static func keyword(_ bytes: Int) -> Ballast_V1_SearchAttributeValue {
        var value = Ballast_V1_SearchAttributeValue()
        value.keywordValue = String(repeating: "k", count: bytes)
        return value
    }

    static func startWith(_ h: inout Harness, _ id: String, _ value: Ballast_V1_SearchAttributeValue,
                          name: String = "CustomKeywordField") -> ApplyResult {
        var request = Ballast_V1_StartWorkflowRequest()
        request.workflowID = id
        request.workflowType.name = "Transfer"
        request.taskQueue = "q"
        request.requestID = "start-\(id)"
        request.searchAttributes.indexedFields[name] = value
        return h.apply(.startWorkflow(request))
    }

    @Test("a start with a value of 2,048 bytes is accepted; 2,049 bytes, or a keyword list of more, is refused and changes nothing")
    func start() {
        var h = Harness()
        #expect(Self.startWith(&h, "fits", Self.keyword(2_048)).response.rejection == nil)
        let digest = h.engine.stateDigest()
        let refused = Self.startWith(&h, "big", Self.keyword(2_049)).response.rejection
        #expect(refused?.code == .invalidArgument)
        #expect("\(refused.map { "\($0)" } ?? "")".contains("2049 bytes"))
        var list = Ballast_V1_SearchAttributeValue()
        list.keywordListValue.values = Array(repeating: "", count: 3_000)
        #expect(Self.startWith(&h, "list", list, name: "CustomKeywordListField").response.rejection?.code == .invalidArgument,
                "3,000 empty strings count a byte each")
        #expect(h.engine.stateDigest() == digest)
    }

    @Test("an upsert with a value over the limit fails the workflow task with BAD_SEARCH_ATTRIBUTES")
    func upsert() throws {
        var h = Harness()
        let run = h.start("w")
        h.workflowTask(run, [Commands.upsert("CustomKeywordField", keyword: String(repeating: "u", count: 4_096))])
        let failed = try #require(h.events(run).last { $0.typeName == "WorkflowTaskFailed" })
        #expect(failed.workflowTaskFailed.cause == .badSearchAttributes)
        #expect(!h.events(run).contains { $0.typeName == "UpsertWorkflowSearchAttributes" })
    }

    @Test("entries of format 4 accept any size, as every earlier build applied them")
    func olderFormatsAcceptAnySize() {
        var h = Harness()
        h.formatVersion = historySizeFormatVersion
        #expect(Self.startWith(&h, "big", Self.keyword(100_000)).response.rejection == nil)
    }
}
