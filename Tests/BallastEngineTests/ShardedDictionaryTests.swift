@testable import BallastEngine
import Foundation
import Testing

@Suite("Sharded dictionary against a dictionary")
struct ShardedDictionaryTests {
    @Test("every way of changing it keeps the same entries and count as a Dictionary", arguments: [UInt64(1), 2])
    func againstDictionary(seed: UInt64) {
        var sharded = ShardedDictionary<String, Int>()
        exercise(&sharded, seed: seed) { "run-\($0)" }
    }

    @Test("keys that are canonically equivalent strings are one entry, as in a Dictionary", arguments: [UInt64(3), 4])
    func canonicalEquivalenceAgainstDictionary(seed: UInt64) {
        var sharded = ShardedDictionary<String, Int>()
        // Run ids as the engine makes them, plus empty, short, non-ASCII and equivalent spellings.
        exercise(&sharded, seed: seed) { number in
            switch number % 6 {
            case 0: return ""
            case 1: return "caf\u{E9}-\(number % 50)" // é precomposed
            case 2: return "cafe\u{301}-\(number % 50)" // e + combining acute: the same string
            case 3: return "\u{212A}ey-\(number % 50)" // KELVIN SIGN: equal to "Key-…"
            case 4: return "Key-\(number % 50)"
            default: return "0000000000000\(number % 1_000 + 100)-0000-0000-\(number % 7)bcd-ef0123456789"
            }
        }
    }

    private func exercise(_ sharded: inout ShardedDictionary<String, Int>, seed: UInt64, key makeKey: (Int) -> String) {
        var random = SeededRandom(seed: seed)
        var reference: [String: Int] = [:]
        for step in 0..<20_000 {
            let key = makeKey(Int(random.below(3_000)))
            switch random.below(8) {
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
            case 5:
                // Through the in-place accessor (`_modify`), which may add or remove the entry.
                let value: Int? = random.chance(50) ? step : nil
                replace(&sharded[key], with: value)
                reference[key] = value
            case 6:
                // An in-place access that changes the entry and then throws still counts it.
                let value: Int? = random.chance(50) ? step : nil
                #expect(throws: Abandoned.self) { try replaceThenThrow(&sharded[key], with: value) }
                reference[key] = value
            default:
                #expect(sharded[key] == reference[key])
            }
            #expect(sharded.count == reference.count)
            #expect(sharded.isEmpty == reference.isEmpty)
        }
        #expect(Set(sharded.keys) == Set(reference.keys))
        #expect(sharded.values.sorted() == reference.values.sorted())
    }

    private struct Abandoned: Error {}

    private func replace(_ slot: inout Int?, with value: Int?) { slot = value }

    private func replaceThenThrow(_ slot: inout Int?, with value: Int?) throws {
        slot = value
        throw Abandoned()
    }
}
