import BallastRaft
import BallastServer
import BallastStorage
import Foundation
import Logging
import Synchronization
import Testing

/// Counts applied entries; its snapshots are the count, and each one's serialization waits
/// until the test opens the gate, as a large engine's would take long.
final class GatedStateMachine: RaftStateMachine, @unchecked Sendable {
    private struct State {
        var applied: [UInt8] = []
        var captures: [Int] = []
        var restoredFrom: (index: LogIndex, count: Int)?
    }
    private let state = Mutex(State())
    private let gate = DispatchSemaphore(value: 0)

    var appliedCount: Int { state.withLock { $0.applied.count } }
    /// The applied counts at which snapshots were captured, in order.
    var captures: [Int] { state.withLock { $0.captures } }
    var restoredFrom: (index: LogIndex, count: Int)? { state.withLock { $0.restoredFrom } }
    /// Lets one serialization (in progress or the next) finish.
    func release() { gate.signal() }
    /// Lets every serialization (in progress or later) finish.
    func open() { for _ in 0 ..< 64 { gate.signal() } }

    func apply(_ entry: Entry) -> (any Sendable)? {
        if entry.kind == .normal { state.withLock { $0.applied.append(entry.data.first ?? 0) } }
        return nil
    }

    func captureSnapshot() -> SnapshotSerializer {
        let count = state.withLock { state in
            state.captures.append(state.applied.count)
            return state.applied.count
        }
        return { [gate] in
            gate.wait()
            return withUnsafeBytes(of: UInt64(count).bigEndian) { Array($0) }
        }
    }

    func restore(from snapshot: Snapshot) {
        let count = snapshot.data.reduce(0) { $0 << 8 | Int($1) }
        state.withLock { $0.restoredFrom = (snapshot.metadata.index, count); $0.applied = Array(repeating: 0, count: count) }
    }
}

/// Ticks a driver every 5 ms from a thread of its own (not a task: a busy test pool would
/// starve it) until stopped.
final class Ticker: Sendable {
    private let running = Atomic<Bool>(true)

    init(_ driver: RaftDriver) {
        Thread.detachNewThread { [self] in
            while running.load(ordering: .relaxed) {
                usleep(5_000)
                driver.tick()
            }
        }
    }

    func stop() { running.store(false, ordering: .relaxed) }
}

@Suite("Raft driver snapshots", .serialized)
struct RaftDriverSnapshotTests {
    /// One voter on a real log, snapshotting after every 2 KiB applied and keeping no slack.
    private func startDriver(in directory: String, machine: GatedStateMachine) throws -> RaftDriver {
        var configuration = RaftConfiguration(id: NodeID(1))
        configuration.electionTimeoutTicks = 4
        configuration.snapshotThresholdBytes = 2_048
        configuration.compactionSlackEntries = 0
        return try RaftDriver(
            configuration: configuration, log: try WriteAheadLog(directory: directory), bootstrap: Membership(voters: [NodeID(1)]),
            stateMachine: machine, transport: LocalTransport(), randomSeed: 1, logger: Logger(label: "test.snapshot"))
    }

    private func status(_ driver: RaftDriver) async -> RaftStatus {
        await withCheckedContinuation { continuation in driver.inspect { continuation.resume(returning: $0) } }
    }

