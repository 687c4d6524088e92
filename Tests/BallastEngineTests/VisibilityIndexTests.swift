import BallastEngine
import BallastProto
import Testing

func keyword(_ text: String) -> Ballast_V1_SearchAttributeValue {
    var value = Ballast_V1_SearchAttributeValue()
    value.keywordValue = text
    return value
}

func integer(_ number: Int64) -> Ballast_V1_SearchAttributeValue {
    var value = Ballast_V1_SearchAttributeValue()
    value.intValue = number
    return value
}

extension Commands {
    static func upsert(_ attributes: [String: Ballast_V1_SearchAttributeValue]) -> Ballast_V1_Command {
        var command = Ballast_V1_Command()
        command.upsertWorkflowSearchAttributes.searchAttributes.indexedFields = attributes
        return command
    }
}

extension Harness {
    mutating func register(_ attributes: [String: Ballast_V1_IndexedValueType], namespace: String = "") {
        var request = Ballast_V1_AddSearchAttributesRequest()
        request.namespace = namespace
        request.searchAttributes = attributes
        #expect(apply(.addSearchAttributes(request)).response.rejection == nil)
    }

    mutating func terminate(_ run: RunKey, namespace: String = "") {
        var request = Ballast_V1_TerminateWorkflowRequest()
        request.namespace = namespace
        request.workflowExecution = run.execution
        request.reason = "test"
        #expect(apply(.terminate(request)).response.rejection == nil)
    }

    /// Every page of a query, the run ids in order, and the pages' examined rows.
    func listAll(_ text: String, pageSize: Int = 7, namespace: String = "") throws -> (runIds: [String], pages: Int) {
        let query = try ParsedVisibilityQuery(parsing: text)
        var token: [UInt8] = []
        var runIds: [String] = []
        var pages = 0
        repeat {
            let page = try engine.listWorkflows(namespace: namespace, query: query, pageSize: pageSize, pageToken: token)
            runIds += page.executions.map(\.execution.runID)
            token = page.nextPageToken
            pages += 1
        } while !token.isEmpty && pages < 10_000
        return (runIds, pages)
    }

    /// Every run the engine remembers (the old full scan), as the oracle.
    func allRuns(namespace: String = "") -> [Ballast_V1_WorkflowExecutionInfo] {
        var filter = ListFilter()
        filter.namespace = namespace
        filter.limit = Int.max
        return engine.list(filter)
    }
}

/// A mixed population: three types, keyword and int attributes at start and by upsert, and
/// runs completed, failed, terminated, continued as new or left running.
func visibilityPopulation(_ count: Int = 240) -> Harness {
    var h = Harness()
    h.register(["Region": .keyword, "Amount": .int, "Tags": .keywordList])
    let types = ["Transfer", "Refund", "Payout"]
    for number in 0..<count {
        let run = h.start("w-\(number)", type: types[number % 3], queue: number % 12 == 5 ? "slow" : "q") { request in
            if number % 4 == 0 { request.searchAttributes.indexedFields["Region"] = keyword(number % 8 == 0 ? "eu" : "us") }
            request.searchAttributes.indexedFields["Amount"] = integer(Int64(number))
        }
        switch number % 6 {
        case 0: h.workflowTask(run, [Commands.upsert(["Region": keyword("apac")]), Commands.complete()])
        case 1: h.workflowTask(run, [Commands.fail("boom")])
        case 2: h.terminate(run)
        case 3:
            var tags = Ballast_V1_SearchAttributeValue()
            tags.keywordListValue.values = ["vip", number % 12 == 3 ? "new" : "old"]
            h.workflowTask(run, [Commands.upsert(["Tags": tags])])
        case 4: h.workflowTask(run, [Commands.continueAsNew()])
        default: break
        }
    }
    return h
}

@Suite("Visibility index")
struct VisibilityIndexTests {
    static func keywordOf(_ info: Ballast_V1_WorkflowExecutionInfo, _ name: String) -> String? {
        if case .keywordValue(let text)? = info.searchAttributes.indexedFields[name]?.value { return text }
        return nil
    }

    static func intOf(_ info: Ballast_V1_WorkflowExecutionInfo, _ name: String) -> Int64? {
        if case .intValue(let number)? = info.searchAttributes.indexedFields[name]?.value { return number }
        return nil
    }

    static func tags(_ info: Ballast_V1_WorkflowExecutionInfo) -> [String] {
        if case .keywordListValue(let list)? = info.searchAttributes.indexedFields["Tags"]?.value { return list.values }
        return []
    }

