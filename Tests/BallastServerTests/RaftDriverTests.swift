import BallastRaft
import BallastServer
import BallastStorage
import Foundation
import Logging
import Synchronization
import Testing

/// Records every applied `.normal` entry; readable from the test thread.
final class RecordingStateMachine: RaftStateMachine, @unchecked Sendable {
    private let log = Mutex<[[UInt8]]>([])
    private let finished = Mutex(0)
    var applied: [[UInt8]] { log.withLock { $0 } }
    /// How many entries had been applied when the driver last called `finishApplying`.
    var appliedAtLastFinish: Int { finished.withLock { $0 } }
    func apply(_ entry: Entry) -> (any Sendable)? {
        if entry.kind == .normal { log.withLock { $0.append(entry.data) } }
        return entry.data.count
    }
    private let proposedLog = Mutex<[(data: [UInt8], message: String?)]>([])
    /// The entries this node applied with the message they were proposed with, in order.
    var appliedWithMessage: [(data: [UInt8], message: String?)] { proposedLog.withLock { $0 } }
    func apply(_ entry: Entry, proposed message: any Sendable) -> (any Sendable)? {
        proposedLog.withLock { $0.append((entry.data, message as? String)) }
        return apply(entry)
    }
    func finishApplying() {
        let count = applied.count
        finished.withLock { $0 = count }
    }
    func captureSnapshot() -> SnapshotSerializer {
        let bytes = log.withLock { entries in entries.flatMap { [UInt8(truncatingIfNeeded: $0.count)] + $0 } }
        return { bytes }
    }
    private let startsWithoutSnapshot = Mutex(0)
    /// How often the driver said the log replays from its first entry (no snapshot).
    var startedWithoutSnapshot: Int { startsWithoutSnapshot.withLock { $0 } }
    func startWithoutSnapshot() { startsWithoutSnapshot.withLock { $0 += 1 } }
    func restore(from snapshot: Snapshot) {
        var entries: [[UInt8]] = []
        var rest = snapshot.data[...]
        while let count = rest.first {
            entries.append(Array(rest.dropFirst().prefix(Int(count))))
            rest = rest.dropFirst(1 + Int(count))
        }
        log.withLock { $0 = entries }
    }
}

/// Three drivers on write-ahead logs in a temporary directory, joined by a `LocalTransport`.
final class DriverCluster: @unchecked Sendable {
    let directory = NSTemporaryDirectory() + "ballast-driver-test-\(UInt64.random(in: 0 ... .max))"
    let transport = LocalTransport()
    let ids = [NodeID(1), NodeID(2), NodeID(3)]
    private let state = Mutex<[NodeID: (driver: RaftDriver, machine: RecordingStateMachine)]>([:])
    private let ticking = Atomic<Bool>(true)

    init() throws {
        for id in ids { try start(id) }
        Thread.detachNewThread { [self] in
            while ticking.load(ordering: .relaxed) {
                usleep(5_000)
                for (driver, _) in state.withLock({ Array($0.values) }) { driver.tick() }
            }
        }
    }

    func start(_ id: NodeID) throws {
        let path = directory + "/\(id.rawValue)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        var configuration = RaftConfiguration(id: id)
        configuration.electionTimeoutTicks = 10
        let machine = RecordingStateMachine()
        let driver = try RaftDriver(
            configuration: configuration, log: try WriteAheadLog(directory: path), bootstrap: Membership(voters: ids),
            stateMachine: machine, transport: transport, randomSeed: id.rawValue, logger: Logger(label: "test.driver.\(id)"))
        state.withLock { $0[id] = (driver, machine) }
        transport.connect(id) { driver.receive($0) }
    }

    /// Stops a node abruptly: it is cut off and its threads end; its log stays on disk.
    func stop(_ id: NodeID) {
        transport.disconnect(id)
        state.withLock { $0.removeValue(forKey: id) }?.driver.stop()
    }

    func machine(_ id: NodeID) -> RecordingStateMachine? { state.withLock { $0[id]?.machine } }

    func leader() async -> (NodeID, RaftDriver)? {
        for (id, entry) in state.withLock({ $0.sorted { $0.key < $1.key } }) {
            let status: RaftStatus = await withCheckedContinuation { continuation in
                entry.driver.inspect { continuation.resume(returning: $0) }
            }
            if status.role == .leader { return (id, entry.driver) }
        }
        return nil
    }

    func waitForLeader() async throws -> (NodeID, RaftDriver) {
        var found: (NodeID, RaftDriver)?
        try await waitUntil("a leader is elected") {
            found = await leader()
            return found != nil
        }
        return try #require(found)
    }

