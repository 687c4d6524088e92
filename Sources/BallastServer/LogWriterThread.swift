import BallastRaft
import BallastStorage
import Dispatch

/// A log store that holds resources (files, a directory lock) to release when the node stops.
public protocol ClosableLogStore {
    /// Releases the store's files; no writes follow.
    func close() throws
}

extension WriteAheadLog: ClosableLogStore {}

/// One unit of work for the persist thread, in the order the core produced it.
struct PersistJob: Sendable {
    var hardState: HardState?
    var entries: [Entry] = []
    /// A snapshot received from the leader: installed, replacing the log.
    var snapshot: Snapshot?
    /// A snapshot taken locally: saved, then the log before it is compacted.
    var localSnapshot: Snapshot?
    var messagesAfterPersist: [Message] = []

    init(hardState: HardState?, entries: [Entry], snapshot: Snapshot?, messagesAfterPersist: [Message]) {
        self.hardState = hardState
        self.entries = entries
        self.snapshot = snapshot
        self.messagesAfterPersist = messagesAfterPersist
    }

    init(localSnapshot: Snapshot) { self.localSnapshot = localSnapshot }
}

/// The persist thread: takes every queued job, writes them all, fsyncs once, then releases the
/// messages that had to wait for durability and reports the durable index to the loop.
final class LogWriterThread<Store: RaftLogStore & SendableMetatype>: @unchecked Sendable {
    private let jobs = BlockingQueue<PersistJob>(capacity: 1 << 14)
    private var store: Store
    private let transport: any RaftTransport
    /// Called with the last durable entry after each group.
    var onPersisted: (@Sendable (LogIndex, Term) -> Void)?
    /// Called once if a write fails; the thread stops writing afterwards.
    var onFailure: (@Sendable (String) -> Void)?
    /// Groups written and fsyncs issued, for metrics.
    private(set) var groupsWritten = 0
    private let finished = DispatchSemaphore(value: 0)

    init(store: Store, transport: any RaftTransport) {
        self.store = store
        self.transport = transport
    }

    func start() {
        startThread(named: "raft-persist") { [self] in
            run()
            if let closable = store as? any ClosableLogStore {
                do { try closable.close() } catch { onFailure?("closing the log failed: \(error)") }
            }
            finished.signal()
        }
    }

    func submit(_ job: PersistJob) { jobs.push(job) }

    /// Stops taking jobs, finishes the ones queued, and returns once the thread has ended.
    func stop() {
        jobs.close()
        finished.wait()
        finished.signal()
    }

    private func run() {
        while let group = jobs.popAll() {
            do {
                let durable = try write(group)
                groupsWritten += 1
                let messages = group.flatMap(\.messagesAfterPersist)
                if !messages.isEmpty { transport.send(messages) }
                if let durable { onPersisted?(durable.index, durable.term) }
            } catch {
                onFailure?("\(error)")
                jobs.close()
                return
            }
        }
    }

    /// Writes a group in order with one sync; returns the last entry (or snapshot point) made durable.
    private func write(_ group: [PersistJob]) throws -> (index: LogIndex, term: Term)? {
        var durable: (index: LogIndex, term: Term)?
        var needsSync = false
        for job in group {
            if let snapshot = job.snapshot {
                try store.installSnapshot(snapshot)
                durable = (snapshot.metadata.index, snapshot.metadata.term)
            }
            // Entries before the hard state that may commit them: a crash keeps a prefix of the
            // unsynced writes, and a commit index must never outlive the entries it refers to.
            if let last = job.entries.last {
                try store.append(job.entries)
                durable = (last.index, last.term)
                needsSync = true
            }
            if let hardState = job.hardState {
                try store.setHardState(hardState)
                needsSync = true
            }
            if let snapshot = job.localSnapshot {
                try store.saveSnapshot(snapshot)
                try store.compact(through: snapshot.metadata.index)
            }
        }
        if needsSync { try store.sync() }
        return durable
    }
}