    @Test("the loop goes on applying while a snapshot is serialized, then saves it and restarts from it")
    func serializesOffTheLoop() async throws {
        let directory = NSTemporaryDirectory() + "ballast-driver-snapshot-\(UInt64.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let machine = GatedStateMachine()
        let driver = try startDriver(in: directory, machine: machine)
        // Opened on every way out, so a loop stuck in a serialization can still stop.
        defer { machine.open(); driver.stop() }
        let ticker = Ticker(driver)
        defer { ticker.stop() }
        try await waitUntil("the single voter leads") { await status(driver).role == .leader }

        let payload = [UInt8](repeating: 7, count: 256)
        var proposed = 0
        func proposeMore(_ count: Int) {
            for _ in 0 ..< count { driver.propose(payload) { _ in } }
            proposed += count
        }
        proposeMore(16)
        try await waitUntil("a snapshot is captured") { !machine.captures.isEmpty }
        let capturedAt = try #require(machine.captures.first)

        // Its serialization is blocked: everything proposed now must still be applied.
        proposeMore(64)
        try await waitUntil("entries proposed during the serialization are applied") { machine.appliedCount == proposed }
        var now = await status(driver)
        #expect(now.snapshotIndex == .zero, "nothing is saved before the bytes exist")
        #expect(machine.captures.count == 1, "one snapshot at a time, though far more than the threshold was applied")

        machine.release()
        try await waitUntil("the serialized snapshot is saved") { await status(driver).snapshotIndex > .zero }
        now = await status(driver)
        let snapshotIndex = now.snapshotIndex
        #expect(snapshotIndex < now.applied, "the snapshot is of the moment of capture, not of its completion")
        // More than the threshold was applied since the capture: the core asks again at once.
        try await waitUntil("a second snapshot is captured") { machine.captures.count == 2 }
        #expect(machine.captures[1] == proposed, "captured once the first was saved, of everything applied then")
        machine.open()
        proposeMore(16)
        try await waitUntil("all applied") { machine.appliedCount == proposed }
        let lastApplied = await status(driver).applied
        driver.stop()

        let restarted = GatedStateMachine()
        restarted.open()
        let again = try startDriver(in: directory, machine: restarted)
        defer { again.stop() }
        let tickerAgain = Ticker(again)
        defer { tickerAgain.stop() }
        let restored = try #require(restarted.restoredFrom, "the restarted node starts from a saved snapshot")
        #expect(restored.index >= snapshotIndex)
        if restored.index == snapshotIndex { #expect(restored.count == capturedAt, "the first snapshot holds the state captured") }
        try await waitUntil("the restarted node replays the rest of its log") { await status(again).applied >= lastApplied }
        #expect(restarted.appliedCount == proposed)
    }
}

/// Counts applied entries, each taking `perEntry` (a state machine catching up on a slow disk).
final class SlowStateMachine: RaftStateMachine, @unchecked Sendable {
    private let count = Atomic<Int>(0)
    private let perEntry: UInt32

    init(microsecondsPerEntry: UInt32) { perEntry = microsecondsPerEntry }

    var appliedCount: Int { count.load(ordering: .relaxed) }

    func apply(_ entry: Entry) -> (any Sendable)? {
        guard entry.kind == .normal else { return nil }
        if perEntry > 0 { usleep(perEntry) } // the work an apply does, not a wait for an event
        count.add(1, ordering: .relaxed)
        return nil
    }

    func captureSnapshot() -> SnapshotSerializer { { nil } }
    func restore(from snapshot: Snapshot) {}
}

@Suite("Raft driver: applying a backlog", .serialized)
struct RaftDriverApplyBudgetTests {
    private func startDriver(in directory: String, machine: SlowStateMachine) throws -> RaftDriver {
        var configuration = RaftConfiguration(id: NodeID(1))
        configuration.electionTimeoutTicks = 4
        return try RaftDriver(
            configuration: configuration, log: try WriteAheadLog(directory: directory), bootstrap: Membership(voters: [NodeID(1)]),
            stateMachine: machine, transport: LocalTransport(), randomSeed: 1, logger: Logger(label: "test.apply-budget"))
    }

    @Test("a restarted node replaying its log answers events between slices of the replay, not after all of it")
    func replayIsSliced() async throws {
        let directory = NSTemporaryDirectory() + "ballast-driver-apply-\(UInt64.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let entries = 1_000
        do {
            let fast = SlowStateMachine(microsecondsPerEntry: 0)
            let driver = try startDriver(in: directory, machine: fast)
            defer { driver.stop() }
            let ticker = Ticker(driver)
            defer { ticker.stop() }
            try await waitUntil("the single voter leads") { await status(driver).role == .leader }
            for _ in 0 ..< entries { driver.propose([1, 2, 3]) { _ in } }
            try await waitUntil("all applied") { fast.appliedCount == entries }
        }

        // Restarted with no snapshot, the whole log is committed again at once and handed out
        // in one piece; each entry now takes a millisecond to apply: a second in all.
        let slow = SlowStateMachine(microsecondsPerEntry: 1_000)
        let driver = try startDriver(in: directory, machine: slow)
        defer { driver.stop() }
        let ticker = Ticker(driver)
        defer { ticker.stop() }
        try await waitUntil("the replay started") { slow.appliedCount > 0 }
        let answered = await withCheckedContinuation { continuation in
            driver.inspect { status in continuation.resume(returning: (status: status, applied: slow.appliedCount)) }
        }
        #expect(answered.applied < entries, "the status was answered while the replay went on")
        #expect(answered.status.applied.rawValue <= UInt64(answered.applied) + 1,
                "the status's applied index is the state machine's, not what the core handed out")
        try await waitUntil("the replay ends", timeout: .seconds(60)) { slow.appliedCount == entries }
        try await waitUntil("the status shows everything committed applied") {
            let now = await status(driver)
            return now.applied == now.commit && now.applied >= answered.status.commit
        }
    }