    func shutdown() {
        ticking.store(false, ordering: .relaxed)
        for id in ids { stop(id) }
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// Proposes `data` (with `message`, what it encodes) and waits for its commit-and-apply outcome.
func propose(_ driver: RaftDriver, _ data: [UInt8], message: String? = nil) async -> Result<AppliedEntry, RaftDriverError> {
    await withCheckedContinuation { continuation in driver.propose(data, message: message) { continuation.resume(returning: $0) } }
}

@Suite("Raft driver on real logs", .serialized)
struct RaftDriverTests {
    @Test("three nodes elect a leader and every node applies the same proposals in the same order")
    func replicate() async throws {
        let cluster = try DriverCluster()
        defer { cluster.shutdown() }
        let (_, leader) = try await cluster.waitForLeader()
        let payloads = (0 ..< 200).map { [UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8)] }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for payload in payloads {
                group.addTask {
                    let applied = try await propose(leader, payload).get()
                    #expect(applied.output as? Int == payload.count, "the proposer gets its own entry's output")
                }
            }
            try await group.waitForAll()
        }
        for id in cluster.ids {
            try await waitUntil("\(id) applied everything") { cluster.machine(id)?.applied.count == payloads.count }
            // Each turn's run of applies ends with `finishApplying` (the history store's write).
            try await waitUntil("\(id) finished its last apply turn") { cluster.machine(id)?.appliedAtLastFinish == payloads.count }
        }
        let orders = cluster.ids.compactMap { cluster.machine($0)?.applied }
        #expect(Set(orders.map { $0.map { $0 } }).count == 1, "all nodes must apply one order")
        #expect(Set(orders[0]) == Set(payloads))
    }

    @Test("the proposer applies its own entries with the message they were proposed with; other nodes apply the data alone")
    func proposerGetsItsMessage() async throws {
        let cluster = try DriverCluster()
        defer { cluster.shutdown() }
        let (leaderID, leader) = try await cluster.waitForLeader()
        for value in 0 ..< 20 { _ = try await propose(leader, [UInt8(value)], message: "message \(value)").get() }
        _ = try await propose(leader, [99]).get() // no message: applied as data alone
        for id in cluster.ids {
            try await waitUntil("\(id) applied everything") { cluster.machine(id)?.applied.count == 21 }
        }
        let own = try #require(cluster.machine(leaderID)).appliedWithMessage
        #expect(own.map(\.data) == (0 ..< 20).map { [UInt8($0)] })
        #expect(own.map(\.message) == (0 ..< 20).map { "message \($0)" })
        for id in cluster.ids where id != leaderID {
            #expect(cluster.machine(id)?.appliedWithMessage.isEmpty == true, "node \(id) did not propose these entries")
        }
    }

    @Test("when the leader stops a new one takes over, and the old one restarts from its log and catches up")
    func failoverAndRestart() async throws {
        let cluster = try DriverCluster()
        defer { cluster.shutdown() }
        let (firstLeaderID, firstLeader) = try await cluster.waitForLeader()
        for value in 0 ..< 20 { _ = try await propose(firstLeader, [UInt8(value)]).get() }
        cluster.stop(firstLeaderID)

        let (secondLeaderID, secondLeader) = try await cluster.waitForLeader()
        #expect(secondLeaderID != firstLeaderID)
        for value in 20 ..< 40 { _ = try await propose(secondLeader, [UInt8(value)]).get() }

        try cluster.start(firstLeaderID)
        #expect(cluster.machine(firstLeaderID)?.startedWithoutSnapshot == 1, "its log has no snapshot: it replays from the start")
        try await waitUntil("the restarted node has every entry") { cluster.machine(firstLeaderID)?.applied.count == 40 }
        #expect(cluster.machine(firstLeaderID)?.applied == cluster.machine(secondLeaderID)?.applied)
        #expect(cluster.machine(firstLeaderID)?.applied == (0 ..< 40).map { [UInt8($0)] })
    }

    @Test("a follower refuses proposals and names the leader")
    func followerRefuses() async throws {
        let cluster = try DriverCluster()
        defer { cluster.shutdown() }
        let (leaderID, _) = try await cluster.waitForLeader()
        let followerID = try #require(cluster.ids.first { $0 != leaderID })
        let follower = try #require(await cluster.driver(followerID))
        try await waitUntil("the follower knows the leader") {
            guard case .failure(let error) = await propose(follower, [1]) else { return false }
            return error == .refused(.notLeader(leaderHint: leaderID))
        }
    }
}

extension DriverCluster {
    func driver(_ id: NodeID) async -> RaftDriver? {
        state.withLock { $0[id]?.driver }
    }
}
