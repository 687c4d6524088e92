import BallastRaft
import BallastStorage
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Sends Raft messages to peers. Must not block for long: the driver's loop calls it.
public protocol RaftTransport: Sendable {
    /// Queues `messages` for delivery; delivery may fail silently (Raft retries).
    func send(_ messages: [Message])
}

/// Serializes a state captured on the driver's loop thread (`RaftStateMachine.captureSnapshot()`);
/// it runs on a thread of its own. Nil when it could not, after the state machine reported why.
public typealias SnapshotSerializer = @Sendable () -> [UInt8]?

/// The application behind Raft: applies committed entries and takes and restores snapshots.
/// Called only on the driver's loop thread, in log order.
public protocol RaftStateMachine: AnyObject {
    /// Applies one committed entry (`.normal`, `.noop` or `.configChange`); what it returns is
    /// handed to the completion of the proposal that created the entry, if it was proposed here.
    func apply(_ entry: Entry) -> (any Sendable)?
    /// Applies one committed entry that this node proposed, in the term it was committed in, with
    /// the `message` it was proposed with (`RaftDriver.propose(_:message:completion:)`): the
    /// entry's data is the encoding of that message, so a state machine may use it instead of
    /// decoding the data again. The default applies the entry alone.
    func apply(_ entry: Entry, proposed message: any Sendable) -> (any Sendable)?
    /// Called on the loop thread after a turn's run of `apply` calls, before the loop turns to
    /// other work: where a state machine writes out what that turn's entries buffered.
    func finishApplying()
    /// Captures the state as of the last applied entry and returns the work that serializes it.
    /// The capture runs on the loop thread, so it must be cheap (copy-on-write copies, no
    /// walk over the whole state); the driver runs the returned work on another thread while
    /// the loop goes on applying, and has at most one snapshot in progress.
    func captureSnapshot() -> SnapshotSerializer
    /// Replaces the state with a snapshot (the one saved in the log, when the node starts).
    func restore(from snapshot: Snapshot)
    /// Called instead of `restore(from:)` when the node starts with no snapshot: its log replays
    /// from the first entry, so whatever the state machine keeps outside memory must be empty
    /// too. The default does nothing.
    func startWithoutSnapshot()
    /// Returns the work that rebuilds the state from a snapshot the leader sent. The driver runs
    /// it on a thread of its own, applies nothing meanwhile, and runs what it returns (the step
    /// that puts the rebuilt state in place, which must be cheap) on the loop thread; nil when
    /// there is nothing to put in place (the failure was reported). The default does all of
    /// `restore(from:)` in that last step, on the loop.
    func prepareRestore(from snapshot: Snapshot) -> SnapshotRestore
}

/// Rebuilds a state machine's state from a snapshot off the loop thread
/// (`RaftStateMachine.prepareRestore`); returns the step that installs it on the loop thread.
public typealias SnapshotRestore = @Sendable () -> SnapshotInstall?
/// Puts a rebuilt state in place; runs on the driver's loop thread.
public typealias SnapshotInstall = @Sendable () -> Void

extension RaftStateMachine {
    public func apply(_ entry: Entry, proposed message: any Sendable) -> (any Sendable)? { apply(entry) }

    public func finishApplying() {}

    public func startWithoutSnapshot() {}

    public func prepareRestore(from snapshot: Snapshot) -> SnapshotRestore {
        let machine = LoopBound<any RaftStateMachine>(self)
        return { { machine.value.restore(from: snapshot) } }
    }
}

/// A value used only on the driver's loop thread, carried through a thread that does not touch it.
struct LoopBound<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// A proposal's outcome: where it landed and what the state machine answered when applying it.
public struct AppliedEntry: Sendable {
    /// The entry's index.
    public var index: LogIndex
    /// The state machine's answer for this entry.
    public var output: (any Sendable)?
}

/// What the driver tells its owner about this node's leadership, on the loop thread.
public enum LeadershipEvent: Sendable, Equatable {
    /// This node leads `term` and has applied every entry committed before the term began
    /// (its own no-op of the term is applied), so the state machine is complete: a leader's
    /// duties (dispatch, timers) may start from it.
    case leading(term: Term)
    /// This node no longer leads (stepped down, lost an election, or is stopping).
    case notLeading
}

