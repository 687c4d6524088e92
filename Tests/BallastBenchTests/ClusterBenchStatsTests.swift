import Foundation
import Testing
@testable import ballast

@Suite("cluster benchmark statistics")
struct ClusterBenchStatsTests {
    /// Exact percentile of sorted samples, with the histogram's rank rule (ceil(q·n)).
    private func exact(_ sorted: [Int64], _ fraction: Double) -> Int64 {
        sorted[max(0, min(sorted.count - 1, Int((Double(sorted.count) * fraction).rounded(.up)) - 1))]
    }

    @Test("percentiles over a wide spread of latencies are within 1/128 of the exact ones, and the top one is the exact maximum")
    func percentilesAreAccurate() {
        var random = SplitMix64(seed: 42)
        var histogram = LatencyHistogram()
        var samples: [Int64] = []
        for _ in 0 ..< 50_000 {
            // Log-uniform from 1 µs to about 1 s, like real latencies with a long tail.
            let value = Int64(1_000 * pow(2.0, Double(random.next() % 20_000) / 1_000))
            samples.append(value)
            histogram.record(nanoseconds: value)
        }
        samples.sort()
        #expect(histogram.count == 50_000)
        for fraction in [0.01, 0.25, 0.5, 0.9, 0.99, 0.999] {
            let got = Double(histogram.percentileNanoseconds(fraction))
            let want = Double(exact(samples, fraction))
            #expect(abs(got - want) <= want / 128 + 1, "p\(fraction): histogram \(got) vs exact \(want)")
        }
        #expect(histogram.percentileNanoseconds(1) == samples.last)
        #expect(histogram.maxNanoseconds == samples.last)
    }

    @Test("small values are exact, every bucket's representative falls in that bucket, and indexes grow with values")
    func bucketsAreConsistent() {
        for value in Int64(0) ..< 64 { #expect(LatencyHistogram.representativeValue(of: LatencyHistogram.bucketIndex(value)) == value) }
        var previous = -1
        var value: Int64 = 1
        while value < LatencyHistogram.largestTrackable {
            let index = LatencyHistogram.bucketIndex(value)
            #expect(index >= previous)
            #expect(index < LatencyHistogram.bucketCount)
            #expect(LatencyHistogram.bucketIndex(LatencyHistogram.representativeValue(of: index)) == index)
            previous = index
            value = value * 17 / 16 + 1
        }
    }

    @Test("merging two histograms equals recording every sample into one; empty and out-of-range inputs are handled")
    func mergeAndEdges() {
        var first = LatencyHistogram(), second = LatencyHistogram(), both = LatencyHistogram()
        for value in stride(from: Int64(1), to: 10_000_000, by: 9_973) {
            if value % 2 == 0 { first.record(nanoseconds: value) } else { second.record(nanoseconds: value) }
            both.record(nanoseconds: value)
        }
        first.merge(second)
        #expect(first == both)
        #expect(LatencyHistogram().percentileNanoseconds(0.99) == 0)
        var odd = LatencyHistogram()
        odd.record(nanoseconds: -5)
        odd.record(nanoseconds: Int64.max)
        #expect(odd.count == 2)
        #expect(odd.percentileNanoseconds(0.5) == 0)
        #expect(odd.maxNanoseconds == Int64.max)
    }

    @Test("CPU time is read from a /proc stat line even when the command name holds spaces and parentheses")
    func procStatParsing() {
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let line = "4242 (ballast (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 0 0"
        #expect(ProcessCPU.seconds(statLine: line) == 300 / ticks)
        #expect(ProcessCPU.seconds(statLine: "garbage") == nil)
        #expect(ProcessCPU.seconds(statLine: "1 (x) S 1 2") == nil)
        #expect((ProcessCPU.seconds(pid: getpid()) ?? -1) >= 0)
        #expect(ProcessCPU.seconds(pid: -1) == nil)
    }

    @Test("failover summaries: the median of an odd count is the middle value, of an even count the mean of the two middle ones")
    func durationSummary() {
        #expect(DurationSummary(milliseconds: []) == nil)
        let odd = DurationSummary(milliseconds: [900, 300, 600])
        #expect(odd?.median == 600 && odd?.maximum == 900 && odd?.minimum == 300 && odd?.count == 3)
        #expect(DurationSummary(milliseconds: [400, 100, 300, 200])?.median == 250)
    }

    @Test("the signal-target ring keeps only the latest ids and picks among them")
    func startedRing() {
        var ring = StartedRing(capacity: 3)
        var random = SplitMix64(seed: 1)
        #expect(ring.pick(&random) == nil)
        for id in ["a", "b", "c", "d", "e"] { ring.add(id) }
        var picked: Set<String> = []
        for _ in 0 ..< 100 { picked.insert(ring.pick(&random) ?? "") }
        #expect(picked == ["c", "d", "e"])
    }
}
