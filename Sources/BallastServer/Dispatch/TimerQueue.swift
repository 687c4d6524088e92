import BallastEngine
import BallastProto

/// The leader's pending deadlines (timers, task and activity timeouts, retries, retention):
/// a min-max heap on due time holding at most `capacity`, without duplicates. A pure value.
///
/// When full it keeps the earliest deadlines: a new one earlier than the latest held takes
/// that one's place, a later one is not kept. The queue remembers the earliest deadline it let
/// go, and once the clock reaches it (or the heap has drained to half) it asks to be refilled
/// from the engine's `dueTimers()`, so no deadline is lost, only read again later. (Dropping
/// every newcomer instead, as it once did, made a full queue — a million deadlines — let go of
/// each new task timeout and ask for a refill every few seconds.)
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

    /// Forgets what the queue let go (before it is refilled from the engine's deadlines).
    mutating func clearOverflow() {
        overflowEarliestNanos = nil
        rebuildRequested = false
    }

    /// Empties the queue (leadership ended, or before a rebuild).
    mutating func removeAll() {
        heap = []
        items = []
        free = []
        slotByHash = [:]
        overflowEarliestNanos = nil
        rebuildRequested = false
    }

    /// Adds the engine's deadlines (earliest first, so that a full queue drops the latest
    /// without taking any in first); ones already held are not added twice.
    mutating func add(contentsOf timers: [DueTimer]) {
        for timer in timers { add(timer) }
    }

    /// Adds a deadline; a duplicate (same due time, run and payload) is ignored. When full, the
    /// latest of the held deadlines and the new one is let go (the new one on a tie).
    mutating func add(_ timer: DueTimer) {
        let hash = hashing(timer)
        let known = slotByHash[hash]
        if let known, items[Int(known)]?.timer == timer { return }
        if heap.count >= capacity {
            let latest = latestIndex
            guard timer.dueTimeUnixNanos < heap[latest].due else {
                overflowEarliestNanos = min(overflowEarliestNanos ?? timer.dueTimeUnixNanos, timer.dueTimeUnixNanos)
                return
            }
            let evicted = remove(at: latest)
            overflowEarliestNanos = min(overflowEarliestNanos ?? evicted.dueTimeUnixNanos, evicted.dueTimeUnixNanos)
        }
        // The hash's slot may have gone with the evicted deadline.
        let holder = slotByHash[hash]
        let slot: Int32
        if let reused = free.popLast() {
            slot = reused
            items[Int(slot)] = Item(timer: timer, hash: hash)
        } else {
            slot = Int32(items.count)
            items.append(Item(timer: timer, hash: hash))
        }
        if holder == nil { slotByHash[hash] = slot }
        heap.append(Node(due: timer.dueTimeUnixNanos, order: nextOrder, slot: slot))
        nextOrder += 1
        bubbleUp(heap.count - 1)
    }

    /// Removes and returns up to `limit` deadlines due at `nowNanos` (leader wall clock), earliest first.
    mutating func popDue(nowNanos: Int64, limit: Int) -> [DueTimer] {
        var due: [DueTimer] = []
        while due.count < limit, let first = heap.first, first.due <= nowNanos {
            due.append(remove(at: 0))
        }
        if heap.isEmpty, !items.isEmpty {
            items = []
            free = []
        }
        return due
    }

    /// The index of the latest deadline: the root when alone, else the later of its children
    /// (the max levels' top).
    private var latestIndex: Int {
        guard heap.count > 1 else { return 0 }
        return heap.count > 2 && before(1, 2) ? 2 : 1
    }

    /// Removes the node at `index` (the root or the latest) and returns its deadline.
    private mutating func remove(at index: Int) -> DueTimer {
        let node = heap[index]
        let last = heap.removeLast()
        if index < heap.count {
            heap[index] = last
            trickleDown(index)
        }
        guard let item = items[Int(node.slot)].take() else { preconditionFailure("a heap node names an empty slot") }
        free.append(node.slot)
        if slotByHash[item.hash] == node.slot { slotByHash.removeValue(forKey: item.hash) }
        return item.timer
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

    // A min-max heap (Atkinson et al., 1986): nodes on even levels (the root's) go before all
    // their descendants, nodes on odd levels after all theirs. So the earliest is the root and
    // the latest one of its children.

    /// Whether `index` is on a min level (even depth).
    private static func isMinLevel(_ index: Int) -> Bool {
        (Int.bitWidth - (index + 1).leadingZeroBitCount - 1) % 2 == 0
    }

    private mutating func bubbleUp(_ index: Int) {
        guard index > 0 else { return }
        let parent = (index - 1) / 2
        if Self.isMinLevel(index) {
            if before(parent, index) {
                heap.swapAt(index, parent)
                bubbleUp(parent, earliest: false)
            } else {
                bubbleUp(index, earliest: true)
            }
        } else {
            if before(index, parent) {
                heap.swapAt(index, parent)
                bubbleUp(parent, earliest: true)
            } else {
                bubbleUp(index, earliest: false)
            }
        }
    }

    /// Moves the node at `index` up its own kind of levels (min levels when `earliest`).
    private mutating func bubbleUp(_ index: Int, earliest: Bool) {
        var child = index
        while child >= 3 {
            let grandparent = ((child - 1) / 2 - 1) / 2
            guard earliest ? before(child, grandparent) : before(grandparent, child) else { return }
            heap.swapAt(child, grandparent)
            child = grandparent
        }
    }

    private mutating func trickleDown(_ index: Int) {
        let earliest = Self.isMinLevel(index)
        // Whether the node at `lhs` belongs above the one at `rhs` on this kind of level.
        func above(_ lhs: Int, _ rhs: Int) -> Bool { earliest ? before(lhs, rhs) : before(rhs, lhs) }
        var parent = index
        while true {
            let firstChild = 2 * parent + 1
            guard firstChild < heap.count else { return }
            // The most extreme of the children and grandchildren.
            var best = firstChild
            if firstChild + 1 < heap.count, above(firstChild + 1, best) { best = firstChild + 1 }
            var grandchild = 2 * firstChild + 1
            while grandchild <= 2 * firstChild + 4, grandchild < heap.count {
                if above(grandchild, best) { best = grandchild }
                grandchild += 1
            }
            guard above(best, parent) else { return }
            heap.swapAt(best, parent)
            guard best > firstChild + 1 else { return }  // a child: done
            // A grandchild: it may now belong above its own parent, on the other kind of level.
            let middle = (best - 1) / 2
            if above(middle, best) { heap.swapAt(best, middle) }
            parent = best
        }
    }
}