/// Why a proposal or read through the driver failed.
public enum RaftDriverError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The core refused the request (not leader, backlog full, …).
    case refused(RaftError)
    /// The entry was overwritten by a new leader before it committed; the caller may retry.
    case superseded(index: LogIndex)
    /// Leadership was lost before the read was confirmed; retry on the new leader.
    case readDropped
    /// The driver is shutting down.
    case stopped
    /// Writing to the log failed; the node stops taking proposals.
    case storageFailed(String)
    /// The disk is full (free space below the reserve, or a write stalled for lack of space):
    /// the node refuses new proposals until space is freed. Nothing was written.
    case diskFull(String)

    public var description: String {
        switch self {
        case .refused(let error): "refused: \(error)"
        case .superseded(let index): "entry \(index) was replaced by a new leader before it committed; retry"
        case .readDropped: "leadership changed before the read was confirmed; retry on the leader"
        case .stopped: "the node is stopping"
        case .storageFailed(let why): "the log could not be written: \(why)"
        case .diskFull(let why): "disk full: \(why)"
        }
    }
}

/// Runs one `RaftNode` core on a loop thread, with its write-ahead log behind the storage
/// `LogWriter` (group commit): everything that arrives while one write+fsync is in flight is
/// batched into the next, so concurrent proposals share one fsync, and the leader sends
/// AppendEntries while its own write is in flight and counts itself only once durable (Raft
/// thesis §10.2.1).
public final class RaftDriver: @unchecked Sendable {
    /// Completion of a proposal: the committed-and-applied entry and its output, or why it failed.
    public typealias ProposalCompletion = @Sendable (Result<AppliedEntry, RaftDriverError>) -> Void
    /// Completion of a linearizable read: called once the local state reflects the read point.
    public typealias ReadCompletion = @Sendable (Result<LogIndex, RaftDriverError>) -> Void

    /// A proposal of this node's waiting for its entry to be applied.
    struct PendingProposal {
        /// The term it was appended in: the entry at its index is this proposal only if committed in that term.
        var term: Term
        /// What the entry's data encodes, for the state machine (nil: decode the data).
        var message: (any Sendable)?
        var completion: ProposalCompletion
    }

    enum Event {
        case message(Message)
        case propose([UInt8], (any Sendable)?, ProposalCompletion)
        case read(ReadCompletion)
        case configChange(ConfigChange, [UInt8], ProposalCompletion)
        case transfer(NodeID)
        case tick
        case persisted(LogIndex, Term)
        case storageFailed(String)
        case inspect(@Sendable (RaftStatus) -> Void)
        /// More committed entries wait to be applied: process the next Ready (the loop posts
        /// this to itself, so ticks, messages and inspections interleave with a long apply).
        case continueApplying
        /// The snapshot captured at this metadata's index is serialized (nil: it could not be),
        /// after `capture` on the loop thread and `serialize` on the snapshot thread.
        case snapshotSerialized(SnapshotMetadata, [UInt8]?, capture: Duration, serialize: Duration)
        /// The snapshot at this metadata's index is rebuilt off the loop thread (`restoreSnapshot`),
        /// after `took`; the install step puts it in place.
        case restorePrepared(SnapshotMetadata, SnapshotInstall?, took: Duration)
    }

    let events: BlockingQueue<Event>
    let writer: LogWriter
    let transport: any RaftTransport
    let logger: Logger
    /// The loop thread's id, so that pushes from the loop itself never wait for room.
    let loopThread = Atomic<UInt>(0)
    // Loop-thread state.
    var node: RaftNode
    let stateMachine: any RaftStateMachine
    var pendingProposals: [LogIndex: PendingProposal] = [:]
    var pendingReads: [UInt64: ReadCompletion] = [:]
    var confirmedReads: [(index: LogIndex, completion: ReadCompletion)] = []
    var nextReadContext: UInt64 = 1
    /// The last entry the state machine applied (the core's `applied` is the last it handed out).
    var applied: LogIndex
    /// Committed entries handed out by the core, applied from `applyNext` on, a turn's budget
    /// at a time (`applyWithinBudget`).
    var applyQueue: [Entry] = []
    var applyNext = 0
    var storageFailure: String?
    /// Told when this node starts leading (with a complete state machine) or stops.
    let leadershipObserver: (@Sendable (LeadershipEvent) -> Void)?
    /// The term this node last announced as `.leading`, if it still leads it.
    var announcedLeaderTerm: Term?
    /// Why the disk is full right now (nil when writes are welcome); checked on every proposal.
    let diskFullReason: (@Sendable () -> String?)?
    /// Ticks since a leader on a full disk last asked a peer to take over.
    var ticksSinceDiskHandover = Int.max
    /// Whether the core was leader after the loop's last turn (read by callers on any thread).
    let isLeaderNow = Atomic<Bool>(false)
    /// How often (in ticks) a leader on a full disk asks again: one election timeout.
    let handoverIntervalTicks: Int
    /// Whether a snapshot is being serialized off the loop thread.
    var snapshotInProgress = false
    /// Whether the core asked for a snapshot while one was in progress (taken when it ends).
    var snapshotWanted = false
    /// Whether a snapshot from the leader is being rebuilt off the loop thread; nothing is
    /// applied meanwhile.
    var rebuildingSnapshot = false
    /// A newer snapshot from the leader that arrived during a rebuild; rebuilt after it, in its stead.
    var queuedRestore: Snapshot?
    /// This node's id (names the snapshot thread).
    let id: NodeID
    /// When a slow loop turn was last logged, and how many slow turns went unlogged since.
    var lastSlowTurnLog: ContinuousClock.Instant?
    var unloggedSlowTurns = 0
    /// Time the current loop turn spent handing messages to the transport and completing reads,
    /// for the slow-turn line.
    var turnSending: Duration = .zero
    var turnReading: Duration = .zero
    /// The current loop turn's event handling by kind of event, for the slow-turn line.
    var turnCosts = TurnCosts()

