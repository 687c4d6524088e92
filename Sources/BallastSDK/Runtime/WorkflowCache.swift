/// The runs a worker keeps between workflow tasks (sticky execution), at most `capacity`,
/// least recently used evicted first. Not thread-safe: the runtime guards it.
struct WorkflowCache {
    /// The most runs kept; 0 disables caching (every task replays the whole history).
    let capacity: Int
    private var entries: [String: (run: WorkflowRun, lastUse: UInt64)] = [:]
    private var clock: UInt64 = 0

    init(capacity: Int) {
        precondition(capacity >= 0, "cache capacity must not be negative")
        self.capacity = capacity
    }

    /// The number of cached runs.
    var count: Int { entries.count }

    /// Removes and returns the run cached under `runId` (the caller owns it while it runs a task).
    mutating func take(_ runId: String) -> WorkflowRun? {
        entries.removeValue(forKey: runId)?.run
    }

    /// Caches `run` as the most recently used; returns the runs evicted to make room (the
    /// caller tears them down outside its lock).
    mutating func put(_ runId: String, _ run: WorkflowRun) -> [WorkflowRun] {
        guard capacity > 0 else { return [run] }
        clock += 1
        var evicted: [WorkflowRun] = []
        if let previous = entries[runId], previous.run !== run { evicted.append(previous.run) }
        entries[runId] = (run, clock)
        while entries.count > capacity {
            // Linear scan for the oldest: fine at the default capacity, and eviction is rare
            // because closed runs leave the cache at once.
            guard let oldest = entries.min(by: { $0.value.lastUse < $1.value.lastUse }) else { break }
            entries.removeValue(forKey: oldest.key)
            evicted.append(oldest.value.run)
        }
        return evicted
    }

    /// Removes every run (worker shutdown).
    mutating func removeAll() -> [WorkflowRun] {
        let runs = entries.values.map(\.run)
        entries.removeAll()
        return runs
    }
}
