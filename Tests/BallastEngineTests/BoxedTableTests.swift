@testable import BallastEngine
import Testing

@Suite("Boxed table: runs boxed, copied on write")
struct BoxedTableTests {
    /// A run whose state names `runId` and carries `marker` in a field the handlers change.
    private func run(_ runId: String, marker: Int64) -> RunState {
        RunState(key: RunKey(namespace: "default", workflowId: "wf-\(runId)", runId: runId), workflowType: "Transfer",
                 taskQueue: "transfers", startTime: 1, startRequestId: "request-\(runId)", firstRunId: runId,
                 nextEventId: marker, workflowTaskTimeout: 10)
    }

    /// The table, the copy a capture made of it, and each one's expected contents.
    private struct Copies {
        var tables: [BoxedTable<RunState>]
        var expected: [[String: Int64]]
    }

    @Test("copies taken at random moments keep their runs while both the table and the copies go on changing",
          arguments: [UInt64(11), 12, 13])
    func copiesAreIndependent(seed: UInt64) {
        var random = SeededRandom(seed: seed)
        var copies = Copies(tables: [BoxedTable<RunState>()], expected: [[:]])
        for step in 0..<6_000 {
            // Now and then a capture: a copy that later changes on its own, as an engine copy may.
            if random.chance(1), copies.tables.count < 6 {
                copies.tables.append(copies.tables[0])
                copies.expected.append(copies.expected[0])
            }
            let which = random.chance(70) ? 0 : Int(random.below(copies.tables.count))
            let runId = "run-\(random.below(400))"
            let marker = Int64(step + 1)
            switch random.below(5) {
            case 0:
                // The handlers' round trip: take the run out, change it, put it back.
                if var taken = copies.tables[which].removeValue(forKey: runId) {
                    #expect(taken.nextEventId == copies.expected[which][runId])
                    taken.nextEventId = marker
                    copies.tables[which].updateValue(taken, forKey: runId)
                    copies.expected[which][runId] = marker
                } else {
                    #expect(copies.expected[which][runId] == nil)
                }
            case 1:
                // A run taken out and not put back (it closed).
                #expect(copies.tables[which].removeValue(forKey: runId)?.nextEventId == copies.expected[which].removeValue(forKey: runId))
            case 2:
                copies.tables[which].updateValue(run(runId, marker: marker), forKey: runId)
                copies.expected[which][runId] = marker
            case 3:
                let keep = random.chance(60)
                copies.tables[which][runId] = keep ? run(runId, marker: marker) : nil
                copies.expected[which][runId] = keep ? marker : nil
            default:
                #expect(copies.tables[which][runId]?.nextEventId == copies.expected[which][runId])
            }
            #expect(copies.tables[which].count == copies.expected[which].count)
            // Now and then all of it (keys, values, lookups), not only the count.
            if random.chance(3) { expectContents(copies.tables[which], copies.expected[which]) }
        }
        #expect(copies.tables.count > 2, "the seed took captures")
        for (table, expected) in zip(copies.tables, copies.expected) { expectContents(table, expected) }
    }

    private func expectContents(_ table: BoxedTable<RunState>, _ expected: [String: Int64], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(table.count == expected.count, sourceLocation: sourceLocation)
        #expect(table.isEmpty == expected.isEmpty, sourceLocation: sourceLocation)
        #expect(Set(table.keys) == Set(expected.keys), sourceLocation: sourceLocation)
        #expect(Array(table.keys).count == expected.count, sourceLocation: sourceLocation)
        var seen: [String: Int64] = [:]
        for state in table.values { seen[state.key.runId] = state.nextEventId }
        #expect(seen == expected, sourceLocation: sourceLocation)
        for (runId, marker) in expected { #expect(table[runId]?.nextEventId == marker, sourceLocation: sourceLocation) }
    }

    @Test("a run taken out and not put back is absent everywhere, through later takes, puts and copies")
    func takenRunIsAbsent() {
        var table = BoxedTable<RunState>()
        for (index, runId) in ["a", "b", "c"].enumerated() { table.updateValue(run(runId, marker: Int64(index + 1)), forKey: runId) }
        #expect(table.removeValue(forKey: "a")?.nextEventId == 1)
        expectContents(table, ["b": 2, "c": 3])
        #expect(table.removeValue(forKey: "a") == nil, "a run taken out twice is out")
        let captured = table
        #expect(table.removeValue(forKey: "b")?.nextEventId == 2)
        expectContents(table, ["c": 3])
        expectContents(captured, ["b": 2, "c": 3])
        table.updateValue(run("a", marker: 4), forKey: "a")
        table.updateValue(run("b", marker: 5), forKey: "b")
        expectContents(table, ["a": 4, "b": 5, "c": 3])
        expectContents(captured, ["b": 2, "c": 3])
        #expect(table.removeValue(forKey: "c")?.nextEventId == 3)
        table["c"] = nil
        expectContents(table, ["a": 4, "b": 5])
        table.updateValue(run("c", marker: 6), forKey: "c")
        expectContents(table, ["a": 4, "b": 5, "c": 6])
    }

    @Test("a run taken out of a box a copy shares is a copy: changing it leaves the copy's run alone")
    func sharedBoxIsNotWritten() {
        var table = BoxedTable<RunState>()
        table.updateValue(run("a", marker: 1), forKey: "a")
        let captured = table
        guard var taken = table.removeValue(forKey: "a") else {
            Issue.record("the run is in the table")
            return
        }
        taken.nextEventId = 2
        taken.signalRequestIds.append("signal-1")
        table.updateValue(taken, forKey: "a")
        #expect(captured["a"]?.nextEventId == 1)
        #expect(captured["a"]?.signalRequestIds.isEmpty == true)
        #expect(table["a"]?.nextEventId == 2)
        #expect(table["a"]?.signalRequestIds == ["signal-1"])
    }
}
