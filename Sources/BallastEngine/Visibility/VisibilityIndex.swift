import BallastProto

/// The indexes of one namespace.
struct NamespaceVisibility: Sendable {
    /// Every row by (start time, run id).
    var byStart = SortedChunks<VisibilityRowKey>()
    /// Every row by (close time, run id); open runs at `Int64.max`.
    var byClose = SortedChunks<VisibilityRowKey>()
    /// Rows by (start time, run id) for each indexed (field, value).
    /// (Sharded: a posting per unique keyword value must not rehash all at once.)
    var postings: ShardedDictionary<VisibilityPostingKey, SortedChunks<VisibilityRowKey>> = [:]
    /// Slots of the runs of each workflow id (a few per id).
    var byWorkflowId: ShardedDictionary<String, [Int32]> = [:]
}

/// The visibility index: every run the engine remembers (open, and closed until its
/// retention ends), ordered by start and close time, with posting lists per workflow type,
/// status, task queue and keyword/bool search attribute value.
///
/// It is part of the replicated state: the engine updates it while applying entries (start,
/// upsert, close, continue-as-new, retention), so every node holds the same index at the same
/// index and a new leader answers at once. A snapshot carries the rows (the runs and closed
/// summaries) and the index's hash; restore rebuilds the ordered structures from the rows and
/// checks the hash. Memory is bounded by the engine's run limits (open runs, closed summaries).
struct VisibilityIndex: Sendable {
    var rows = VisibilityRowTable()
    var slots: ShardedDictionary<String, Int32> = [:]
    var namespaces: [String: NamespaceVisibility] = [:]

    /// Number of rows.
    var count: Int { rows.count }

    /// Adds a run that started.
    mutating func insert(_ row: VisibilityRow) {
        precondition(slots[row.runId] == nil, "run \(row.runId) is already in the visibility index")
        let slot = rows.add(row)
        slots[row.runId] = slot
        // Taken out while changed, so that its collections are uniquely referenced (no copy).
        var space = namespaces.removeValue(forKey: row.namespace) ?? NamespaceVisibility()
        space.byStart.insert(row.key(slot: slot))
        space.byClose.insert(row.closeOrderKey(slot: slot))
        for posting in row.postings { Self.post(posting, row.key(slot: slot), in: &space) }
        if space.byWorkflowId[row.workflowId] == nil { space.byWorkflowId[row.workflowId] = [] }
        space.byWorkflowId[row.workflowId]?.append(slot)
        namespaces[row.namespace] = space
    }

    /// Replaces a run's row (status, close time, search attributes); the run id, namespace,
    /// workflow id and start time never change.
    mutating func update(runId: String, _ change: (inout VisibilityRow) -> Void) {
        guard let slot = slots[runId], let old = rows[slot] else { return }
        var row = old
        change(&row)
        precondition(row.runId == old.runId && row.namespace == old.namespace && row.startTime == old.startTime,
                     "a visibility update may not move a row")
        guard row != old else { return }
        rows[slot] = row
        guard var space = namespaces.removeValue(forKey: row.namespace) else { return }
        if row.closeKey != old.closeKey {
            space.byClose.remove(old.closeOrderKey(slot: slot))
            space.byClose.insert(row.closeOrderKey(slot: slot))
        }
        let before = Set(old.postings), after = Set(row.postings)
        let key = row.key(slot: slot)
        for posting in before.subtracting(after) { Self.unpost(posting, key, in: &space) }
        for posting in after.subtracting(before) { Self.post(posting, key, in: &space) }
        namespaces[row.namespace] = space
    }

    /// Forgets a run (its retention ended).
    mutating func remove(runId: String) {
        guard let slot = slots.removeValue(forKey: runId), let row = rows[slot] else { return }
        rows.remove(slot)
        guard var space = namespaces.removeValue(forKey: row.namespace) else { return }
        let key = row.key(slot: slot)
        space.byStart.remove(key)
        space.byClose.remove(row.closeOrderKey(slot: slot))
        for posting in row.postings { Self.unpost(posting, key, in: &space) }
        if var slotsOfWorkflow = space.byWorkflowId[row.workflowId] {
            slotsOfWorkflow.removeAll { $0 == slot }
            space.byWorkflowId[row.workflowId] = slotsOfWorkflow.isEmpty ? nil : slotsOfWorkflow
        }
        if space.byStart.count > 0 { namespaces[row.namespace] = space }
    }

    private static func post(_ posting: VisibilityPostingKey, _ key: VisibilityRowKey, in space: inout NamespaceVisibility) {
        if space.postings[posting] == nil { space.postings[posting] = SortedChunks() }
        space.postings[posting]?.insert(key)
    }

    private static func unpost(_ posting: VisibilityPostingKey, _ key: VisibilityRowKey, in space: inout NamespaceVisibility) {
        guard var list = space.postings.removeValue(forKey: posting) else { return }
        list.remove(key)
        if !list.isEmpty { space.postings[posting] = list }
    }

    /// A 64-bit hash of the whole index in its canonical order (namespaces by name, rows by
    /// start order, the close order, every posting list by field and value), for the state
    /// digest and the snapshot's self-check.
    func digest() -> UInt64 {
        var hash = RollingHash.empty
        func add(_ value: Int64) { hash = RollingHash.combine(hash, Self.bytes(UInt64(bitPattern: value))) }
        func add(_ text: String) {
            add(Int64(text.utf8.count))
            hash = RollingHash.combine(hash, text.utf8)
        }
        for name in namespaces.keys.sorted() {
            guard let space = namespaces[name] else { continue }
            add(name)
            for key in space.byStart.elements {
                guard let row = rows[key.slot] else { continue }
                add(key.primary); add(row.runId); add(row.workflowId); add(row.workflowType); add(row.taskQueue)
                add(Int64(row.status.rawValue)); add(row.closeTime)
                for attribute in row.attributes.keys.sorted() {
                    add(attribute)
                    if let value = row.attributes[attribute], let bytes = try? value.serializedBytes() as [UInt8] {
                        hash = RollingHash.combine(hash, bytes)
                    }
                }
            }
            add(Int64(space.byClose.count))
            for key in space.byClose.elements { add(key.primary); add(key.runId) }
            for posting in space.postings.keys.sorted() {
                guard let list = space.postings[posting] else { continue }
                add(posting.field); add(posting.value); add(Int64(list.count))
                for key in list.elements { add(key.runId) }
            }
        }
        return hash
    }

    private static func bytes(_ value: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
    }
}

extension VisibilityRow {
    /// The row of an open run.
    init(_ run: RunState) {
        self.init(namespace: run.key.namespace, workflowId: run.key.workflowId, runId: run.key.runId,
                  workflowType: run.workflowType, taskQueue: run.taskQueue, status: .running, startTime: run.startTime,
                  attributes: run.searchAttributes.indexedFields)
    }

    /// The row of a closed run.
    init(_ summary: ClosedRun) {
        self.init(namespace: summary.key.namespace, workflowId: summary.key.workflowId, runId: summary.key.runId,
                  workflowType: summary.workflowType, taskQueue: summary.taskQueue, status: summary.status,
                  startTime: summary.startTime, closeTime: summary.closeTime,
                  attributes: summary.searchAttributes.indexedFields)
    }
}