    @Test("a burst of reads, each doing a millisecond's work on the loop, is completed over several turns, with events answered between them")
    func readsAreSliced() async throws {
        let directory = NSTemporaryDirectory() + "ballast-driver-reads-\(UInt64.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let driver = try startDriver(in: directory, machine: SlowStateMachine(microsecondsPerEntry: 0))
        defer { driver.stop() }
        let ticker = Ticker(driver)
        defer { ticker.stop() }
        try await waitUntil("the single voter leads") { await status(driver).role == .leader }

        // 1,000 reads confirmed together, each taking a millisecond on the loop (a List page):
        // a second in all. The loop is held while they are posted, so it takes them in one
        // turn. The first to complete posts a status request from the loop itself, so it is
        // queued behind whatever the loop does next, deterministically.
        let reads = 1_000
        let completed = Atomic<Int>(0)
        let answeredAfter = Mutex<Int?>(nil)
        let hold = DispatchSemaphore(value: 0)
        driver.inspect { _ in hold.wait() }
        for _ in 0 ..< reads {
            driver.read { result in
                guard case .success = result else { return }
                usleep(1_000) // the work a read does, not a wait for an event
                if completed.add(1, ordering: .relaxed).newValue == 1 {
                    driver.inspect { _ in answeredAfter.withLock { $0 = completed.load(ordering: .relaxed) } }
                }
            }
        }
        hold.signal()
        try await waitUntil("every read completes", timeout: .seconds(60)) { completed.load(ordering: .relaxed) == reads }
        let answered = try #require(answeredAfter.withLock { $0 })
        #expect(answered < reads / 2, "the status was answered after \(answered) of \(reads) reads, not after all of them")
    }

    private func status(_ driver: RaftDriver) async -> RaftStatus {
        await withCheckedContinuation { continuation in driver.inspect { continuation.resume(returning: $0) } }
    }
}

/// Counts applied entries (its snapshot is the count); rebuilding from a snapshot the leader
/// sent waits, off the loop thread, until the test opens the gate, as a large engine's would take long.
final class SlowRestoreStateMachine: RaftStateMachine, @unchecked Sendable {
    private struct State {
        var count = 0
        var rebuilding = false
        var restoredFrom: LogIndex?
    }
    private let state = Mutex(State())
    private let gate = DispatchSemaphore(value: 0)

    var count: Int { state.withLock { $0.count } }
    var rebuilding: Bool { state.withLock { $0.rebuilding } }
    var restoredFrom: LogIndex? { state.withLock { $0.restoredFrom } }
    /// Lets every rebuild (in progress or later) finish.
    func open() { for _ in 0 ..< 16 { gate.signal() } }

    func apply(_ entry: Entry) -> (any Sendable)? {
        if entry.kind == .normal { state.withLock { $0.count += 1 } }
        return nil
    }

    func captureSnapshot() -> SnapshotSerializer {
        let count = self.count
        return { withUnsafeBytes(of: UInt64(count).bigEndian) { Array($0) } }
    }

    func restore(from snapshot: Snapshot) {
        let count = snapshot.data.reduce(0) { $0 << 8 | Int($1) }
        state.withLock { $0.count = count; $0.restoredFrom = snapshot.metadata.index }
    }

    func prepareRestore(from snapshot: Snapshot) -> SnapshotRestore {
        { [self] in
            state.withLock { $0.rebuilding = true }
            gate.wait()
            let count = snapshot.data.reduce(0) { $0 << 8 | Int($1) }
            return { [self] in
                state.withLock { state in
                    state.count = count
                    state.restoredFrom = snapshot.metadata.index
                    state.rebuilding = false
                }
            }
        }
    }
}

