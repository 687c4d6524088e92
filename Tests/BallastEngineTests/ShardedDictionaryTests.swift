@testable import BallastEngine
import Testing

@Suite("Sharded dictionary against a dictionary")
struct ShardedDictionaryTests {
    @Test("every way of changing it keeps the same entries and count as a Dictionary", arguments: [UInt64(1), 2])
    func againstDictionary(seed: UInt64) {
        var random = SeededRandom(seed: seed)
        var sharded = ShardedDictionary<String, Int>()
        var reference: [String: Int] = [:]
        for step in 0..<20_000 {
            let key = "run-\(random.below(3_000))"
            switch random.below(6) {
            case 0:
                let value: Int? = random.chance(80) ? step : nil
                sharded[key] = value
                reference[key] = value
            case 1:
                sharded[key]? += 1
                reference[key]? += 1
            case 2:
                #expect(sharded.updateValue(step, forKey: key) == reference.updateValue(step, forKey: key))
            case 3:
                #expect(sharded.removeValue(forKey: key) == reference.removeValue(forKey: key))
            case 4:
                let keep = random.chance(50)
                sharded.withValue(forKey: key) { value in value = keep ? (value ?? 0) + 1 : nil }
                reference[key] = keep ? (reference[key] ?? 0) + 1 : nil
            default:
                #expect(sharded[key] == reference[key])
            }
            #expect(sharded.count == reference.count)
            #expect(sharded.isEmpty == reference.isEmpty)
        }
        #expect(Set(sharded.keys) == Set(reference.keys))
        #expect(sharded.values.sorted() == reference.values.sorted())
    }
}
