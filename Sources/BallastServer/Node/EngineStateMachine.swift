import BallastEngine
import BallastProto
import BallastRaft
import BallastStorage
import Logging
import SwiftProtobuf
#if canImport(Glibc)
import Glibc
#endif

/// The workflow engine as the node's replicated state machine: decodes each committed entry,
/// applies it, and appends the events it produced to the node's history store. An entry this
/// node cannot apply (an engine format version it does not know, or bytes that are not an
/// engine entry), or a history store that fails, stops the node through `onFatal` instead of
/// letting it diverge from its peers.
///
/// Its snapshot is the engine's snapshot plus the history of every run the engine knows
/// (`NodeSnapshotCodec`); restoring one replaces the engine and makes the store hold exactly
/// those histories.
public final class EngineStateMachine: RaftStateMachine, @unchecked Sendable {
    private var engine = WorkflowEngine()
    private let logger: Logger
    private let onFatal: @Sendable (String) -> Void
    /// The node's history store; thread-safe, so reads may run on any thread.
    public let history: any HistoryBytesStore
    /// Callers of WaitWorkflowExecutionClosed, woken when their run closes.
    let closeSignals = RunCloseSignals(limit: 10_000)
    /// Told, on the loop thread, the result of every applied engine entry (set before the node starts).
    var onApplied: ((UInt64, ApplyResult) -> Void)?
    /// Told, on the loop thread, that the engine was replaced from a snapshot (set before the node starts).
    var onRestored: (() -> Void)?
    /// The role bindings as last applied, for the authorization check on any thread.
    public let rolePublisher = RoleTablePublisher()
    /// Told when recording history stalls for lack of space (the error) and when it goes on (nil).
    var onHistoryNoSpace: (@Sendable (String?) -> Void)?
    /// How long a history write that failed for lack of space waits before it is tried again.
    var historyNoSpaceRetryInterval: Duration = .milliseconds(100)

    /// The newest entry format this node applies (`NodeConfiguration.maxEngineFormat`).
    public let newestFormatVersion: UInt32

    /// Creates an empty engine over `history` (in memory unless given), applying entry formats
    /// up to `newestFormatVersion`.
    public init(logger: Logger, history: any HistoryBytesStore = MemoryHistoryBytesStore(),
                newestFormatVersion: UInt32 = newestEngineFormatVersion, onFatal: @escaping @Sendable (String) -> Void) {
        self.logger = logger
        self.history = history
        self.onFatal = onFatal
        self.newestFormatVersion = newestFormatVersion
        engine.newestFormatVersion = newestFormatVersion
    }

    /// Applies a committed engine entry and records its events; the `ApplyResult` goes back to the proposer.
    public func apply(_ entry: Entry) -> (any Sendable)? {
        guard entry.kind == .normal else { return nil }
        let decoded: Ballast_V1_EngineEntry
        do {
            decoded = try Ballast_V1_EngineEntry(serializedBytes: entry.data)
        } catch {
            onFatal("committed entry \(entry.index) is not an engine entry: \(error); this node stops rather than diverge")
            return nil
        }
        return apply(decoded, at: entry.index)
    }

    /// This node's own proposal, committed in the term it was proposed in: its data is the
    /// encoding of `message`, which is applied as it is rather than decoded again (on a leader
    /// that decoding was about a tenth of the loop thread's time). Debug builds check that the
    /// data decodes to a message with the same encoding, as every follower will decode it.
    public func apply(_ entry: Entry, proposed message: any Sendable) -> (any Sendable)? {
        guard entry.kind == .normal, let message = message as? Ballast_V1_EngineEntry else { return apply(entry) }
        assert(Self.decodesAsProposed(entry, message), "entry \(entry.index) does not decode to the message it was proposed with")
        return apply(message, at: entry.index)
    }

    /// Whether `entry`'s data decodes to a message encoded exactly as `message` is. Compared as
    /// bytes, not with `==`: a message holding a NaN (a retry policy's backoff coefficient, say)
    /// is not `==` to itself, which stopped debug builds on such a client request.
    static func decodesAsProposed(_ entry: Entry, _ message: Ballast_V1_EngineEntry) -> Bool {
        guard let decoded = try? Ballast_V1_EngineEntry(serializedBytes: entry.data) else { return false }
        return (try? DeterministicBinaryEncoder.encode(decoded)) == (try? DeterministicBinaryEncoder.encode(message))
    }