    @Test("paged answers equal a full scan for every kind of query")
    func matchesOracle() throws {
        let h = visibilityPopulation()
        let all = h.allRuns()
        #expect(all.count == 280, "240 starts plus 40 continued-as-new runs")
        let middle = all.map(\.startTimeUnixNanos).sorted()[all.count / 2]
        let cases: [(String, (Ballast_V1_WorkflowExecutionInfo) -> Bool)] = [
            ("", { _ in true }),
            ("WorkflowType = 'Refund'", { $0.type.name == "Refund" }),
            ("ExecutionStatus = 'Running'", { $0.status == .running }),
            ("ExecutionStatus != 'Running'", { $0.status != .running }),
            ("WorkflowType = 'Transfer' AND ExecutionStatus = 'Completed'", { $0.type.name == "Transfer" && $0.status == .completed }),
            ("WorkflowType = 'Payout' OR TaskQueue = 'slow'", { $0.type.name == "Payout" || $0.taskQueue == "slow" }),
            ("ExecutionStatus IN ('Failed', 'Terminated')", { [.failed, .terminated].contains($0.status) }),
            ("Region = 'apac'", { Self.keywordOf($0, "Region") == "apac" }),
            ("Region IS NULL", { Self.keywordOf($0, "Region") == nil }),
            ("Region != 'eu'", { Self.keywordOf($0, "Region") != "eu" }),
            ("Region STARTS_WITH 'u'", { Self.keywordOf($0, "Region")?.hasPrefix("u") == true }),
            ("Tags = 'new'", { Self.tags($0).contains("new") }),
            ("Tags IN ('vip', 'zzz') AND NOT Tags = 'old'", { Self.tags($0).contains("vip") && !Self.tags($0).contains("old") }),
            ("Amount BETWEEN 50 AND 99 AND WorkflowType != 'Refund'", {
                (50...99).contains(Self.intOf($0, "Amount") ?? -1) && $0.type.name != "Refund"
            }),
            ("Amount NOT BETWEEN 10 AND 200", { !(10...200).contains(Self.intOf($0, "Amount") ?? 15) }),
            ("StartTime > \(middle) AND (ExecutionStatus = 'Running' OR WorkflowType = 'Refund')", {
                $0.startTimeUnixNanos > middle && ($0.status == .running || $0.type.name == "Refund")
            }),
            ("CloseTime IS NOT NULL AND NOT (WorkflowType IN ('Refund', 'Payout'))", {
                $0.closeTimeUnixNanos != 0 && !["Refund", "Payout"].contains($0.type.name)
            }),
            ("WorkflowId = 'w-4' OR WorkflowId IN ('w-7', 'nope')", { ["w-4", "w-7"].contains($0.execution.workflowID) }),
            ("ExecutionStatus = 'ContinuedAsNew' AND ExecutionDuration >= 0", { $0.status == .continuedAsNew }),
        ]
        for (text, oracle) in cases {
            let expected = all.filter(oracle).sorted { ($0.startTimeUnixNanos, $0.execution.runID) > ($1.startTimeUnixNanos, $1.execution.runID) }
            let found = try h.listAll(text)
            #expect(found.runIds == expected.map(\.execution.runID), "\(text)")
            let count = try h.engine.countWorkflows(namespace: "", query: ParsedVisibilityQuery(parsing: text))
            #expect(count.count == Int64(expected.count), "count of \(text)")
            #expect(count.byStatus.reduce(0) { $0 + $1.count } == count.count)
        }
        let byRun = try h.listAll("ExecutionStatus = 'Running'", pageSize: 1)
        #expect(byRun.runIds.count == all.filter { $0.status == .running }.count)
    }

