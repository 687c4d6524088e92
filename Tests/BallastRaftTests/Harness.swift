@testable import BallastRaft

/// What one member has made durable, modelled like `RaftLogStore`.
struct DurableState {
    var hardState = HardState()
    var snapshot: Snapshot?
    var entries: [Entry] = []

    mutating func write(_ ready: Ready) {
        if let snapshot = ready.snapshot {
            self.snapshot = snapshot
            entries = []
        }
        if let hardState = ready.hardState { self.hardState = hardState }
        if let first = ready.entries.first {
            entries.removeAll { $0.index >= first.index }
            entries += ready.entries
        }
    }

    var restored: RestoredState { RestoredState(hardState: hardState, snapshot: snapshot, entries: entries) }
}

/// A deterministic in-test network of `RaftNode` values: messages are delivered in FIFO order,
/// links can be cut, and a member's disk writes can be held back to model a slow fsync.
struct TestCluster {
    var nodes: [NodeID: RaftNode] = [:]
    var disks: [NodeID: DurableState] = [:]
    var configurations: [NodeID: RaftConfiguration] = [:]
    var bootstrap: Membership
    /// Messages sent and not yet delivered, oldest first.
    var inFlight: [Message] = []
    /// Every message ever sent, for assertions about traffic.
    var sent: [Message] = []
    /// Directed links that drop everything.
    var cutLinks: Set<[NodeID]> = []
    /// Members whose disk writes (and the messages waiting on them) are held back.
    var slowDisks: Set<NodeID> = []
    var heldReadies: [NodeID: [Ready]] = [:]
    /// Members that are down: they neither receive nor tick.
    var down: Set<NodeID> = []
    /// Extra filter: return false to drop a message.
    var accepts: (Message) -> Bool = { _ in true }
    /// Extra hook: change a message on its way (after `accepts`).
    var rewrite: (Message) -> Message = { $0 }

    var applied: [NodeID: [Entry]] = [:]
    var readStates: [NodeID: [ReadState]] = [:]
    var droppedReads: [NodeID: [UInt64]] = [:]
    var installedSnapshots: [NodeID: [Snapshot]] = [:]
    var snapshotSuggestions: [NodeID: Int] = [:]
    /// The first entry applied anywhere at each index, and every disagreement with it.
    var firstApplied: [LogIndex: Entry] = [:]
    var safetyViolations: [String] = []

    /// A cluster of `voters` (plus `learners`), all with the same bootstrap membership.
    init(voters: [UInt64], learners: [UInt64] = [], configure: (inout RaftConfiguration) -> Void = { _ in }) {
        bootstrap = Membership(voters: voters.map { NodeID($0) }, learners: learners.map { NodeID($0) })
        for raw in voters + learners {
            addNode(NodeID(raw), bootstrap: bootstrap, configure: configure)
        }
    }

    /// Starts a brand-new member (for example a learner about to be added).
    mutating func addNode(_ id: NodeID, bootstrap: Membership?, configure: (inout RaftConfiguration) -> Void = { _ in }) {
        var configuration = RaftConfiguration(id: id)
        configuration.electionTimeoutTicks = 10
        configure(&configuration)
        configurations[id] = configuration
        disks[id] = DurableState()
        nodes[id] = RaftNode(configuration: configuration, restored: RestoredState(), bootstrap: bootstrap, randomSeed: id.rawValue)
    }

    subscript(_ raw: UInt64) -> RaftNode {
        get { nodes[NodeID(raw)]! }
        set { nodes[NodeID(raw)] = newValue }
    }

    /// Drains every member's Ready: write, acknowledge persistence, send, apply.
    @discardableResult
    mutating func processReadies() -> Bool {
        var didWork = false
        for id in nodes.keys.sorted() where !down.contains(id) {
            let ready = nodes[id]!.takeReady()
            didWork = didWork || !ready.isEmpty
            enqueue(ready.messages)
            readStates[id, default: []] += ready.readStates
            droppedReads[id, default: []] += ready.droppedReads
            if ready.snapshotSuggested { snapshotSuggestions[id, default: 0] += 1 }
            if slowDisks.contains(id) {
                heldReadies[id, default: []].append(ready)
            } else {
                complete(ready, on: id)
            }
        }
        return didWork
    }

    /// Finishes a Ready after its writes are durable.
    mutating func complete(_ ready: Ready, on id: NodeID) {
        disks[id]!.write(ready)
        if let snapshot = ready.snapshot {
            installedSnapshots[id, default: []].append(snapshot)
            applied[id] = []
        }
        if let last = ready.entries.last {
            nodes[id]!.persisted(through: last.index, term: last.term)
        } else if let snapshot = ready.snapshot {
            nodes[id]!.persisted(through: snapshot.metadata.index, term: snapshot.metadata.term)
        }
        enqueue(ready.messagesAfterPersist)
        applied[id, default: []] += ready.committed
        for entry in ready.committed {
            if let first = firstApplied[entry.index], first != entry {
                safetyViolations.append("\(id) applied \(entry) where \(first) was applied before")
            }
            firstApplied[entry.index] = firstApplied[entry.index] ?? entry
        }
    }

