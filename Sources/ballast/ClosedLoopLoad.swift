import BallastRaft
import BallastServer
import Foundation
import Synchronization

/// `concurrency` clients, each proposing its next entry as soon as the previous one committed.
final class ClosedLoopLoad: @unchecked Sendable {
    struct Results {
        var completed = 0
        var failed = 0
        var latency = LatencySamples()
    }

    private let driver: RaftDriver
    private let concurrency: Int
    private let payload: [UInt8]
    private let state = Mutex<(measuring: Bool, stopping: Bool, results: Results, inFlight: Int)>((false, false, Results(), 0))

    init(driver: RaftDriver, concurrency: Int, entryBytes: Int) {
        self.driver = driver
        self.concurrency = concurrency
        self.payload = (0 ..< entryBytes).map { UInt8(truncatingIfNeeded: $0 &* 31) }
    }

    /// Runs the load: a warm-up, then `measure` during which completions are counted.
    func run(warmUp: Duration, measure: Duration) async throws {
        state.withLock { $0.inFlight = concurrency }
        for _ in 0 ..< concurrency { proposeNext() }
        try await Task.sleep(for: warmUp)
        state.withLock { $0.measuring = true }
        try await Task.sleep(for: measure)
        state.withLock {
            $0.measuring = false
            $0.stopping = true
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while state.withLock({ $0.inFlight }) > 0 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    func results() -> Results { state.withLock { $0.results } }

    private func proposeNext() {
        let start = ContinuousClock.now
        driver.propose(payload) { [self] result in
            let elapsed = ContinuousClock.now - start
            let keepGoing = state.withLock { state -> Bool in
                if state.measuring {
                    switch result {
                    case .success: state.results.completed += 1; state.results.latency.record(elapsed)
                    case .failure: state.results.failed += 1
                    }
                }
                if state.stopping { state.inFlight -= 1 }
                return !state.stopping
            }
            if keepGoing { proposeNext() }
        }
    }
}

/// Times `fdatasync` after a 4 KiB write, the unit a commit cannot beat, two ways: into a
/// preallocated file (what the write-ahead log does: no file-size change to flush) and appended
/// to a growing file (size metadata flushed too).
enum FsyncProbe {
    struct Figures {
        var preallocatedP50: Double
        var preallocatedP99: Double
        var appendP50: Double
    }

    static func measure(directory: String, samples: Int = 200) throws -> Figures {
        let preallocated = try time(directory: directory, samples: samples, preallocate: true)
        let appended = try time(directory: directory, samples: samples, preallocate: false)
        return Figures(preallocatedP50: preallocated.percentileMilliseconds(0.5),
                       preallocatedP99: preallocated.percentileMilliseconds(0.99),
                       appendP50: appended.percentileMilliseconds(0.5))
    }

    private static func time(directory: String, samples: Int, preallocate: Bool) throws -> LatencySamples {
        let path = directory + "/ballast-fsync-probe-\(getpid())"
        let fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0o600)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        defer { close(fd); unlink(path) }
        let block = [UInt8](repeating: 0xAB, count: 4096)
        if preallocate {
            guard posix_fallocate(fd, 0, off_t(block.count * samples)) == 0, fsync(fd) == 0 else {
                throw POSIXError(.EIO)
            }
        }
        var latency = LatencySamples()
        for sample in 0 ..< samples {
            let start = ContinuousClock.now
            _ = block.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(sample * block.count)) }
            fdatasync(fd)
            latency.record(ContinuousClock.now - start)
        }
        return latency
    }
}
