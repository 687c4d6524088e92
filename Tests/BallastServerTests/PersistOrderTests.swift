import BallastRaft
@testable import BallastServer
import Synchronization
import Testing

/// A store that records the order of calls and keeps nothing.
final class RecordingStore: RaftLogStore, @unchecked Sendable {
    let calls = Mutex<[String]>([])
    func restore() throws -> RestoredState { RestoredState() }
    func setHardState(_ state: HardState) throws { calls.withLock { $0.append("hardState(commit \(state.commit.rawValue))") } }
    func append(_ entries: [Entry]) throws { calls.withLock { $0.append("append(\(entries.count))") } }
    func sync() throws { calls.withLock { $0.append("sync") } }
    func saveSnapshot(_ snapshot: Snapshot) throws { calls.withLock { $0.append("saveSnapshot") } }
    func installSnapshot(_ snapshot: Snapshot) throws { calls.withLock { $0.append("installSnapshot") } }
    func compact(through index: LogIndex) throws { calls.withLock { $0.append("compact") } }
}

/// Collects what the persist thread sends.
final class CollectingTransport: RaftTransport {
    let sent = Mutex<[Message]>([])
    func send(_ messages: [Message]) { sent.withLock { $0 += messages } }
}

@Suite("persist thread")
struct PersistOrderTests {
    @Test("entries are written before the hard state that commits them, then one sync, then the acks go out")
    func entriesBeforeHardState() async throws {
        let store = RecordingStore()
        let transport = CollectingTransport()
        let writer = LogWriterThread(store: store, transport: transport)
        let persisted = Mutex<[LogIndex]>([])
        writer.onPersisted = { index, _ in persisted.withLock { $0.append(index) } }
        writer.start()
        let ack = Message(from: NodeID(2), to: NodeID(1), term: Term(3),
                          body: .appendResponse(AppendResponse(success: true, index: LogIndex(5))))
        writer.submit(PersistJob(
            hardState: HardState(term: Term(3), votedFor: nil, commit: LogIndex(5)),
            entries: [Entry(term: Term(3), index: LogIndex(4)), Entry(term: Term(3), index: LogIndex(5))],
            snapshot: nil, messagesAfterPersist: [ack]))
        try await waitUntil("the job is durable") { persisted.withLock { $0 } == [LogIndex(5)] }
        writer.stop()
        #expect(store.calls.withLock { $0 } == ["append(2)", "hardState(commit 5)", "sync"])
        #expect(transport.sent.withLock { $0 } == [ack])
    }
}
