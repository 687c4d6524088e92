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
    /// Every other posting list (rows by (start time, run id) for each indexed (field, value)),
    /// by number; `postingNumbers` maps (field, value) to it (sharded: a posting per unique
    /// keyword value must not rehash all at once). Numbers of emptied lists are reused.
    private var postingNumbers: ShardedDictionary<VisibilityPostingKey, Int32> = [:]
    private var lists: [SortedChunks<VisibilityRowKey>] = []
    private var freeLists: [Int32] = []
    /// The list numbers of the last workflow type and task queue posted: starts in a namespace
    /// mostly repeat them, and then file the row without building or hashing a key.
    private var recentType: (value: String, number: Int32)?
    private var recentQueue: (value: String, number: Int32)?
    /// Slots of the runs of each workflow id (a few per id).
    private(set) var byWorkflowId: ShardedDictionary<String, WorkflowSlots> = [:]

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
        return postingNumbers[key].map { lists[Int($0)] }
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

    /// The number of (field, value)'s list, made (empty) when it has none.
    private mutating func listNumber(_ posting: VisibilityPostingKey) -> Int32 {
        if let number = postingNumbers[posting] { return number }
        let number: Int32
        if let free = freeLists.popLast() {
            number = free
        } else {
            number = Int32(lists.count)
            lists.append(SortedChunks())
        }
        postingNumbers[posting] = number
        return number
    }

    /// Files `key` under (field, value) (one dictionary lookup).
    mutating func post(_ posting: VisibilityPostingKey, _ key: VisibilityRowKey) {
        if let number = Self.statusNumber(posting) {
            while byStatus.count <= number { byStatus.append(SortedChunks()) }
            byStatus[number].insert(key)
            return
        }
        lists[Int(listNumber(posting))].insert(key)
    }

    /// Files `key` under its workflow type, through the recent-list cache.
    private mutating func post(workflowType value: String, _ key: VisibilityRowKey) {
        if let cached = recentType, cached.value == value { return insert(key, list: cached.number) }
        let number = listNumber(VisibilityPostingKey(field: "WorkflowType", value: value))
        insert(key, list: number)
        recentType = (value, number)
    }

    /// Files `key` under its task queue, through the recent-list cache.
    private mutating func post(taskQueue value: String, _ key: VisibilityRowKey) {
        if let cached = recentQueue, cached.value == value { return insert(key, list: cached.number) }
        let number = listNumber(VisibilityPostingKey(field: "TaskQueue", value: value))
        insert(key, list: number)
        recentQueue = (value, number)
    }

    private mutating func insert(_ key: VisibilityRowKey, list number: Int32) {
        lists[Int(number)].insert(key)
    }

    /// Takes `key` out of (field, value)'s list; an emptied list is dropped.
    mutating func unpost(_ posting: VisibilityPostingKey, _ key: VisibilityRowKey) {
        if let number = Self.statusNumber(posting) {
            if number < byStatus.count { byStatus[number].remove(key) }
            return
        }
        guard let number = postingNumbers[posting] else { return }
        lists[Int(number)].remove(key)
        guard lists[Int(number)].isEmpty else { return }
        postingNumbers.removeValue(forKey: posting)
        lists[Int(number)] = SortedChunks()
        freeLists.append(number)
        if recentType?.number == number { recentType = nil }
        if recentQueue?.number == number { recentQueue = nil }
    }

    /// Files a new row everywhere.
    mutating func add(_ row: VisibilityRow, slot: Int32) {
        let key = row.key(slot: slot)
        byStart.insert(key)
        byClose.insert(row.closeOrderKey(slot: slot))
        post(status: row.status, key)
        post(workflowType: row.workflowType, key)
        post(taskQueue: row.taskQueue, key)
        // (A key already posted above, from an attribute of the same name, is not posted twice.)
        for posting in row.attributePostings { post(posting, key) }
        byWorkflowId.withValue(forKey: row.workflowId) { slots in
            if slots == nil { slots = WorkflowSlots(slot) } else { slots?.append(slot) }
        }
    }

    /// Moves a row whose status, close time or attributes changed.
    mutating func change(from old: VisibilityRow, to row: VisibilityRow, slot: Int32) {
        if row.closeKey != old.closeKey {
            byClose.remove(old.closeOrderKey(slot: slot))
            byClose.insert(row.closeOrderKey(slot: slot))
        }
        let key = row.key(slot: slot)
        if row.workflowType == old.workflowType, row.taskQueue == old.taskQueue, row.attributes == old.attributes,
           row.attributes.isEmpty || row.attributes[Self.statusField] == nil {
            // Only the status posting can differ (the common close): move the row between two
            // status lists. (An attribute named ExecutionStatus could hold the same posting, so
            // such rows take the general path.)
            if row.status != old.status {
                unpost(status: old.status, key)
                post(status: row.status, key)
            }
        } else {
            let before = Set(old.postings), after = Set(row.postings)
            for posting in before.subtracting(after) { unpost(posting, key) }
            for posting in after.subtracting(before) { post(posting, key) }
        }
    }

    /// Takes a row out of everything.
    mutating func drop(_ row: VisibilityRow, slot: Int32) {
        let key = row.key(slot: slot)
        byStart.remove(key)
        byClose.remove(row.closeOrderKey(slot: slot))
        for posting in row.postings { unpost(posting, key) }
        byWorkflowId.withValue(forKey: row.workflowId) { slots in
            slots?.remove(slot)
            if slots?.isEmpty == true { slots = nil }
        }
    }

    /// The slots of a workflow id's runs, in the order they were added.
    func slots(ofWorkflow workflowId: String) -> [Int32] { byWorkflowId[workflowId]?.all ?? [] }

    /// Every non-empty posting list with its (field, value), ordered by field then value.
    func sortedPostings() -> [(key: VisibilityPostingKey, list: SortedChunks<VisibilityRowKey>)] {
        var all: [(key: VisibilityPostingKey, list: SortedChunks<VisibilityRowKey>)] = []
        for (number, list) in byStatus.enumerated() where !list.isEmpty { all.append((Self.statusKey(number), list)) }
        for posting in postingNumbers.keys {
            if let number = postingNumbers[posting] { all.append((posting, lists[Int(number)])) }
        }
        return all.sorted { $0.key < $1.key }
    }
}

