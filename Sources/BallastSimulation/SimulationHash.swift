import BallastRaft

/// A small platform-independent hash (SplitMix64 finalizer) for comparing logs, states and runs.
/// Swift's `Hasher` is seeded per process, so it cannot fingerprint a run across processes.
public enum SimulationHash {
    /// The value every fold starts from.
    public static let initial: UInt64 = 0x243F_6A88_85A3_08D3

    /// Folds `value` into `hash`.
    @inline(__always)
    public static func mix(_ hash: UInt64, _ value: UInt64) -> UInt64 {
        var z = (hash ^ value) &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The fingerprint of one log entry: term, index, kind and payload.
    public static func entry(_ entry: Entry) -> UInt64 {
        var hash = mix(initial, entry.term.rawValue)
        hash = mix(hash, entry.index.rawValue)
        hash = mix(hash, UInt64(entry.kind.rawValue))
        hash = mix(hash, UInt64(entry.data.count))
        for byte in entry.data { hash = mix(hash, UInt64(byte)) }
        return hash
    }

    /// The fingerprint of a log prefix, given the prefix before `entryHash` (chained like a hash chain).
    public static func chain(_ previousPrefix: UInt64, _ entryHash: UInt64) -> UInt64 {
        mix(previousPrefix, entryHash)
    }
}

/// Seeded random choices used throughout the simulation (all from one `DeterministicRandom`).
extension DeterministicRandom {
    /// A uniform integer in `range`.
    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }
    /// A uniform time in `range` (microseconds).
    mutating func micros(_ range: ClosedRange<UInt64>) -> UInt64 { UInt64.random(in: range, using: &self) }
    /// True with probability `probability` (0...1).
    mutating func chance(_ probability: Double) -> Bool {
        probability > 0 && Double.random(in: 0..<1, using: &self) < probability
    }
    /// A uniform element of a non-empty array.
    mutating func pick<T>(_ items: [T]) -> T {
        precondition(!items.isEmpty, "pick from an empty array")
        return items[Int.random(in: 0..<items.count, using: &self)]
    }
}
