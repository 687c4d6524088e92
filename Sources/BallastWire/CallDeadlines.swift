import BallastHTTP2
import NIOCore

/// The deadlines (grpc-timeout) of one connection's calls, served by a single event-loop task.
///
/// A task per call put every call in flight into the event loop's timer heap, and NIO cancels a
/// task by searching that heap from the start: with a few hundred calls in flight, scheduling and
/// cancelling took a quarter of a leader's event-loop time. Here a finished call leaves its entry
/// behind (nothing to search); entries of finished calls are dropped when they reach the top or
/// when they outnumber the calls in flight, and the one task is armed for the earliest entry only.
/// Stream ids are never reused on a connection, so an entry can never be taken for a later call.
/// Not thread-safe: owned by its connection on the event loop.
struct CallDeadlines {
    /// A heap node: plain words, so sifting is cheap.
    private struct Entry {
        var uptimeNanoseconds: UInt64
        var streamID: HTTP2StreamID
    }

    /// Binary min-heap on `uptimeNanoseconds`.
    private var heap: [Entry] = []
    /// The connection's one task and the deadline it is scheduled for.
    private var task: Scheduled<Void>?
    private(set) var armedFor: NIODeadline?

    /// Entries kept, including those of finished calls not yet dropped.
    var count: Int { heap.count }

    /// The earliest entry's deadline.
    var earliest: NIODeadline? { heap.first.map { NIODeadline.uptimeNanoseconds($0.uptimeNanoseconds) } }

    /// Adds a call's deadline and arms the task (`schedule`) when nothing is armed or this
    /// deadline comes before the armed one. `liveCalls` and `isLive` say which calls are in
    /// flight (see `compactIfSparse`).
    mutating func add(_ deadline: NIODeadline, streamID: HTTP2StreamID, liveCalls: Int,
                      isLive: (HTTP2StreamID) -> Bool, schedule: (NIODeadline) -> Scheduled<Void>) {
        heap.append(Entry(uptimeNanoseconds: deadline.uptimeNanoseconds, streamID: streamID))
        siftUp(heap.count - 1)
        if armedFor.map({ deadline < $0 }) ?? true { rearm(isLive: isLive, schedule: schedule) }
        compactIfSparse(liveCalls: liveCalls, isLive: isLive)
    }

    /// The task ran: removes and returns the entries due at `now`, earliest first. The caller
    /// ends those calls still in flight, then calls `rearm`.
    mutating func fired(now: NIODeadline) -> [HTTP2StreamID] {
        task = nil
        armedFor = nil
        var due: [HTTP2StreamID] = []
        while let first = heap.first, first.uptimeNanoseconds <= now.uptimeNanoseconds { due.append(removeFirst().streamID) }
        return due
    }

    /// Arms the task for the earliest call still in flight (dropping entries of finished calls
    /// from the top first), cancelling the task armed before; none when no call has a deadline.
    mutating func rearm(isLive: (HTTP2StreamID) -> Bool, schedule: (NIODeadline) -> Scheduled<Void>) {
        task?.cancel()
        task = nil
        while let first = heap.first, !isLive(first.streamID) { _ = removeFirst() }
        armedFor = earliest
        if let armedFor { task = schedule(armedFor) }
    }

    /// Keeps only the entries `isLive` accepts once entries outnumber `liveCalls` more than twice
    /// (plus a small floor), so memory follows the calls in flight, not the call rate times the
    /// timeout. Amortized constant time per added entry. The armed task stays: at worst it
    /// fires for an entry no longer kept and finds nothing due.
    mutating func compactIfSparse(liveCalls: Int, isLive: (HTTP2StreamID) -> Bool) {
        guard heap.count > 2 * liveCalls + 64 else { return }
        heap.removeAll { !isLive($0.streamID) }
        var index = heap.count / 2
        while index > 0 {
            index -= 1
            siftDown(index)
        }
    }

    /// Cancels the task and forgets every entry (the connection closed).
    mutating func removeAll() {
        task?.cancel()
        task = nil
        heap.removeAll()
        armedFor = nil
    }

    private mutating func removeFirst() -> Entry {
        let first = heap[0]
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            siftDown(0)
        }
        return first
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        let entry = heap[child]
        while child > 0 {
            let parent = (child - 1) / 2
            guard entry.uptimeNanoseconds < heap[parent].uptimeNanoseconds else { break }
            heap[child] = heap[parent]
            child = parent
        }
        heap[child] = entry
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        let entry = heap[parent]
        let count = heap.count
        while true {
            var child = 2 * parent + 1
            guard child < count else { break }
            if child + 1 < count, heap[child + 1].uptimeNanoseconds < heap[child].uptimeNanoseconds { child += 1 }
            guard heap[child].uptimeNanoseconds < entry.uptimeNanoseconds else { break }
            heap[parent] = heap[child]
            parent = child
        }
        heap[parent] = entry
    }
}
