import BallastEngine
import BallastProto
import BallastRaft
import Logging
import SwiftProtobuf

/// The workflow engine as the node's replicated state machine: decodes each committed entry and
/// applies it. An entry this node cannot apply (an engine format version it does not know, or
/// bytes that are not an engine entry) stops the node through `onFatal` instead of letting it
/// diverge from its peers.
public final class EngineStateMachine: RaftStateMachine, @unchecked Sendable {
    private var engine = WorkflowEngine()
    private let logger: Logger
    private let onFatal: @Sendable (String) -> Void
    /// Told, on the loop thread, the result of every applied engine entry (set before the node starts).
    var onApplied: ((UInt64, ApplyResult) -> Void)?
    /// Told, on the loop thread, that the engine was replaced from a snapshot (set before the node starts).
    var onRestored: (() -> Void)?

    /// Creates an empty engine.
    public init(logger: Logger, onFatal: @escaping @Sendable (String) -> Void) {
        self.logger = logger
        self.onFatal = onFatal
    }

    /// Applies a committed engine entry; the `ApplyResult` goes back to the proposer.
    public func apply(_ entry: Entry) -> (any Sendable)? {
        guard entry.kind == .normal else { return nil }
        let decoded: Ballast_V1_EngineEntry
        do {
            decoded = try Ballast_V1_EngineEntry(serializedBytes: entry.data)
        } catch {
            onFatal("committed entry \(entry.index) is not an engine entry: \(error); this node stops rather than diverge")
            return nil
        }
        do {
            let result = try engine.apply(decoded, index: entry.index.rawValue)
            onApplied?(entry.index.rawValue, result)
            return result
        } catch {
            onFatal("cannot apply committed entry \(entry.index): \(error); this node stops rather than diverge")
            return nil
        }
    }

    /// Runs `body` against the engine; call only on the driver's loop thread (e.g. after a read).
    func read<T>(_ body: (WorkflowEngine) throws -> T) rethrows -> T { try body(engine) }

    public func takeSnapshot() -> [UInt8] { engine.snapshot() }

    public func restore(from snapshot: Snapshot) {
        do {
            engine = try WorkflowEngine.restore(snapshot.data)
            onRestored?()
        } catch {
            onFatal("cannot restore the engine from snapshot \(snapshot.metadata.index): \(error)")
        }
    }

    /// The engine's state digest and the index it covers; call only on the driver's loop thread.
    /// It walks the whole state (about a second per 100,000 open runs), so it is on request only.
    func digest() -> (index: UInt64, digest: String) { (engine.lastAppliedIndex, engine.stateDigest()) }
}
