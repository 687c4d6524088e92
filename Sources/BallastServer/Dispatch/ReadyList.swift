import BallastEngine

/// A ready task waiting for a slot, with when it became known to the dispatcher.
struct QueuedTask: Sendable, Equatable {
    var task: ReadyTask
    /// Monotonic nanoseconds (the shell's clock) when the task was queued; for the latency metric.
    var readyAtNanos: Int64
}

/// The ready tasks of one kind of one queue, in engine sequence order (the dispatch order),
/// holding at most `capacity`; when full it keeps the earliest tasks and reports overflow.
struct ReadyList: Sendable {
    let capacity: Int
    private var entries: [QueuedTask] = []
    private var head = 0
    private var keys: Set<ReadyTaskKey> = []

    init(capacity: Int) {
        precondition(capacity > 0, "a ready list holds at least one task")
        self.capacity = capacity
    }

    /// Tasks waiting.
    var count: Int { entries.count - head }
    /// The earliest task, if any.
    var first: QueuedTask? { head < entries.count ? entries[head] : nil }

    /// Whether this attempt is queued already.
    func contains(_ key: ReadyTaskKey) -> Bool { keys.contains(key) }

    /// Inserts in sequence order; returns false when the task was not kept (full, and later
    /// than every queued task) or a later task was evicted to make room: either way the
    /// queue no longer holds every ready task and must be re-read from the engine later.
    mutating func insert(_ queued: QueuedTask) -> Bool {
        let key = ReadyTaskKey(queued.task)
        guard !keys.contains(key) else { return true }
        var complete = true
        if count >= capacity {
            guard let last = entries.last, queued.task.sequence < last.task.sequence else { return false }
            entries.removeLast()
            keys.remove(ReadyTaskKey(last.task))
            complete = false
        }
        keys.insert(key)
        if let last = entries.last, head < entries.count, last.task.sequence > queued.task.sequence {
            let position = insertionPoint(queued.task.sequence)
            entries.insert(queued, at: position)
        } else {
            entries.append(queued)
        }
        return complete
    }

    /// Removes and returns the earliest task.
    mutating func removeFirst() -> QueuedTask? {
        guard head < entries.count else { return nil }
        let queued = entries[head]
        head += 1
        keys.remove(ReadyTaskKey(queued.task))
        if head > 1_024, head * 2 > entries.count {
            entries.removeFirst(head)
            head = 0
        }
        return queued
    }

    private func insertionPoint(_ sequence: UInt64) -> Int {
        var low = head, high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if entries[middle].task.sequence < sequence { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
