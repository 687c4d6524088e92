import BallastEngine
import BallastProto

/// The leader's pending deadlines (timers, task and activity timeouts, retries, retention):
/// a min-heap on due time holding at most `capacity`, without duplicates. A pure value.
///
/// When full, a new deadline is not kept; the queue remembers the earliest such one, and once
/// the clock reaches it (or the heap has drained to half) it asks to be rebuilt from the
/// engine's `dueTimers()`, so no deadline is lost, only read again later.
struct TimerQueue: Sendable {
    /// A heap node: the order (due time, then insertion order) and where the deadline is kept.
    /// Plain words, so sifting moves 24 bytes instead of copying deadlines (strings, a payload).
    private struct Node {
        var due: Int64
        var order: UInt64
        var slot: Int32
    }

    /// A kept deadline and its hash (`hash(_:)`).
    private struct Item: Sendable {
        var timer: DueTimer
        var hash: Int
    }

    /// A deadline's hash: its due time, run id and what tells one deadline of a run from
    /// another (a timer's started event, a task's scheduled event and attempt), so the 2,000
    /// timers a run may start for the same instant do not share one. Seeded per process, as
    /// every `Hasher` is.
    static func hash(_ timer: DueTimer) -> Int {
        var hasher = Hasher()
        hasher.combine(timer.dueTimeUnixNanos)
        hasher.combine(timer.run.runId)
        switch timer.payload {
        case .timerFired(let request):
            hasher.combine(1)
            hasher.combine(request.startedEventID)
        case .workflowTaskTimedOut(let request):
            hasher.combine(2)
            hasher.combine(request.scheduledEventID)
            hasher.combine(request.attempt)
        case .activityTimedOut(let request):
            hasher.combine(3)
            hasher.combine(request.scheduledEventID)
            hasher.combine(request.attempt)
            hasher.combine(request.timeoutType.rawValue)
        case .activityRetryDue(let request):
            hasher.combine(4)
            hasher.combine(request.scheduledEventID)
            hasher.combine(request.attempt)
        default:
            hasher.combine(0)
        }
        return hasher.finalize()
    }

    let capacity: Int
    private var heap: [Node] = []
    /// Deadlines by slot; a popped one's slot is reused (`free`).
    private var items: [Item?] = []
    private var free: [Int32] = []
    /// The slot of the deadline kept for each hash, to refuse duplicates: a new deadline whose
    /// hash is here is a duplicate if it equals that slot's deadline (compared field by field).
    /// Two different deadlines with one 64-bit hash are both kept; the second is then not
    /// guarded against duplicates, which at worst proposes it twice (the engine refuses the
    /// second as stale). A set of whole deadlines, or of their serialized entries, cost a busy
    /// leader 4–8 % of its CPU in hashing and moving keys.
    private var slotByHash: [Int: Int32] = [:]
    private var nextOrder: UInt64 = 0
    /// The earliest deadline that did not fit; nil when every engine deadline is here.
    private(set) var overflowEarliestNanos: Int64?
    private var rebuildRequested = false

    /// How deadlines are hashed (`hash(_:)`; tests force collisions).
    private let hashing: @Sendable (DueTimer) -> Int

    init(capacity: Int = 1_000_000, hashing: @escaping @Sendable (DueTimer) -> Int = TimerQueue.hash) {
        precondition(capacity > 1, "a timer queue holds at least two deadlines")
        precondition(capacity <= Int(Int32.max), "slots are 32-bit")
        self.capacity = capacity
        self.hashing = hashing
    }

    /// Deadlines waiting.
    var count: Int { heap.count }
    /// The earliest due time, if any.
    var nextDueNanos: Int64? { heap.first?.due }

    /// Empties the queue (leadership ended, or before a rebuild).
    mutating func removeAll() {
        heap = []
        items = []
        free = []
        slotByHash = [:]
        overflowEarliestNanos = nil
        rebuildRequested = false
    }

    /// Adds the engine's deadlines (earliest first, so that the earliest are kept if the queue
    /// fills up); ones already held are not added twice.
    mutating func add(contentsOf timers: [DueTimer]) {
        for timer in timers { add(timer) }
    }

    /// Adds a deadline; a duplicate (same due time, run and payload) is ignored.
    mutating func add(_ timer: DueTimer) {
        let hash = hashing(timer)
        let known = slotByHash[hash]
        if let known, items[Int(known)]?.timer == timer { return }
        guard heap.count < capacity else {
            overflowEarliestNanos = min(overflowEarliestNanos ?? timer.dueTimeUnixNanos, timer.dueTimeUnixNanos)
            return
        }
        let slot: Int32
        if let reused = free.popLast() {
            slot = reused
            items[Int(slot)] = Item(timer: timer, hash: hash)
        } else {
            slot = Int32(items.count)
            items.append(Item(timer: timer, hash: hash))
        }
        if known == nil { slotByHash[hash] = slot }
        heap.append(Node(due: timer.dueTimeUnixNanos, order: nextOrder, slot: slot))
        nextOrder += 1
        siftUp(heap.count - 1)
    }

    /// Removes and returns up to `limit` deadlines due at `nowNanos` (leader wall clock), earliest first.
    mutating func popDue(nowNanos: Int64, limit: Int) -> [DueTimer] {
        var due: [DueTimer] = []
        while due.count < limit, let first = heap.first, first.due <= nowNanos {
            let last = heap.removeLast()
            if !heap.isEmpty {
                heap[0] = last
                siftDown(0)
            }
            guard let item = items[Int(first.slot)].take() else { preconditionFailure("a heap node names an empty slot") }
            free.append(first.slot)
            if slotByHash[item.hash] == first.slot { slotByHash.removeValue(forKey: item.hash) }
            due.append(item.timer)
        }
        if heap.isEmpty, !items.isEmpty {
            items = []
            free = []
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

    /// Whether the node at `lhs` goes before the one at `rhs`.
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
