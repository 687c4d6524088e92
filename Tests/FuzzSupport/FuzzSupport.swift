// Seeded random inputs for the decoder fuzz tests (issue 8 §3), shared by every test target that
// fuzzes a decoder.
import BallastRaft
import Foundation

/// A seeded generator (Raft's SplitMix64), so every fuzz case is reproducible from its seed.
public struct FuzzRandom: RandomNumberGenerator {
    private var source: DeterministicRandom

    public init(seed: UInt64) { source = DeterministicRandom(seed: seed) }

    public mutating func next() -> UInt64 { source.next() }

    /// A value in `0..<bound` (bound > 0).
    public mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(bound, 1))) }

    /// `count` random bytes.
    public mutating func bytes(_ count: Int) -> [UInt8] { (0 ..< count).map { _ in UInt8(truncatingIfNeeded: next()) } }
}

/// How inputs are damaged: the ways a hostile peer or a bad disk changes valid bytes.
public enum FuzzMutation: CaseIterable {
    case flipBits, randomByte, truncate, extend, hugeLength, zeroRun, duplicateSlice, noise

    /// Applies one to three mutations to `input`.
    public static func mutate(_ input: [UInt8], _ random: inout FuzzRandom) -> [UInt8] {
        var bytes = input
        for _ in 0 ... random.below(3) {
            let mutation = allCases[random.below(allCases.count)]
            bytes = mutation.apply(bytes, &random)
        }
        return bytes
    }

    public func apply(_ input: [UInt8], _ random: inout FuzzRandom) -> [UInt8] {
        var bytes = input
        switch self {
        case .flipBits:
            guard !bytes.isEmpty else { return bytes }
            for _ in 0 ... random.below(4) { bytes[random.below(bytes.count)] ^= UInt8(1) << UInt8(random.below(8)) }
        case .randomByte:
            guard !bytes.isEmpty else { return bytes }
            bytes[random.below(bytes.count)] = UInt8(truncatingIfNeeded: random.next())
        case .truncate:
            bytes = Array(bytes.prefix(random.below(bytes.count + 1)))
        case .extend:
            bytes += random.bytes(1 + random.below(64))
        case .hugeLength:
            // A length or count field set to a huge value (either byte order).
            guard bytes.count >= 4 else { return bytes }
            let at = random.below(bytes.count - 3)
            let huge: [[UInt8]] = [[0xFF, 0xFF, 0xFF, 0xFF], [0x7F, 0xFF, 0xFF, 0xFF], [0xFF, 0xFF, 0xFF, 0x7F], [0, 0, 0, 0x80]]
            bytes.replaceSubrange(at ..< at + 4, with: huge[random.below(huge.count)])
        case .zeroRun:
            guard !bytes.isEmpty else { return bytes }
            let at = random.below(bytes.count)
            let end = min(bytes.count, at + 1 + random.below(16))
            for position in at ..< end { bytes[position] = 0 }
        case .duplicateSlice:
            guard !bytes.isEmpty else { return bytes }
            let at = random.below(bytes.count)
            let slice = bytes[at ..< min(bytes.count, at + 1 + random.below(32))]
            bytes.insert(contentsOf: slice, at: random.below(bytes.count + 1))
        case .noise:
            bytes = random.bytes(random.below(512))
        }
        return bytes
    }
}

/// Inputs per fuzz test: `BALLAST_FUZZ_ITERATIONS` (default `standard`), so a soak can run more.
public func fuzzIterations(_ standard: Int) -> Int {
    ProcessInfo.processInfo.environment["BALLAST_FUZZ_ITERATIONS"].flatMap(Int.init) ?? standard
}

/// Runs `body` for `count` seeded inputs derived from `seed`; a failure names the case's seed
/// (reproduce one case with `FuzzRandom(seed:)` of that value). Async so that it can give the
/// test's thread back to the other tests every few milliseconds (`PoolYielder`).
public func forEachFuzzCase(seed: UInt64, count: Int, _ body: (inout FuzzRandom, UInt64) throws -> Void) async rethrows {
    var seeds = FuzzRandom(seed: seed)
    var yielder = PoolYielder()
    for _ in 0 ..< count {
        let caseSeed = seeds.next()
        var random = FuzzRandom(seed: caseSeed)
        try body(&random, caseSeed)
        await yielder.yieldIfDue()
    }
}

/// Swift Testing runs every test on Swift's cooperative thread pool, which has one thread per
/// core: two on a CI machine. A synchronous test that computes for seconds holds one of them,
/// two such tests hold all of it, and meanwhile no async test runs at all: its wait for a
/// condition (a leader elected, a message arrived) is not looked at again until they finish,
/// and on a loaded machine that was past the wait's deadline. A long loop in a test calls
/// `yieldIfDue()` once per step, which gives the thread back to the queued tests every few
/// milliseconds (`Task.yield`).
public struct PoolYielder {
    private let interval: Duration
    private var lastYield = ContinuousClock.now

    /// Yields at most once per `interval` of the loop's time.
    public init(interval: Duration = .milliseconds(5)) { self.interval = interval }

    /// Lets the queued tests run if `interval` has passed since the last time.
    public mutating func yieldIfDue() async {
        guard ContinuousClock.now - lastYield >= interval else { return }
        await Task.yield()
        lastYield = ContinuousClock.now
    }
}
