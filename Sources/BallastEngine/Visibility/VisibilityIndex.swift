import BallastProto

/// The indexes of one namespace.
struct NamespaceVisibility: Sendable {
    /// Every row by (start time, run id).
    var byStart = SortedChunks<VisibilityRowKey>()
    /// Every row by (close time, run id); open runs at `Int64.max`.
    var byClose = SortedChunks<VisibilityRowKey>()
    /// The `ExecutionStatus` posting lists, by status number (below `statusLists`): a start or a
    /// close files a row under its status without building a key string or hashing one.
    private(set) var byStatus: [SortedChunks<VisibilityRowKey>] = []
    /// Every other posting list: rows by (start time, run id) for each indexed (field, value).
    /// (Sharded: a posting per unique keyword value must not rehash all at once.)
    private(set) var postings: ShardedDictionary<VisibilityPostingKey, SortedChunks<VisibilityRowKey>> = [:]
    /// Slots of the runs of each workflow id (a few per id).
    var byWorkflowId: ShardedDictionary<String, [Int32]> = [:]

    /// Status numbers with a list in `byStatus`; any other status (none exists) is posted by key.
    static var statusLists: Int { 16 }
    static let statusField = "ExecutionStatus"

    /// The `byStatus` index of a posting key, nil when it is not an `ExecutionStatus` key in the
    /// canonical form `String(number)` that a row's status posts under.
    private static func statusNumber(_ key: VisibilityPostingKey) -> Int? {
        guard key.field == statusField, let number = Int(key.value), number >= 0, number < statusLists,
              String(number) == key.value else { return nil }
        return number
    }

    /// The posting list of (field, value); nil when no row is posted under it.
    func postingList(_ key: VisibilityPostingKey) -> SortedChunks<VisibilityRowKey>? {
        if let number = Self.statusNumber(key) {
            return number < byStatus.count && !byStatus[number].isEmpty ? byStatus[number] : nil
        }
        return postings[key]
    }

    /// Rows posted under a status number.
    func statusCount(_ number: Int) -> Int {
        (0..<byStatus.count).contains(number) ? byStatus[number].count : postingList(Self.statusKey(number))?.count ?? 0
    }

    static func statusKey(_ number: Int) -> VisibilityPostingKey {
        VisibilityPostingKey(field: statusField, value: String(number))
    }

    /// Files `key` under a row's status.
    mutating func post(status: Ballast_V1_WorkflowExecutionStatus, _ key: VisibilityRowKey) {
        let number = status.rawValue
        guard number >= 0, number < Self.statusLists else { return post(Self.statusKey(number), key) }
        while byStatus.count <= number { byStatus.append(SortedChunks()) }
        byStatus[number].insert(key)
    }

    /// Takes `key` out of a row's status list.
    mutating func unpost(status: Ballast_V1_WorkflowExecutionStatus, _ key: VisibilityRowKey) {
        let number = status.rawValue
        guard number >= 0, number < byStatus.count else { return unpost(Self.statusKey(number), key) }
        byStatus[number].remove(key)
    }

    /// Files `key` under (field, value) (one dictionary lookup).
    mutating func post(_ posting: VisibilityPostingKey, _ key: VisibilityRowKey) {
        if let number = Self.statusNumber(posting) {
            while byStatus.count <= number { byStatus.append(SortedChunks()) }
            byStatus[number].insert(key)
            return
        }
        postings.withValue(forKey: posting) { list in
            if list == nil { list = SortedChunks() }
            list?.insert(key)
        }
    }

    /// Takes `key` out of (field, value)'s list; an emptied list is dropped (one dictionary lookup).
    mutating func unpost(_ posting: VisibilityPostingKey, _ key: VisibilityRowKey) {
        if let number = Self.statusNumber(posting) {
            if number < byStatus.count { byStatus[number].remove(key) }
            return
        }
        postings.withValue(forKey: posting) { list in
            list?.remove(key)
            if list?.isEmpty == true { list = nil }
        }
    }

    /// Every non-empty posting list with its (field, value), ordered by field then value.
    func sortedPostings() -> [(key: VisibilityPostingKey, list: SortedChunks<VisibilityRowKey>)] {
        var all: [(key: VisibilityPostingKey, list: SortedChunks<VisibilityRowKey>)] = []
        for (number, list) in byStatus.enumerated() where !list.isEmpty { all.append((Self.statusKey(number), list)) }
        for posting in postings.keys { if let list = postings[posting] { all.append((posting, list)) } }
        return all.sorted { $0.key < $1.key }
    }
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
        let slot = rows.add(row)
        let previous = slots.updateValue(slot, forKey: row.runId)
        precondition(previous == nil, "run \(row.runId) is already in the visibility index")
        // Taken out while changed, so that its collections are uniquely referenced (no copy).
        var space = namespaces.removeValue(forKey: row.namespace) ?? NamespaceVisibility()
        let key = row.key(slot: slot)
        space.byStart.insert(key)
        space.byClose.insert(row.closeOrderKey(slot: slot))
        space.post(status: row.status, key)
        space.post(VisibilityPostingKey(field: "WorkflowType", value: row.workflowType), key)
        space.post(VisibilityPostingKey(field: "TaskQueue", value: row.taskQueue), key)
        // (A key already posted above, from an attribute of the same name, is not posted twice.)
        for posting in row.attributePostings { space.post(posting, key) }
        space.byWorkflowId.withValue(forKey: row.workflowId) { slots in
            if slots == nil { slots = [slot] } else { slots?.append(slot) }
        }
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
        let sameAttributes = row.attributes == old.attributes
        let sameStatus = row.status == old.status
        guard !(sameAttributes && sameStatus && row.closeTime == old.closeTime && row.workflowType == old.workflowType
                && row.taskQueue == old.taskQueue && row.workflowId == old.workflowId) else { return }
        rows[slot] = row
        guard var space = namespaces.removeValue(forKey: row.namespace) else { return }
        if row.closeKey != old.closeKey {
            space.byClose.remove(old.closeOrderKey(slot: slot))
            space.byClose.insert(row.closeOrderKey(slot: slot))
        }
        let key = row.key(slot: slot)
        if sameAttributes, row.workflowType == old.workflowType, row.taskQueue == old.taskQueue,
           row.attributes.isEmpty || row.attributes[NamespaceVisibility.statusField] == nil {
            // Only the status posting can differ (the common close): move the row between two
            // status lists. (An attribute named ExecutionStatus could hold the same posting, so
            // such rows take the general path.)
            if !sameStatus {
                space.unpost(status: old.status, key)
                space.post(status: row.status, key)
            }
        } else {
            let before = Set(old.postings), after = Set(row.postings)
            for posting in before.subtracting(after) { space.unpost(posting, key) }
            for posting in after.subtracting(before) { space.post(posting, key) }
        }
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
        for posting in row.postings { space.unpost(posting, key) }
        space.byWorkflowId.withValue(forKey: row.workflowId) { slots in
            slots?.removeAll { $0 == slot }
            if slots?.isEmpty == true { slots = nil }
        }
        if space.byStart.count > 0 { namespaces[row.namespace] = space }
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
            for (posting, list) in space.sortedPostings() {
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
