import BallastFuzzSupport
import Testing
@testable import BallastStorage

/// `HistoryRunTable` against a plain dictionary: random inserts, in-place appends, removals and
/// copies (a frozen view), checked after every step.
@Suite("History run table")
struct HistoryRunTableTests {
    @Test("random operations and copies agree with a dictionary, and a copy never sees later changes")
    func agreesWithADictionary() {
        for seed in UInt64(1) ... 8 {
            var random = FuzzRandom(seed: seed)
            var table = HistoryRunTable()
            var model: [String: RunHistoryIndex] = [:]
            var frozen: (table: HistoryRunTable, model: [String: RunHistoryIndex])?
            for step in 0 ..< 4_000 {
                let runId = "run-\(random.below(600))"
                switch random.below(6) {
                case 0, 1:
                    let ref = HistoryRecordRef(segment: UInt64(random.below(4) + 1), offset: step * 16, size: 16,
                                               firstEventId: (model[runId]?.eventCount ?? 0) + 1, eventCount: 1)
                    let hash = UInt64(random.below(1 << 30))
                    table[HashedRunId(runId), default: RunHistoryIndex()].appended(records: [ref], contentHash: hash, lastEventId: ref.firstEventId)
                    model[runId, default: RunHistoryIndex()].appended(records: [ref], contentHash: hash, lastEventId: ref.firstEventId)
                case 2:
                    #expect(table.removeValue(forKey: runId)?.eventCount == model.removeValue(forKey: runId)?.eventCount)
                case 3:
                    if model[runId] != nil {
                        table[runId]?.contentHash &+= 1
                        model[runId]?.contentHash &+= 1
                    }
                case 4:
                    let index = RunHistoryIndex(records: [], eventCount: Int64(step), contentHash: UInt64(step))
                    table[runId] = index
                    model[runId] = index
                default:
                    if random.below(10) == 0 { frozen = (table, model) }
                }
                #expect(table.count == model.count, "seed \(seed) step \(step)")
                #expect(table[runId]?.eventCount == model[runId]?.eventCount)
                #expect(table[runId]?.contentHash == model[runId]?.contentHash)
                #expect(table[runId]?.records.count == model[runId]?.records.count)
            }
            #expect(Set(table.map(\.key)) == Set(model.keys))
            #expect(table.allSatisfy { model[$0.key]?.contentHash == $0.value.contentHash })
            if let frozen {
                #expect(frozen.table.count == frozen.model.count)
                #expect(frozen.table.allSatisfy { frozen.model[$0.key]?.eventCount == $0.value.eventCount
                    && frozen.model[$0.key]?.contentHash == $0.value.contentHash })
            }
        }
    }
}