@Suite("Raft driver: a snapshot from the leader", .serialized)
struct RaftDriverRestoreTests {
    @Test("a follower rebuilding a snapshot off the loop keeps answering and following, then applies what came meanwhile")
    func rebuildsOffTheLoop() async throws {
        let root = NSTemporaryDirectory() + "ballast-driver-restore-\(UInt64.random(in: 0 ... .max))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let transport = LocalTransport()
        let ids = (1 ... 3).map { NodeID(UInt64($0)) }
        var machines: [NodeID: SlowRestoreStateMachine] = [:]
        var drivers: [NodeID: RaftDriver] = [:]
        var tickers: [Ticker] = []
        defer {
            for machine in machines.values { machine.open() }
            for ticker in tickers { ticker.stop() }
            for driver in drivers.values { driver.stop() }
        }
        for id in ids {
            let directory = root + "/\(id.rawValue)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            var configuration = RaftConfiguration(id: id)
            // 0.3–0.6 s at 5 ms a tick: a busy test machine must not change the leader mid-test.
            configuration.electionTimeoutTicks = 60
            configuration.snapshotThresholdBytes = 2_048
            configuration.compactionSlackEntries = 0
            let machine = SlowRestoreStateMachine()
            let driver = try RaftDriver(
                configuration: configuration, log: try WriteAheadLog(directory: directory), bootstrap: Membership(voters: ids),
                stateMachine: machine, transport: transport, randomSeed: id.rawValue, logger: Logger(label: "test.restore"))
            transport.connect(id) { driver.receive($0) }
            machines[id] = machine
            drivers[id] = driver
            tickers.append(Ticker(driver))
        }
        func status(_ id: NodeID) async -> RaftStatus? { await statusWithin(drivers[id]!, .seconds(5)) }
        var leader = NodeID(0)
        try await waitUntil("a leader is elected") {
            for id in ids where await status(id)?.role == .leader {
                leader = id
                return true
            }
            return false
        }
        let lagging = try #require(ids.first { $0 != leader })
        transport.disconnect(lagging)

        // Enough for the leader to snapshot and drop the entries the lagging node lacks. Each
        // entry is above the snapshot threshold on its own, so the leader snapshots again until
        // its snapshot covers everything applied: the 16 small entries below stay under the
        // threshold then, whatever index the earlier snapshots were cut at (with smaller entries
        // the bytes left after the last snapshot varied, and the small ones sometimes crossed it).
        let payload = [UInt8](repeating: 7, count: 2_100)
        for _ in 0 ..< 64 { drivers[leader]!.propose(payload) { _ in } }
        try await waitUntil("the leader applied and snapshotted everything") {
            guard let now = await status(leader) else { return false }
            return machines[leader]!.count == 64 && now.snapshotIndex == now.applied
        }
        transport.connect(lagging) { [driver = drivers[lagging]!] in driver.receive($0) }
        try await waitUntil("the lagging node rebuilds the leader's snapshot") { machines[lagging]!.rebuilding }

        // The rebuild is held: the node's loop must still answer, follow the leader's term and
        // take new entries into its log, and apply nothing until the snapshot is in place.
        // Small ones, so the leader keeps them in its log (no new snapshot) and sends them as entries.
        let snapshotBefore = try #require(await status(leader)).snapshotIndex
        for _ in 0 ..< 16 { drivers[leader]!.propose([1]) { _ in } }
        try await waitUntil("the leader applied the new entries") { machines[leader]!.count == 80 }
        let during = try #require(await status(lagging), "the lagging node's loop answered during the rebuild")
        let leading = try #require(await status(leader))
        #expect(leading.snapshotIndex == snapshotBefore, "the new entries must reach the lagging node as entries")
        #expect(during.role == .follower && during.leader != nil)
        try await waitUntil("the lagging node's log takes the new entries and learns they are committed") {
            guard let now = await status(lagging) else { return false }
            return now.lastIndex >= leading.lastIndex && now.commit >= leading.lastIndex
        }
        #expect(machines[lagging]!.count == 0 && machines[lagging]!.rebuilding, "nothing applied before the snapshot is in place")
        #expect((await status(lagging))?.applied ?? .zero < leading.snapshotIndex)

        machines[lagging]!.open()
        try await waitUntil("the lagging node installs the snapshot and applies the rest") { machines[lagging]!.count == 80 }
        let restoredFrom = try #require(machines[lagging]!.restoredFrom)
        #expect(restoredFrom > .zero && restoredFrom <= leading.snapshotIndex)
        try await waitUntil("its status shows everything applied") {
            guard let now = await status(lagging) else { return false }
            return now.applied == now.commit && now.applied >= leading.lastIndex
        }
    }
}

/// The driver's status, or nil if its loop does not answer within `timeout`.
func statusWithin(_ driver: RaftDriver, _ timeout: Duration) async -> RaftStatus? {
    let waiting = Mutex<CheckedContinuation<RaftStatus?, Never>?>(nil)
    return await withCheckedContinuation { continuation in
        waiting.withLock { $0 = continuation }
        driver.inspect { status in waiting.withLock { $0.take() }?.resume(returning: status) }
        let microseconds = UInt32(timeout.components.seconds * 1_000_000 + timeout.components.attoseconds / 1_000_000_000_000)
        Thread.detachNewThread {
            usleep(microseconds)  // the deadline of the wait, not a wait for something to happen
            waiting.withLock { $0.take() }?.resume(returning: nil)
        }
    }
}
