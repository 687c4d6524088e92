import BallastRaft
import BallastServer
import BallastStorage
import Foundation
import Logging
import Synchronization
import Testing

/// The driver's part of a full disk (docs/reliability.md, "Disk faults"): a leader whose disk is
/// full refuses proposals with `diskFull` and hands leadership to a peer; followers redirect.
@Suite("Raft driver on a full disk", .serialized)
struct DiskFullDriverTests {
    @Test("a leader whose disk fills refuses proposals with diskFull and hands over; the new leader commits; the full node, as follower, redirects")
    func leaderOnFullDiskHandsOver() async throws {
        let directory = NSTemporaryDirectory() + "ballast-diskfull-driver-\(UInt64.random(in: 0 ... .max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ids = [NodeID(1), NodeID(2), NodeID(3)]
        let full = Mutex<Set<NodeID>>([])
        let transport = LocalTransport()
        var drivers: [NodeID: RaftDriver] = [:]
        for id in ids {
            let path = directory + "/\(id.rawValue)"
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            var configuration = RaftConfiguration(id: id)
            configuration.electionTimeoutTicks = 10
            let driver = try RaftDriver(
                configuration: configuration, log: try WriteAheadLog(directory: path), bootstrap: Membership(voters: ids),
                stateMachine: RecordingStateMachine(), transport: transport, randomSeed: id.rawValue,
                logger: Logger(label: "test.diskfull.\(id)"),
                diskFullReason: { full.withLock { $0.contains(id) } ? "test: no space on node \(id)" : nil })
            drivers[id] = driver
            transport.connect(id) { driver.receive($0) }
        }
        let ticking = Atomic<Bool>(true)
        let all = Array(drivers.values)
        Thread.detachNewThread {
            while ticking.load(ordering: .relaxed) {
                usleep(5_000)
                for driver in all { driver.tick() }
            }
        }
        defer {
            ticking.store(false, ordering: .relaxed)
            for driver in drivers.values { driver.stop() }
        }
        func leader() async -> NodeID? {
            for (id, driver) in drivers {
                let role = await withCheckedContinuation { continuation in driver.inspect { continuation.resume(returning: $0.role) } }
                if role == .leader { return id }
            }
            return nil
        }
        var first: NodeID?
        try await waitUntil("a leader") { first = await leader(); return first != nil }
        let old = try #require(first)
        _ = try await propose(drivers[old]!, [1]).get()

        full.withLock { _ = $0.insert(old) }
        let refused = await propose(drivers[old]!, [2])
        guard case .failure(.diskFull(let why)) = refused else {
            Issue.record("expected diskFull, got \(refused)")
            return
        }
        #expect(why.contains("no space on node \(old)"))
        var successor: NodeID?
        try await waitUntil("another node to lead") {
            successor = await leader()
            return successor != nil && successor != old
        }
        let next = try #require(successor)
        #expect(try await propose(drivers[next]!, [3]).get().index > .zero)
        // The full node now follows: it redirects rather than blaming its disk.
        let redirected = await propose(drivers[old]!, [4])
        guard case .failure(.refused(.notLeader)) = redirected else {
            Issue.record("expected notLeader from the follower, got \(redirected)")
            return
        }
        full.withLock { $0.removeAll() }
    }
}