    /// Restores the core from `log`, hands the log to a `LogWriter` and starts the loop thread.
    public init(
        configuration: RaftConfiguration, log: sending WriteAheadLog, bootstrap: Membership?,
        stateMachine: any RaftStateMachine, transport: any RaftTransport, randomSeed: UInt64, logger: Logger,
        maxQueuedEvents: Int = 1 << 16, writerOptions: LogWriter.Options = LogWriter.Options(),
        leadershipObserver: (@Sendable (LeadershipEvent) -> Void)? = nil,
        diskFullReason: (@Sendable () -> String?)? = nil
    ) throws {
        self.leadershipObserver = leadershipObserver
        self.diskFullReason = diskFullReason
        self.handoverIntervalTicks = configuration.electionTimeoutTicks
        self.id = configuration.id
        let restored = try log.restore()
        if let snapshot = restored.snapshot { stateMachine.restore(from: snapshot) } else { stateMachine.startWithoutSnapshot() }
        self.node = RaftNode(configuration: configuration, restored: restored, bootstrap: bootstrap, randomSeed: randomSeed)
        self.applied = restored.snapshot?.metadata.index ?? .zero
        self.stateMachine = stateMachine
        self.transport = transport
        self.logger = logger
        self.events = BlockingQueue(capacity: maxQueuedEvents)
        self.writer = LogWriter(log: log, options: writerOptions)
        startThread(named: "raft-loop-\(configuration.id)") { [self] in
            loopThread.store(UInt(pthread_self()), ordering: .releasing)
            runLoop()
        }
    }

    /// Queues an event; only callers outside the loop thread wait for room (back-pressure).
    @discardableResult
    func post(_ event: Event) -> Bool {
        let onLoop = loopThread.load(ordering: .acquiring) == UInt(pthread_self())
        return events.push(event, waitForRoom: !onLoop)
    }

    /// Delivers a message from a peer.
    public func receive(_ message: Message) { post(.message(message)) }
    /// Advances the core's logical clock by one tick.
    public func tick() { post(.tick) }
    /// Proposes `data`; `completion` runs once it is committed and applied (or failed). When
    /// `message` is given, `data` must be its encoding: if the entry is committed in the term it
    /// was proposed in, the state machine gets the message with it (`apply(_:proposed:)`).
    public func propose(_ data: [UInt8], message: (any Sendable)? = nil, completion: @escaping ProposalCompletion) {
        // Checked here too (on a leader: followers redirect), so a loop busy retrying a write on
        // a full disk still answers at once.
        if isLeaderNow.load(ordering: .relaxed), let why = diskFullReason?() { return completion(.failure(.diskFull(why))) }
        if !post(.propose(data, message, completion)) { completion(.failure(.stopped)) }
    }
    /// Starts a linearizable read; `completion` runs once this node has applied the read point.
    public func read(completion: @escaping ReadCompletion) {
        if !post(.read(completion)) { completion(.failure(.stopped)) }
    }
    /// Proposes a membership change; `completion` runs once it is committed and applied. `context`
    /// rides in the entry after the change (the new member's addresses) and is ignored by Raft.
    public func changeMembership(_ change: ConfigChange, context: [UInt8] = [], completion: @escaping ProposalCompletion) {
        if !post(.configChange(change, context, completion)) { completion(.failure(.stopped)) }
    }
    /// Asks the leader to hand leadership to `target`.
    public func transferLeadership(to target: NodeID) { post(.transfer(target)) }
    /// Calls `body` on the loop thread with the core's current status.
    public func inspect(_ body: @escaping @Sendable (RaftStatus) -> Void) { post(.inspect(body)) }
    /// Stops the loop and returns once the log writer has finished what it was given and
    /// closed the log (releasing its directory); pending callers get `.stopped`.
    public func stop() {
        events.close()
        writer.shutdown()
    }
}