    /// Lets a slow disk finish everything it was holding.
    mutating func flushDisk(_ id: NodeID) {
        for ready in heldReadies[id] ?? [] { complete(ready, on: id) }
        heldReadies[id] = []
    }

    mutating func enqueue(_ messages: [Message]) {
        sent += messages
        inFlight += messages
    }

    /// Delivers the messages now in flight (not the ones they cause).
    mutating func deliverOnce() {
        let batch = inFlight
        inFlight = []
        for message in batch {
            guard !down.contains(message.to), !down.contains(message.from), nodes[message.to] != nil,
                  !cutLinks.contains([message.from, message.to]), accepts(message) else { continue }
            nodes[message.to]!.step(rewrite(message))
        }
    }

    /// Runs Ready processing and delivery until the network is quiet.
    mutating func stabilize(maxRounds: Int = 1_000) {
        for _ in 0..<maxRounds {
            let didWork = processReadies()
            if inFlight.isEmpty && !didWork { return }
            deliverOnce()
        }
        preconditionFailure("the cluster did not quiesce in \(maxRounds) rounds")
    }

    /// Ticks every running member once, then stabilizes.
    mutating func tickAll(_ times: Int = 1) {
        for _ in 0..<times {
            for id in nodes.keys.sorted() where !down.contains(id) { nodes[id]!.tick() }
            stabilize()
        }
    }

    /// Ticks one member until its election timeout fires, then lets the election run.
    mutating func campaign(_ raw: UInt64) {
        let id = NodeID(raw)
        let ticks = nodes[id]!.randomizedElectionTimeout - nodes[id]!.electionElapsed
        for _ in 0..<max(1, ticks) { nodes[id]!.tick() }
        stabilize()
    }

    /// Elects `raw` and commits its no-op.
    mutating func elect(_ raw: UInt64) {
        campaign(raw)
        precondition(self[raw].status.role == .leader, "n\(raw) failed to become leader: \(self[raw].status)")
    }

    mutating func cut(_ a: UInt64, _ b: UInt64) {
        cutLinks.insert([NodeID(a), NodeID(b)])
        cutLinks.insert([NodeID(b), NodeID(a)])
    }

    mutating func isolate(_ raw: UInt64) {
        for other in nodes.keys where other != NodeID(raw) { cut(raw, other.rawValue) }
    }

    mutating func heal() { cutLinks = [] }

    /// Proposes on `raw`, expecting it to lead.
    @discardableResult
    mutating func propose(_ raw: UInt64, _ text: String) throws -> LogIndex {
        try nodes[NodeID(raw)]!.propose(Array(text.utf8))
    }

    /// Elects 1, then leaves `follower` behind: cut off while 1 commits `entries` more entries
    /// ("0", "1", …) with the others. The follower stays cut off.
    mutating func electLeavingBehind(_ follower: UInt64, entries: Int) throws {
        elect(1)
        tickAll()
        isolate(follower)
        for number in 0..<entries { try propose(1, "\(number)") }
        tickAll()
    }

    /// Crashes a member (losing nothing durable) and starts it again from its disk.
    mutating func restart(_ raw: UInt64) {
        let id = NodeID(raw)
        heldReadies[id] = []
        nodes[id] = RaftNode(configuration: configurations[id]!, restored: disks[id]!.restored, bootstrap: bootstrap, randomSeed: raw &+ 1000)
        applied[id] = []
    }

    /// Restarts `raw` with a durable log whose entries have the given terms (indexes from 1) at `term`.
    mutating func give(_ raw: UInt64, logTerms terms: [UInt64], term: UInt64) {
        let id = NodeID(raw)
        let entries = terms.enumerated().map { Entry(term: Term($1), index: LogIndex(UInt64($0 + 1)), data: Array("e\($0 + 1)".utf8)) }
        disks[id] = DurableState(hardState: HardState(term: Term(term)), snapshot: nil, entries: entries)
        restart(raw)
    }

    /// Has `raw` take a snapshot of everything it applied, with `data` as the state-machine bytes.
    @discardableResult
    mutating func takeSnapshot(_ raw: UInt64, data: [UInt8]) -> Snapshot {
        let node = self[raw]
        let snapshot = Snapshot(metadata: node.snapshotMetadata(at: node.status.applied)!, data: data)
        self[raw].snapshotTaken(snapshot)
        disks[NodeID(raw)]!.snapshot = snapshot
        disks[NodeID(raw)]!.entries.removeAll { $0.index <= snapshot.metadata.index }
        return snapshot
    }

    /// Whether two members (or one member across restarts) applied different entries at one index.
    var appliedEntriesConflict: Bool { !safetyViolations.isEmpty }

    /// The payloads `raw` has applied, as strings (no-ops and config entries left out).
    func appliedTexts(_ raw: UInt64) -> [String] {
        (applied[NodeID(raw)] ?? []).filter { $0.kind == .normal }.map { String(decoding: $0.data, as: UTF8.self) }
    }

    /// The (index, term) pairs of `raw`'s in-memory log.
    func logTerms(_ raw: UInt64) -> [UInt64] {
        self[raw].log.entries.map(\.term.rawValue)
    }
}

extension RaftNode {
    /// Test shortcut: the terms of the log entries.
    var entryTerms: [UInt64] { log.entries.map(\.term.rawValue) }
}