    private func apply(_ decoded: Ballast_V1_EngineEntry, at index: LogIndex) -> (any Sendable)? {
        let result: ApplyResult
        do {
            result = try engine.apply(decoded, index: index.rawValue)
        } catch {
            onFatal("cannot apply committed entry \(index): \(error); this node stops rather than diverge")
            return nil
        }
        // Before anyone hears of the entry: a dispatched task's history must be readable (the
        // store serves what it has staged; `finishApplying` writes it out).
        guard recordHistory(at: index, { () throws in try HistoryRecorder.record(result, into: history) }) else { return nil }
        closeSignals.closed(result.closedRuns) { engine.closedRunProgress($0) }
        for warning in result.warnings { log(warning, at: index) }
        rolePublisher.publish(engine)
        onApplied?(index.rawValue, result)
        return result
    }

    /// An engine warning (once per run and kind), on every node that applies the entry.
    private func log(_ warning: EngineWarning, at index: LogIndex) {
        switch warning {
        case let .historyLengthWarning(run, length):
            logger.warning("a run's history is long; the run fails at \(engine.limits.historyMaxEvents) events", metadata: [
                "namespace": "\(run.namespace)", "workflow_id": "\(run.workflowId)", "run_id": "\(run.runId)",
                "events": "\(length)", "index": "\(index.rawValue)",
            ])
        case let .historySizeWarning(run, bytes):
            logger.warning("a run's history is large; the run fails at \(engine.limits.historyMaxBytes) bytes", metadata: [
                "namespace": "\(run.namespace)", "workflow_id": "\(run.workflowId)", "run_id": "\(run.runId)",
                "bytes": "\(bytes)", "index": "\(index.rawValue)",
            ])
        }
    }

    /// Writes the history the turn's entries staged in the store, in one write.
    public func finishApplying() {
        _ = recordHistory(at: LogIndex(engine.lastAppliedIndex), { () throws in try history.flush() })
    }

    /// Runs `write`, a step of recording the history of entries through `index`. A store that
    /// fails for lack of space is retried (appends are idempotent by event id, and a flush keeps
    /// what it could not write) until it succeeds: the entries are committed and must be
    /// recorded, so the loop waits for space rather than skip them or stop the node. Any other
    /// failure stops the node. Returns false after `onFatal`.
    private func recordHistory(at index: LogIndex, _ write: () throws -> Void) -> Bool {
        var stalled = false
        defer { if stalled { onHistoryNoSpace?(nil) } }
        while true {
            do {
                try write()
                return true
            } catch let error as HistoryError where error.isNoSpace {
                if !stalled {
                    stalled = true
                    logger.error("history store full: applying waits until space is freed",
                                 metadata: ["index": "\(index)", "error": "\(error)"])
                    onHistoryNoSpace?("\(error)")
                }
                usleep(UInt32(clamping: microseconds(historyNoSpaceRetryInterval)))
            } catch {
                onFatal("cannot record the history of committed entry \(index): \(error); this node stops")
                return false
            }
        }
    }

    /// Runs `body` against the engine; call only on the driver's loop thread (e.g. after a read).
    func read<T>(_ body: (WorkflowEngine) throws -> T) rethrows -> T { try body(engine) }

    /// Up to `max` events of a run from event id `from` (read from the store; any thread).
    public func historyEvents(runId: String, from: Int64, max: Int) throws -> [Ballast_V1_HistoryEvent] {
        try historyEventBytes(runId: runId, from: from, max: max).map(HistoryEventCoding.decode)
    }

    /// The stored (deterministic protobuf) bytes of up to `max` events from `from`, stopping
    /// before `maxBytes` (at least one event); any thread.
    public func historyEventBytes(runId: String, from: Int64, max: Int, maxBytes: Int = .max) throws(HistoryError) -> [[UInt8]] {
        try history.read(runId: runId, fromEventId: from, maxEvents: max, maxBytes: maxBytes)
    }

    /// Captures the engine (a copy-on-write copy) and the history store's index as of the last
    /// applied entry; the returned work builds the snapshot from them on another thread: the
    /// engine snapshot plus every known run's history, after making the store durable.
    public func captureSnapshot() -> SnapshotSerializer {
        let engine = self.engine
        let view: any HistoryExportView
        do {
            view = try history.snapshotView()
        } catch {
            Self.snapshotFailed(at: engine.lastAppliedIndex, error, logger: logger, onFatal: onFatal)
            return { nil }
        }
        return { [history, onFatal, logger] in
            do {
                return try Self.serialize(engine, histories: view, syncing: history)
            } catch {
                Self.snapshotFailed(at: engine.lastAppliedIndex, error, logger: logger, onFatal: onFatal)
                return nil
            }
        }
    }

    /// Takes a snapshot on the calling thread (tests and tools).
    public func takeSnapshot() -> [UInt8]? { captureSnapshot()() }

    /// A store closed meanwhile (the node is stopping) abandons the snapshot; anything else
    /// stops the node.
    private static func snapshotFailed(at index: UInt64, _ error: any Error, logger: Logger,
                                       onFatal: @Sendable (String) -> Void) {
        if case HistoryError.closed = error {
            logger.info("snapshot abandoned: the history store closed", metadata: ["index": "\(index)"])
            return
        }
        onFatal("cannot take a snapshot at \(index): \(error); this node stops")
    }