    @Test("a selective first page reads its index, not every row")
    func plannerUsesIndexes() throws {
        var h = Harness()
        h.register(["Region": .keyword, "Amount": .int])
        for number in 0..<2_000 {
            h.start("bulk-\(number)", type: number % 200 == 7 ? "Rare" : "Bulk") { request in
                if number % 400 == 9 { request.searchAttributes.indexedFields["Region"] = keyword("mars") }
                request.searchAttributes.indexedFields["Amount"] = integer(Int64(number))
            }
        }
        func page(_ text: String, size: Int = 5) throws -> VisibilityPage {
            try h.engine.listWorkflows(namespace: "", query: ParsedVisibilityQuery(parsing: text), pageSize: size)
        }
        let rare = try page("WorkflowType = 'Rare'")
        #expect(rare.plan == "WorkflowType index")
        #expect(rare.executions.count == 5 && rare.examinedRows == 6 && !rare.nextPageToken.isEmpty)
        let region = try page("Region = 'mars' AND ExecutionStatus = 'Running'")
        #expect(region.plan == "Region index")
        #expect(region.executions.count == 5 && region.examinedRows == 5 && region.nextPageToken.isEmpty)
        let newest = try page("", size: 50)
        #expect(newest.plan == "scan" && newest.examinedRows == 51)
        #expect(newest.executions.first?.execution.workflowID == "bulk-1999")
        let either = try page("WorkflowType = 'Rare' OR Region = 'mars'", size: 100)
        #expect(either.plan == "WorkflowType index ∪ Region index")
        #expect(either.executions.count == 15 && either.examinedRows == 15)
        let unindexed = try page("Amount < 3")
        #expect(unindexed.plan == "scan" && unindexed.examinedRows == 2_000 && unindexed.executions.count == 3)
        let oldest = h.allRuns().last?.startTimeUnixNanos ?? 0
        let ranged = try page("StartTime < \(oldest + 3 * 1_000_000) AND Amount >= 0", size: 50)
        #expect(ranged.executions.count == 3 && ranged.examinedRows == 3)
        let oldestFirst = try page("ORDER BY StartTime ASC", size: 3)
        #expect(oldestFirst.executions.map(\.execution.workflowID) == ["bulk-0", "bulk-1", "bulk-2"])
    }

    @Test("a page reads at most its row limit, says so, and its token goes on from the last row read")
    func rowLimitEndsThePageWithAToken() throws {
        var h = Harness()
        h.register(["Amount": .int])
        for number in 0..<300 {
            h.start("bulk-\(number)") { request in request.searchAttributes.indexedFields["Amount"] = integer(Int64(number)) }
        }
        let query = try ParsedVisibilityQuery(parsing: "Amount < 20 OR Amount >= 290")
        let whole = try h.engine.listWorkflows(namespace: "", query: query, pageSize: 100)
        #expect(whole.plan == "scan" && whole.executions.count == 30 && !whole.stoppedAtRowLimit && whole.nextPageToken.isEmpty)
        // The newest ten match at once; then 270 rows match nothing: a limit of 50 stops in them.
        let first = try h.engine.listWorkflows(namespace: "", query: query, pageSize: 100, maxExaminedRows: 50)
        #expect(first.examinedRows == 50 && first.stoppedAtRowLimit && !first.nextPageToken.isEmpty)
        #expect(first.executions.map(\.execution.workflowID) == (290..<300).reversed().map { "bulk-\($0)" })
        var runIds = first.executions.map(\.execution.runID)
        var token = first.nextPageToken
        var pages = 1
        while !token.isEmpty, pages < 100 {
            let page = try h.engine.listWorkflows(namespace: "", query: query, pageSize: 100, pageToken: token, maxExaminedRows: 50)
            #expect(page.examinedRows <= 50)
            runIds += page.executions.map(\.execution.runID)
            token = page.nextPageToken
            pages += 1
        }
        #expect(runIds == whole.executions.map(\.execution.runID), "limited pages add up to the whole page")
        // 300 rows, 50 a page: the sixth reads the last row at its limit and, seeing no row after
        // it, ends the walk without a token (no seventh, empty page).
        #expect(pages == 6)
        // The same at the first page: a limit equal to the rows read ends the walk, and one less
        // stops at the limit with a token.
        let exact = try h.engine.listWorkflows(namespace: "", query: query, pageSize: 100, maxExaminedRows: 300)
        #expect(exact.examinedRows == 300 && exact.executions.count == 30 && exact.nextPageToken.isEmpty)
        let short = try h.engine.listWorkflows(namespace: "", query: query, pageSize: 100, maxExaminedRows: 299)
        #expect(short.examinedRows == 299 && short.stoppedAtRowLimit && !short.nextPageToken.isEmpty)
        // A page that fills before its limit did not stop at it (its token, if any, is the usual one).
        let full = try h.engine.listWorkflows(namespace: "", query: query, pageSize: 5, maxExaminedRows: 50)
        #expect(full.executions.count == 5 && !full.stoppedAtRowLimit && !full.nextPageToken.isEmpty)
        // Limits outside 1…maxExaminedRowsPerPage are brought inside.
        let one = try h.engine.listWorkflows(namespace: "", query: query, pageSize: 100, maxExaminedRows: 0)
        #expect(one.examinedRows == 1 && one.stoppedAtRowLimit)
    }