/// The slots of one workflow id's runs: the first inline (most ids have one run, and an array
/// per id would be an allocation per start), later ones in an array.
struct WorkflowSlots: Sendable {
    private var first: Int32
    private var more: [Int32] = []

    init(_ slot: Int32) { first = slot }

    var isEmpty: Bool { first < 0 && more.isEmpty }

    mutating func append(_ slot: Int32) {
        if first < 0 { first = slot } else { more.append(slot) }
    }

    /// Removes `slot`, keeping the others in order.
    mutating func remove(_ slot: Int32) {
        var remaining = all
        remaining.removeAll { $0 == slot }
        first = remaining.first ?? -1
        more = Array(remaining.dropFirst())
    }

    /// Every slot, in the order added.
    var all: [Int32] { first < 0 ? more : [first] + more }
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
    /// Each namespace's indexes, by number; `spaceNumbers` maps names to numbers. A namespace
    /// whose last row left holds an empty `NamespaceVisibility` and reads as absent.
    private var spaces: [NamespaceVisibility] = []
    private var spaceNumbers: [String: Int] = [:]
    /// The namespace changed last: entries mostly touch one namespace after another of the same,
    /// and then find it without hashing its name.
    private var recentSpace: (name: String, number: Int)?

    /// Number of rows.
    var count: Int { rows.count }

    /// The indexes of namespace `name`, nil when it has no rows.
    func space(_ name: String) -> NamespaceVisibility? {
        guard let number = spaceNumbers[name], !spaces[number].byStart.isEmpty else { return nil }
        return spaces[number]
    }

    /// Names of the namespaces with rows.
    var namespaceNames: [String] { spaceNumbers.keys.filter { space($0) != nil } }

    /// The number of namespace `name`'s indexes, made (empty) when it has none and `create`.
    private mutating func spaceNumber(_ name: String, create: Bool) -> Int? {
        if let recent = recentSpace, recent.name == name { return recent.number }
        let number: Int
        if let known = spaceNumbers[name] {
            number = known
        } else {
            guard create else { return nil }
            number = spaces.count
            spaces.append(NamespaceVisibility())
            spaceNumbers[name] = number
        }
        recentSpace = (name, number)
        return number
    }

    /// Adds a run that started.
    mutating func insert(_ row: VisibilityRow) {
        let slot = rows.add(row)
        let previous = slots.updateValue(slot, forKey: row.runId)
        precondition(previous == nil, "run \(row.runId) is already in the visibility index")
        guard let number = spaceNumber(row.namespace, create: true) else { return }
        // Changed in place: the collections stay uniquely referenced (no copy).
        spaces[number].add(row, slot: slot)
    }

    /// Replaces a run's row (status, close time, search attributes); the run id, namespace,
    /// workflow id and start time never change.
    mutating func update(runId: String, _ change: (inout VisibilityRow) -> Void) {
        guard let slot = slots[runId], let old = rows[slot] else { return }
        var row = old
        change(&row)
        precondition(row.runId == old.runId && row.namespace == old.namespace && row.startTime == old.startTime,
                     "a visibility update may not move a row")
        guard row.status != old.status || row.closeTime != old.closeTime || row.workflowType != old.workflowType
                || row.taskQueue != old.taskQueue || row.workflowId != old.workflowId || row.attributes != old.attributes
        else { return }
        rows[slot] = row
        guard let number = spaceNumber(row.namespace, create: false) else { return }
        spaces[number].change(from: old, to: row, slot: slot)
    }

    /// Forgets a run (its retention ended).
    mutating func remove(runId: String) {
        guard let slot = slots.removeValue(forKey: runId), let row = rows[slot] else { return }
        rows.remove(slot)
        guard let number = spaceNumber(row.namespace, create: false) else { return }
        spaces[number].drop(row, slot: slot)
        // An emptied namespace lets its structures go (as if it had never had rows).
        if spaces[number].byStart.isEmpty { spaces[number] = NamespaceVisibility() }
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
        for name in namespaceNames.sorted() {
            guard let space = space(name) else { continue }
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
