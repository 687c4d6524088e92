import ArgumentParser
import BallastRaft
import BallastServer
import BallastStorage
import Foundation
import Logging
import Synchronization

/// `ballast bench raft`: an in-process 3-node Raft on real write-ahead logs (fsync on) joined by
/// an in-memory transport; measures committed 256-byte entries per second and commit latency.
struct RaftBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "raft",
        abstract: "Committed entries/s and commit latency of an in-process 3-node Raft with fsync on.")

    @OptionGroup var options: BenchOptions
    @Option(help: "Payload bytes per entry.")
    var entryBytes: Int = 256
    @Option(help: "Directory for the three logs (default: a new temporary directory, removed afterwards).")
    var dataDir: String?

    func run() async throws {
        let fsync = try FsyncProbe.measure(directory: NSTemporaryDirectory())
        let cluster = try InProcessCluster(size: 3, dataDirectory: dataDir)
        defer { cluster.shutdown() }
        let leader = try await cluster.waitForLeader(timeout: .seconds(10))
        let load = ClosedLoopLoad(driver: leader, concurrency: options.concurrency, entryBytes: entryBytes)
        try await load.run(warmUp: .seconds(1), measure: .seconds(options.duration))
        let stats = load.results()
        let percentiles = stats.latency.percentilesMilliseconds(0.50, 0.99)
        BenchResult(
            bench: "raft", opsPerSecond: Double(stats.completed) / options.duration,
            p50Milliseconds: percentiles[0], p99Milliseconds: percentiles[1], concurrency: options.concurrency,
            extra: [("entry_bytes", Double(entryBytes)), ("fsync_p50_ms", fsync.preallocatedP50), ("fsync_p99_ms", fsync.preallocatedP99),
                    ("fsync_append_p50_ms", fsync.appendP50),
                    ("failed", Double(stats.failed))]
        ).print(json: options.json)
    }
}

/// Three `RaftDriver`s on write-ahead logs in a temporary directory, ticking every 10 ms.
final class InProcessCluster: @unchecked Sendable {
    let transport = LocalTransport()
    private(set) var drivers: [RaftDriver] = []
    private let directory: String
    private let removeDirectory: Bool
    private let ticking = Atomic<Bool>(true)

    init(size: Int, dataDirectory: String?) throws {
        if let dataDirectory {
            directory = dataDirectory
            removeDirectory = false
        } else {
            directory = NSTemporaryDirectory() + "ballast-bench-\(UInt64.random(in: 0 ... .max))"
            removeDirectory = true
        }
        let ids = (1 ... UInt64(size)).map { NodeID($0) }
        for id in ids {
            let path = directory + "/node-\(id.rawValue)"
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            var configuration = RaftConfiguration(id: id)
            configuration.electionTimeoutTicks = 20
            let driver = try RaftDriver(
                configuration: configuration, log: try WriteAheadLog(directory: path),
                bootstrap: Membership(voters: ids), stateMachine: CountingStateMachine(), transport: transport,
                randomSeed: id.rawValue, logger: Logger(label: "bench.raft.\(id)"))
            transport.connect(id) { driver.receive($0) }
            drivers.append(driver)
        }
        Thread.detachNewThread { [self] in
            while ticking.load(ordering: .relaxed) {
                usleep(10_000)
                for driver in drivers { driver.tick() }
            }
        }
    }

    /// Polls every driver until one is leader, or throws after `timeout`.
    func waitForLeader(timeout: Duration) async throws -> RaftDriver {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            for driver in drivers where await driver.currentStatus().role == .leader { return driver }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ValidationError("no leader elected within \(timeout)")
    }

    func shutdown() {
        ticking.store(false, ordering: .relaxed)
        for driver in drivers { driver.stop() }
        if removeDirectory { try? FileManager.default.removeItem(atPath: directory) }
    }
}

extension RaftDriver {
    /// The core's status, read on its loop thread.
    func currentStatus() async -> RaftStatus {
        await withCheckedContinuation { continuation in inspect { continuation.resume(returning: $0) } }
    }
}

/// A state machine that only counts what it applies: the benchmark measures Raft, not an application.
final class CountingStateMachine: RaftStateMachine {
    private var appliedEntries: UInt64 = 0
    func apply(_ entry: Entry) -> (any Sendable)? {
        appliedEntries += 1
        return nil
    }
    func captureSnapshot() -> SnapshotSerializer {
        let bytes = withUnsafeBytes(of: appliedEntries.bigEndian) { Array($0) }
        return { bytes }
    }
    func restore(from snapshot: Snapshot) {
        appliedEntries = snapshot.data.reduce(0) { $0 << 8 | UInt64($1) }
    }
}