    @Test("a page token stays valid while runs are added and removed")
    func stableTokens() throws {
        var h = Harness()
        for number in 0..<20 { h.start("old-\(number)") }
        let query = try ParsedVisibilityQuery(parsing: "WorkflowType = 'Transfer'")
        var page = try h.engine.listWorkflows(namespace: "", query: query, pageSize: 6)
        var seen = page.executions.map(\.execution.workflowID)
        for number in 0..<10 { h.start("new-\(number)") }
        h.terminate(RunKey(namespace: "default", workflowId: "old-0", runId: ""))
        while !page.nextPageToken.isEmpty {
            page = try h.engine.listWorkflows(namespace: "", query: query, pageSize: 6, pageToken: page.nextPageToken)
            seen += page.executions.map(\.execution.workflowID)
        }
        #expect(seen == (0..<20).reversed().map { "old-\($0)" })

        let other = try ParsedVisibilityQuery(parsing: "WorkflowType = 'Other'")
        let first = try h.engine.listWorkflows(namespace: "", query: query, pageSize: 2)
        #expect(throws: VisibilityQueryError.self) {
            _ = try h.engine.listWorkflows(namespace: "", query: other, pageSize: 2, pageToken: first.nextPageToken)
        }
        #expect(throws: VisibilityQueryError.self) {
            _ = try h.engine.listWorkflows(namespace: "", query: query, pageSize: 2, pageToken: [9, 9, 9])
        }
    }

    @Test("ORDER BY CloseTime walks closed runs in close order, open runs after them")
    func closeOrder() throws {
        var h = Harness()
        var runs: [RunKey] = []
        for number in 0..<12 { runs.append(h.start("c-\(number)", type: number < 6 ? "A" : "B")) }
        let closing = [5, 0, 9, 3, 11, 1]
        for number in closing { h.terminate(runs[number]) }
        let names = closing.map { "c-\($0)" }
        func ids(_ text: String) throws -> [String] {
            try h.listAll(text, pageSize: 4).runIds.map { runId in runs.first { $0.runId == runId }.map(\.workflowId) ?? "?" }
        }
        #expect(try ids("CloseTime IS NOT NULL ORDER BY CloseTime ASC") == names)
        #expect(try ids("ExecutionStatus = 'Terminated' ORDER BY CloseTime DESC") == Array(names.reversed()))
        #expect(try ids("WorkflowType = 'A' AND CloseTime IS NOT NULL ORDER BY CloseTime ASC") == ["c-5", "c-0", "c-3", "c-1"])
        let newestClosed = try h.engine.listWorkflows(namespace: "", query: ParsedVisibilityQuery(parsing: "CloseTime IS NOT NULL ORDER BY CloseTime DESC"),
                                                      pageSize: 2)
        #expect(newestClosed.examinedRows == 3, "the walk starts below the six open runs")
        let everything = try ids("ORDER BY CloseTime DESC")
        #expect(everything.count == 12)
        #expect(Array(everything.suffix(6)) == Array(names.reversed()), "open runs first in DESC, as if closing later")
    }

    @Test("Count gives the total and the per-status counts")
    func counts() throws {
        let h = visibilityPopulation(60)
        let all = h.allRuns()
        let counted = try h.engine.countWorkflows(namespace: "", query: ParsedVisibilityQuery())
        #expect(counted.count == Int64(all.count))
        for (status, count) in counted.byStatus {
            #expect(count == Int64(all.filter { $0.status == status }.count), "\(status)")
        }
        #expect(Set(counted.byStatus.map(\.status)) == [.running, .completed, .failed, .terminated, .continuedAsNew])
        let transfers = try h.engine.countWorkflows(namespace: "", query: ParsedVisibilityQuery(parsing: "WorkflowType = 'Transfer'"))
        #expect(transfers.count == Int64(all.filter { $0.type.name == "Transfer" }.count))
        var filter = Ballast_V1_WorkflowExecutionFilter()
        filter.statuses = [.failed]
        let failed = try h.engine.countWorkflows(namespace: "", query: ParsedVisibilityQuery(), filter: filter)
        #expect(failed.byStatus.map(\.status) == [.failed])
        #expect(try h.engine.countWorkflows(namespace: "nowhere", query: ParsedVisibilityQuery()).count == 0)
    }

    @Test("continue-as-new closes the old row and indexes the new run with the attributes")
    func continueAsNew() throws {
        var h = Harness()
        h.register(["Region": .keyword])
        let first = h.start("chain") { $0.searchAttributes.indexedFields["Region"] = keyword("eu") }
        h.workflowTask(first, [Commands.upsert(["Region": keyword("us")]), Commands.continueAsNew()])
        let rows = try h.engine.listWorkflows(namespace: "", query: ParsedVisibilityQuery(parsing: "WorkflowId = 'chain'"), pageSize: 10)
        #expect(rows.executions.map(\.status) == [.running, .continuedAsNew])
        #expect(try h.listAll("Region = 'us'").runIds.count == 2)
        #expect(try h.listAll("Region = 'eu'").runIds.isEmpty)
    }
}