    /// The node snapshot of `engine`, whose run histories `view` holds (no more, no fewer
    /// events than the engine counts: anything else is corruption).
    private static func serialize(_ engine: WorkflowEngine, histories view: any HistoryExportView,
                                  syncing store: any HistoryBytesStore) throws -> [UInt8] {
        // Not needed for safety (the snapshot carries every history), but a restart from this
        // snapshot then finds the histories already in place instead of writing them again.
        try store.sync()
        let message = engine.snapshotMessage()
        let engineBytes = try DeterministicBinaryEncoder.encode(message)
        var lengths: [(runId: String, length: Int64)] = message.runs.map { ($0.runID, $0.nextEventID - 1) }
        lengths += message.closedRuns.map { ($0.runID, $0.historyLength) }
        lengths.sort { $0.runId < $1.runId }
        let stored = try view.export(runIds: lengths.map(\.runId))
        var histories: [SnapshotRunHistory] = []
        histories.reserveCapacity(lengths.count)
        for (runId, length) in lengths {
            let events = stored[runId] ?? []
            guard events.count == length else {
                throw NodeSnapshotError.corrupt("the history store holds \(events.count) of the \(length) events of run \(runId)")
            }
            histories.append(SnapshotRunHistory(runId: runId, events: events))
        }
        return try NodeSnapshotCodec.encode(NodeSnapshot(engine: engineBytes, histories: histories))
    }

    /// Replaces the engine from a snapshot and makes the history store hold exactly its histories.
    public func restore(from snapshot: Snapshot) { prepareRestore(from: snapshot)()?() }

    /// The node starts with no snapshot and replays its log from the first entry: the history
    /// store must start empty as the engine does. It still holds what the previous run of the
    /// process applied, possibly beyond where the replay is when the first snapshot is taken,
    /// and a snapshot finding more events than the engine counts is refused as corrupt (chaos
    /// seed 2828 stopped a node so; reliability.md, bug 44). The replay writes them again.
    public func startWithoutSnapshot() {
        do {
            let report = try HistoryRecorder.reconcile(history, with: [])
            if report.dropped > 0 {
                logger.notice("no snapshot: history store emptied, the log replays it", metadata: ["histories": "\(report.dropped)"])
            }
        } catch {
            onFatal("cannot empty the history store for a start without a snapshot: \(error); this node stops")
        }
    }

    /// Decodes the snapshot, rebuilds the engine and makes the history store hold exactly the
    /// snapshot's histories, all off the loop thread (the driver applies nothing meanwhile);
    /// the install step only swaps the engine in.
    public func prepareRestore(from snapshot: Snapshot) -> SnapshotRestore {
        { [self] in
            do {
                let decoded = try NodeSnapshotCodec.decode(snapshot.data)
                var rebuilt = try WorkflowEngine.restore(decoded.engine)
                rebuilt.newestFormatVersion = newestFormatVersion
                let restored = rebuilt
                let report = try HistoryRecorder.reconcile(history, with: decoded.histories)
                let runs = decoded.histories.count
                return { [self] in
                    engine = restored
                    rolePublisher.publish(engine, force: true)
                    logger.info("restored from snapshot", metadata: [
                        "index": "\(snapshot.metadata.index)", "runs": "\(runs)",
                        "historiesUnchanged": "\(report.unchanged)", "historiesExtended": "\(report.extended)",
                        "historiesAdded": "\(report.added)", "historiesReplaced": "\(report.replaced)",
                        "historiesDropped": "\(report.dropped)",
                    ])
                    closeSignals.fireAll()
                    onRestored?()
                }
            } catch {
                // A store closed meanwhile: the node is stopping (this runs off the loop, so a
                // stop does not wait for it); at its next start it restores what its log saved
                // and catches up from the leader.
                if case HistoryError.closed = error {
                    logger.info("snapshot rebuild abandoned: the history store closed", metadata: ["index": "\(snapshot.metadata.index)"])
                    return nil
                }
                onFatal("cannot restore from snapshot \(snapshot.metadata.index): \(error)")
                return nil
            }
        }
    }

    /// The engine's state digest and the index it covers; call only on the driver's loop thread.
    func digest() -> (index: UInt64, digest: String) { (engine.lastAppliedIndex, engine.stateDigest()) }

    /// The index applied now and the work that computes the engine's state digest there, on any
    /// thread; capture on the driver's loop thread. The digest walks the whole state (about a
    /// second per 100,000 open runs), so it is on request only and never on the loop.
    func captureDigest() -> (index: UInt64, compute: @Sendable () -> String) {
        let engine = self.engine
        return (engine.lastAppliedIndex, { engine.stateDigest() })
    }
}
