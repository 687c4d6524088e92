import BallastProto

/// What the visibility index holds of one run (open or closed): the fields queries test.
/// The strings and the attribute map share storage with the run's own state (copy on write).
struct VisibilityRow: Equatable, Sendable {
    var namespace: String
    var workflowId: String
    var runId: String
    var workflowType: String
    var taskQueue: String
    var status: Ballast_V1_WorkflowExecutionStatus
    var startTime: Int64
    /// 0 while the run is open.
    var closeTime: Int64 = 0
    var attributes: [String: Ballast_V1_SearchAttributeValue]

    /// The close-order key: open runs sort after every closed one.
    var closeKey: Int64 { status == .running ? Int64.max : closeTime }

    func key(slot: Int32) -> VisibilityRowKey { VisibilityRowKey(primary: startTime, runId: runId, slot: slot) }
    func closeOrderKey(slot: Int32) -> VisibilityRowKey { VisibilityRowKey(primary: closeKey, runId: runId, slot: slot) }

    /// Whether `test` holds for some value of `field` (none when the field is null; every
    /// element of a keyword list).
    func anyValue(_ field: VisibilityField, _ test: (VisibilityValue) -> Bool) -> Bool {
        switch field {
        case .workflowId: return test(.text(workflowId))
        case .runId: return test(.text(runId))
        case .workflowType: return test(.text(workflowType))
        case .taskQueue: return test(.text(taskQueue))
        case .executionStatus: return test(.int(Int64(status.rawValue)))
        case .startTime: return test(.int(startTime))
        case .closeTime: return status == .running ? false : test(.int(closeTime))
        case .executionDuration: return status == .running ? false : test(.int(closeTime &- startTime))
        case .attribute(let name, _):
            switch attributes[name]?.value {
            case .keywordValue(let text)?, .textValue(let text)?: return test(.text(text))
            case .keywordListValue(let list)?: return list.values.contains { test(.text($0)) }
            case .intValue(let number)?: return test(.int(number))
            case .doubleValue(let number)?: return test(.double(number))
            case .boolValue(let flag)?: return test(.bool(flag))
            case .datetimeUnixNanos(let nanos)?: return test(.int(nanos))
            case nil: return false
            }
        }
    }

    /// The (field, value) pairs this row is posted under: type, status, task queue, and its
    /// keyword, keyword-list and bool search attributes.
    var postings: [VisibilityPostingKey] {
        [VisibilityPostingKey(field: "WorkflowType", value: workflowType),
         VisibilityPostingKey(field: NamespaceVisibility.statusField, value: String(status.rawValue)),
         VisibilityPostingKey(field: "TaskQueue", value: taskQueue)] + attributePostings
    }

    /// The postings of its keyword, keyword-list and bool search attributes.
    var attributePostings: [VisibilityPostingKey] {
        var keys: [VisibilityPostingKey] = []
        guard !attributes.isEmpty else { return keys }
        for name in attributes.keys.sorted() {
            switch attributes[name]?.value {
            case .keywordValue(let text)?: keys.append(VisibilityPostingKey(field: name, value: text))
            case .boolValue(let flag)?: keys.append(VisibilityPostingKey(field: name, value: flag ? "true" : "false"))
            case .keywordListValue(let list)?:
                for text in Set(list.values).sorted() { keys.append(VisibilityPostingKey(field: name, value: text)) }
            default: break
            }
        }
        return keys
    }
}

/// A row's place in an ordered index: a time (start or close) then the run id; `slot` finds
/// the row and takes no part in the order.
struct VisibilityRowKey: Comparable, Sendable {
    var primary: Int64
    var runId: String
    var slot: Int32

    static func < (left: Self, right: Self) -> Bool {
        left.primary != right.primary ? left.primary < right.primary : left.runId < right.runId
    }

    static func == (left: Self, right: Self) -> Bool {
        left.primary == right.primary && left.runId == right.runId
    }
}

/// A (field, value) pair with a posting list.
struct VisibilityPostingKey: Hashable, Comparable, Sendable {
    var field: String
    var value: String

    static func < (left: Self, right: Self) -> Bool { (left.field, left.value) < (right.field, right.value) }
}

/// Rows by slot, in pages of 4,096, so growing never copies all rows at once.
struct VisibilityRowTable: Sendable {
    static var pageSize: Int { 4_096 }
    private var pages: [[VisibilityRow?]] = []
    private var free: [Int32] = []
    /// Live rows.
    private(set) var count = 0

    subscript(slot: Int32) -> VisibilityRow? {
        get {
            let page = Int(slot) / Self.pageSize
            return page < pages.count ? pages[page][Int(slot) % Self.pageSize] : nil
        }
        _modify { yield &pages[Int(slot) / Self.pageSize][Int(slot) % Self.pageSize] }
    }

    mutating func add(_ row: VisibilityRow) -> Int32 {
        count += 1
        if let slot = free.popLast() {
            self[slot] = row
            return slot
        }
        if pages.isEmpty || pages[pages.count - 1].count == Self.pageSize {
            var page: [VisibilityRow?] = []
            page.reserveCapacity(Self.pageSize)
            pages.append(page)
        }
        pages[pages.count - 1].append(row)
        return Int32((pages.count - 1) * Self.pageSize + pages[pages.count - 1].count - 1)
    }

    mutating func remove(_ slot: Int32) {
        precondition(self[slot] != nil, "removing a free visibility row slot")
        self[slot] = nil
        free.append(slot)
        count -= 1
    }
}