@Suite("Visibility index in the replicated state")
struct VisibilityReplicationTests {
    /// The same entries on a fresh engine: a namespace with 1 h retention, runs closed over
    /// time, then enough time for the first ones to expire.
    static func script() -> Harness {
        var h = visibilityPopulation(90)
        var namespace = Ballast_V1_RegisterNamespaceRequest()
        namespace.name = "short"
        namespace.workflowExecutionRetentionNanos = 3_600 * second
        #expect(h.apply(.registerNamespace(namespace)).response.rejection == nil)
        for number in 0..<30 {
            let run = h.start("s-\(number)") { $0.namespace = "short" }
            if number < 20 { h.terminate(RunKey(namespace: "short", workflowId: run.workflowId, runId: run.runId), namespace: "short") }
            h.now += 60 * second
        }
        return h
    }

    @Test("two engines fed the same entries hold the same index; a restore gives the same answers and digest")
    func deterministic() throws {
        let one = Self.script(), two = Self.script()
        #expect(one.engine.visibilityDigest() == two.engine.visibilityDigest())
        #expect(one.engine.stateDigest() == two.engine.stateDigest())
        let restored = try WorkflowEngine.restore(one.engine.snapshot())
        #expect(restored.visibilityDigest() == one.engine.visibilityDigest())
        #expect(restored.stateDigest() == one.engine.stateDigest())
        for text in ["", "Region = 'apac' OR Tags = 'vip'", "ExecutionStatus != 'Running' ORDER BY CloseTime ASC", "Amount > 40"] {
            let query = try ParsedVisibilityQuery(parsing: text)
            let original = try one.engine.listWorkflows(namespace: "", query: query, pageSize: 9)
            let answer = try restored.listWorkflows(namespace: "", query: query, pageSize: 9)
            #expect(original.executions == answer.executions, "\(text)")
            // A token from one node continues on another.
            let next = try restored.listWorkflows(namespace: "", query: query, pageSize: 9, pageToken: original.nextPageToken)
            let expected = try one.engine.listWorkflows(namespace: "", query: query, pageSize: 9, pageToken: original.nextPageToken)
            #expect(next.executions == expected.executions, "\(text)")
        }
    }

    @Test("the snapshot's index hash is checked on restore")
    func tamperedHash() throws {
        let h = Self.script()
        var message = h.engine.snapshotMessage()
        #expect(message.visibilityIndexHash == h.engine.visibilityDigest())
        message.visibilityIndexHash ^= 1
        let bytes: [UInt8] = try message.serializedBytes()
        #expect(throws: EngineError.self) { _ = try WorkflowEngine.restore(bytes) }
    }

    @Test("closed runs leave the index when their retention ends, by entry time, on every node alike")
    func retention() throws {
        var one = Self.script(), two = Self.script()
        let query = try ParsedVisibilityQuery(parsing: "ExecutionStatus = 'Terminated'")
        #expect(try one.engine.countWorkflows(namespace: "short", query: query).count == 20)
        let rowsBefore = one.engine.visibilityRowCount
        // 40 minutes on: the runs closed more than an hour before expire, the later ones stay.
        _ = one.fireDue(within: 40 * 60 * second)
        _ = two.fireDue(within: 40 * 60 * second)
        let left = try one.engine.countWorkflows(namespace: "short", query: query).count
        #expect(left > 0 && left < 20)
        #expect(one.engine.visibilityRowCount == rowsBefore - (20 - Int(left)))
        #expect(one.engine.visibilityDigest() == two.engine.visibilityDigest())
        #expect(one.engine.stateDigest() == two.engine.stateDigest())
        #expect(try one.engine.countWorkflows(namespace: "short", query: ParsedVisibilityQuery(parsing: "ExecutionStatus = 'Running'")).count == 10)
        let restored = try WorkflowEngine.restore(one.engine.snapshot())
        #expect(restored.visibilityDigest() == one.engine.visibilityDigest())
        // The default namespace keeps closed runs for 7 days.
        #expect(try one.engine.countWorkflows(namespace: "", query: query).count == 15)
        _ = one.fireDue(within: 2 * 3_600 * second)
        #expect(try one.engine.countWorkflows(namespace: "short", query: query).count == 0)
        #expect(try one.engine.countWorkflows(namespace: "", query: query).count == 15)
    }
}
