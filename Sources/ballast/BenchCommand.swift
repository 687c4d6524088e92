import Foundation
import ArgumentParser

/// `ballast bench …`: the benchmarks the issues ask for (run them from a release build).
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run a benchmark (use a release build: swift build -c release).",
        subcommands: [RaftBenchCommand.self, EngineBenchCommand.self, WireBenchCommand.self, ClusterBenchCommand.self,
                      VisibilityBenchCommand.self, HostileBenchCommand.self])
}

/// Options every benchmark takes.
struct BenchOptions: ParsableArguments {
    @Option(help: "Operations kept in flight at once.")
    var concurrency: Int = 1
    @Option(help: "Seconds to measure, after a warm-up (one second; `bench cluster`: --warm-up).")
    var duration: Double = 10
    @Flag(help: "Print one JSON line instead of a table.")
    var json = false

    func validate() throws {
        guard concurrency >= 1, concurrency <= 100_000 else { throw ValidationError("--concurrency must be 1…100000") }
        guard duration > 0, duration <= 3600 else { throw ValidationError("--duration must be in (0, 3600] seconds") }
    }
}

/// The figures one benchmark run produced.
struct BenchResult {
    var bench: String
    var opsPerSecond: Double
    var p50Milliseconds: Double
    var p99Milliseconds: Double
    var concurrency: Int
    var extra: [(String, Double)] = []

    /// The one-line JSON form DESIGN.md fixes, extra fields after the fixed ones.
    var json: String {
        var fields = [
            "\"bench\": \"\(bench)\"", "\"ops_per_s\": \(rounded(opsPerSecond))", "\"p50_ms\": \(rounded(p50Milliseconds))",
            "\"p99_ms\": \(rounded(p99Milliseconds))", "\"concurrency\": \(concurrency)",
        ]
        fields += extra.map { "\"\($0.0)\": \(rounded($0.1))" }
        return "{" + fields.joined(separator: ", ") + "}"
    }

    /// A human-readable table.
    var table: String {
        var lines = [
            "bench        \(bench)", "concurrency  \(concurrency)", "ops/s        \(rounded(opsPerSecond))",
            "p50 ms       \(rounded(p50Milliseconds))", "p99 ms       \(rounded(p99Milliseconds))",
        ]
        lines += extra.map { $0.0.padding(toLength: max(13, $0.0.count + 1), withPad: " ", startingAt: 0) + "\(rounded($0.1))" }
        return lines.joined(separator: "\n")
    }

    private func rounded(_ value: Double) -> String {
        value >= 100 ? String(Int(value.rounded())) : String(Double(Int(value * 1000)) / 1000)
    }

    func print(json: Bool) { Swift.print(json ? self.json : table) }
}

/// Latency samples in nanoseconds and their percentiles.
struct LatencySamples {
    private(set) var nanoseconds: [Int64] = []

    mutating func record(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        nanoseconds.append(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// The `fraction` percentile in milliseconds (0 when empty).
    func percentileMilliseconds(_ fraction: Double) -> Double {
        Self.percentile(fraction, ofSorted: nanoseconds.sorted())
    }

    /// Several percentiles from one sort.
    func percentilesMilliseconds(_ fractions: Double...) -> [Double] {
        let sorted = nanoseconds.sorted()
        return fractions.map { Self.percentile($0, ofSorted: sorted) }
    }

    private static func percentile(_ fraction: Double, ofSorted sorted: [Int64]) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let rank = min(sorted.count - 1, Int((Double(sorted.count) * fraction).rounded(.up)) - 1)
        return Double(sorted[max(0, rank)]) / 1_000_000
    }
}
