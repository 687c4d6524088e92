/// A min-heap of simulation events ordered by (time, sequence number): events at the same
/// simulated time run in the order they were scheduled, so a run never depends on hashing.
struct EventQueue<Payload> {
    /// One scheduled event.
    struct Item {
        var time: UInt64
        var sequence: UInt64
        var payload: Payload
    }

    private var heap: [Item] = []
    private var nextSequence: UInt64 = 0
    /// Upper bound on queued events; a run that exceeds it is a simulator bug (runaway scheduling).
    let capacity: Int

    /// Creates an empty queue holding at most `capacity` events.
    init(capacity: Int) { self.capacity = capacity }

    /// Number of queued events.
    var count: Int { heap.count }

    /// Schedules `payload` at `time`.
    mutating func push(_ payload: Payload, at time: UInt64) {
        precondition(heap.count < capacity, "event queue over its bound of \(capacity)")
        heap.append(Item(time: time, sequence: nextSequence, payload: payload))
        nextSequence += 1
        siftUp(heap.count - 1)
    }

    /// Removes and returns the earliest event.
    mutating func pop() -> Item? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let item = heap.removeLast()
        if !heap.isEmpty { siftDown(0) }
        return item
    }

    private static func less(_ a: Item, _ b: Item) -> Bool {
        a.time != b.time ? a.time < b.time : a.sequence < b.sequence
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.less(heap[child], heap[parent]) else { return }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { return }
            var smallest = left
            if left + 1 < heap.count && Self.less(heap[left + 1], heap[left]) { smallest = left + 1 }
            guard Self.less(heap[smallest], heap[parent]) else { return }
            heap.swapAt(smallest, parent)
            parent = smallest
        }
    }
}
