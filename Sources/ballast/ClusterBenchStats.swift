import Foundation

/// A log-linear latency histogram in the spirit of HdrHistogram: exact below 64 ns, then 64
/// linear buckets per power of two, so every recorded value is reported within 1/128 of itself.
/// Fixed size (`bucketCount` counters, about 20 KiB): recording never allocates; values above
/// `largestTrackable` are counted in the last bucket (and `maxNanoseconds` still holds them exactly).
struct LatencyHistogram: Sendable, Equatable {
    static let subBucketBits = 6
    static let subBucketCount = 1 << subBucketBits
    /// Powers of two tracked above the exact range: up to 2^42 ns, about 73 minutes.
    static let magnitudes = 42 - subBucketBits + 1
    static let bucketCount = subBucketCount + magnitudes * subBucketCount
    static let largestTrackable: Int64 = (1 << 42) - 1

    private(set) var counts = [UInt64](repeating: 0, count: bucketCount)
    private(set) var count: UInt64 = 0
    private(set) var maxNanoseconds: Int64 = 0
    private(set) var sumNanoseconds: Double = 0

    /// Records one latency; negative durations count as 0.
    mutating func record(nanoseconds raw: Int64) {
        let value = max(0, raw)
        counts[Self.bucketIndex(min(value, Self.largestTrackable))] += 1
        count += 1
        maxNanoseconds = max(maxNanoseconds, value)
        sumNanoseconds += Double(value)
    }

    mutating func record(_ duration: Duration) { record(nanoseconds: duration.nanoseconds) }

    /// Adds every sample of `other`.
    mutating func merge(_ other: LatencyHistogram) {
        for index in counts.indices { counts[index] += other.counts[index] }
        count += other.count
        maxNanoseconds = max(maxNanoseconds, other.maxNanoseconds)
        sumNanoseconds += other.sumNanoseconds
    }

    /// The value below which `fraction` of the samples fall, in nanoseconds (0 when empty);
    /// the top percentile is the exact maximum.
    func percentileNanoseconds(_ fraction: Double) -> Int64 {
        precondition((0 ... 1).contains(fraction), "a percentile is a fraction in 0…1")
        guard count > 0 else { return 0 }
        let rank = max(1, UInt64((Double(count) * fraction).rounded(.up)))
        if rank >= count { return maxNanoseconds }
        var seen: UInt64 = 0
        for (index, bucket) in counts.enumerated() where bucket > 0 {
            seen += bucket
            if seen >= rank { return min(Self.representativeValue(of: index), maxNanoseconds) }
        }
        return maxNanoseconds
    }

    func percentileMilliseconds(_ fraction: Double) -> Double { Double(percentileNanoseconds(fraction)) / 1e6 }

    var meanMilliseconds: Double { count == 0 ? 0 : sumNanoseconds / Double(count) / 1e6 }

    /// The bucket a non-negative value falls in.
    static func bucketIndex(_ value: Int64) -> Int {
        precondition(value >= 0 && value <= largestTrackable, "value outside the histogram's range")
        if value < Int64(subBucketCount) { return Int(value) }
        let exponent = 63 - value.leadingZeroBitCount
        let mantissa = Int((value >> (exponent - subBucketBits)) & Int64(subBucketCount - 1))
        return subBucketCount + (exponent - subBucketBits) * subBucketCount + mantissa
    }

    /// The middle of bucket `index`'s range (its only value in the exact range).
    static func representativeValue(of index: Int) -> Int64 {
        if index < subBucketCount { return Int64(index) }
        let magnitude = (index - subBucketCount) / subBucketCount
        let mantissa = Int64((index - subBucketCount) % subBucketCount)
        let shift = magnitude
        let lower = (Int64(1) << (magnitude + subBucketBits)) + (mantissa << shift)
        return lower + ((Int64(1) << shift) >> 1)
    }
}

extension Duration {
    /// The duration in whole nanoseconds.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    /// The duration in milliseconds.
    var milliseconds: Double { Double(nanoseconds) / 1e6 }
}

/// CPU time read from `/proc`: per process (user + system, all threads) and for the machine.
enum ProcessCPU {
    /// CPU seconds used so far by process `pid`, nil if it is gone or unreadable.
    static func seconds(pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return nil }
        return seconds(statLine: text)
    }

    /// Parses a `/proc/PID/stat` line: utime and stime are fields 14 and 15, counted after the
    /// command name in parentheses (which may itself contain spaces and parentheses).
    static func seconds(statLine: String) -> Double? {
        guard let close = statLine.lastIndex(of: ")") else { return nil }
        let fields = statLine[statLine.index(after: close)...].split(separator: " ")
        // fields[0] is the state (field 3), so utime (field 14) is fields[11].
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Busy and total jiffies of all CPUs from `/proc/stat` (busy excludes idle and iowait).
    static func machineTicks() -> (busy: Double, total: Double)? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = text.split(separator: "\n").first, line.hasPrefix("cpu ") else { return nil }
        let values = line.split(separator: " ").dropFirst().prefix(8).compactMap { Double($0) }
        guard values.count == 8 else { return nil }
        let total = values.reduce(0, +)
        return (total - values[3] - values[4], total)
    }

    /// The 1-, 5- and 15-minute load averages, as `/proc/loadavg` shows them.
    static func loadAverage() -> [Double] {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return [] }
        return text.split(separator: " ").prefix(3).compactMap { Double($0) }
    }
}

/// CPU used by named processes and by the whole machine between `init` and `finish()`.
struct CPUMeter {
    private let pids: [(String, Int32)]
    private let start: [String: Double]
    private let machineStart: (busy: Double, total: Double)?

    init(pids: [(String, Int32)]) {
        self.pids = pids
        start = Dictionary(pids.compactMap { name, pid in ProcessCPU.seconds(pid: pid).map { (name, $0) } }) { first, _ in first }
        machineStart = ProcessCPU.machineTicks()
    }

    /// CPU seconds each process used (absent if it died meanwhile) and the machine's busy cores.
    func finish() -> (perProcess: [(String, Double)], machineBusyCores: Double?) {
        let used: [(String, Double)] = pids.compactMap { name, pid in
            guard let before = start[name], let after = ProcessCPU.seconds(pid: pid) else { return nil }
            return (name, after - before)
        }
        var busyCores: Double?
        if let machineStart, let now = ProcessCPU.machineTicks(), now.total > machineStart.total {
            busyCores = (now.busy - machineStart.busy) / (now.total - machineStart.total) * Double(ProcessInfo.processInfo.activeProcessorCount)
        }
        return (used, busyCores)
    }
}

/// Median and maximum of a list of durations (the failover figures).
struct DurationSummary: Equatable {
    var count: Int
    var minimum: Double
    var median: Double
    var maximum: Double

    /// Summarizes milliseconds; nil when empty. The median of an even count is the mean of the middle two.
    init?(milliseconds values: [Double]) {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        count = sorted.count
        minimum = sorted[0]
        maximum = sorted[sorted.count - 1]
        let middle = sorted.count / 2
        median = sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
}
