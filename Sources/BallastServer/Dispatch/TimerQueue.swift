import BallastEngine
import BallastProto

/// The leader's pending deadlines (timers, task and activity timeouts, retries, retention):
/// a min-heap on due time holding at most `capacity`, without duplicates. A pure value.
///
/// When full, a new deadline is not kept; the queue remembers the earliest such one, and once
/// the clock reaches it (or the heap has drained to half) it asks to be rebuilt from the
/// engine's `dueTimers()`, so no deadline is lost, only read again later.
struct TimerQueue: Sendable {
    struct Item: Sendable {
        /// The heap's order: due time, then insertion order (kept beside the timer so that
        /// comparing two items reads two words instead of copying the items).
        var due: Int64
        var order: UInt64
        var timer: DueTimer
        var key: [UInt8]
    }

    let capacity: Int
    private var heap: [Item] = []
    private var keys: Set<[UInt8]> = []
    private var nextOrder: UInt64 = 0
    /// The earliest deadline that did not fit; nil when every engine deadline is here.
    private(set) var overflowEarliestNanos: Int64?
    private var rebuildRequested = false

    init(capacity: Int = 1_000_000) {
        precondition(capacity > 1, "a timer queue holds at least two deadlines")
        self.capacity = capacity
    }

    /// Deadlines waiting.
    var count: Int { heap.count }
    /// The earliest due time, if any.
    var nextDueNanos: Int64? { heap.first?.due }

    /// Empties the queue (leadership ended, or before a rebuild).
    mutating func removeAll() {
        heap = []
        keys = []
        overflowEarliestNanos = nil
        rebuildRequested = false
    }

    /// Replaces the content with the engine's deadlines (earliest first): the first `capacity` are kept.
    mutating func rebuild(from timers: [DueTimer]) {
        removeAll()
        for timer in timers { add(timer) }
    }

    /// Adds a deadline; a duplicate (same due time and payload) is ignored.
    mutating func add(_ timer: DueTimer) {
        let key = Self.key(timer)
        guard !keys.contains(key) else { return }
        guard heap.count < capacity else {
            overflowEarliestNanos = min(overflowEarliestNanos ?? timer.dueTimeUnixNanos, timer.dueTimeUnixNanos)
            return
        }
        keys.insert(key)
        heap.append(Item(due: timer.dueTimeUnixNanos, order: nextOrder, timer: timer, key: key))
        nextOrder += 1
        siftUp(heap.count - 1)
    }

    /// Removes and returns up to `limit` deadlines due at `nowNanos` (leader wall clock), earliest first.
    mutating func popDue(nowNanos: Int64, limit: Int) -> [DueTimer] {
        var due: [DueTimer] = []
        while due.count < limit, !heap.isEmpty, heap[0].due <= nowNanos {
            due.append(heap[0].timer)
            keys.remove(heap[0].key)
            let last = heap.removeLast()
            if !heap.isEmpty {
                heap[0] = last
                siftDown(0)
            }
        }
        return due
    }

    /// Whether deadlines that did not fit must now be read from the engine; true once per overflow.
    mutating func takeRebuildRequest(nowNanos: Int64) -> Bool {
        guard let earliest = overflowEarliestNanos, !rebuildRequested else { return false }
        guard earliest <= nowNanos || heap.count <= capacity / 2 else { return false }
        rebuildRequested = true
        return true
    }

    static func key(_ timer: DueTimer) -> [UInt8] {
        var bytes: [UInt8] = (try? timer.makeEntry(leaderTimeUnixNanos: 0).serializedBytes()) ?? []
        withUnsafeBytes(of: timer.dueTimeUnixNanos.littleEndian) { bytes.append(contentsOf: $0) }
        return bytes
    }

    /// Whether the item at `lhs` goes before the one at `rhs`.
    private func before(_ lhs: Int, _ rhs: Int) -> Bool {
        heap[lhs].due != heap[rhs].due ? heap[lhs].due < heap[rhs].due : heap[lhs].order < heap[rhs].order
    }

    private mutating func siftUp(_ index: Int) {
        var child = index
        while child > 0 {
            let parent = (child - 1) / 2
            guard before(child, parent) else { return }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ index: Int) {
        var parent = index
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < heap.count, before(left, smallest) { smallest = left }
            if right < heap.count, before(right, smallest) { smallest = right }
            guard smallest != parent else { return }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
