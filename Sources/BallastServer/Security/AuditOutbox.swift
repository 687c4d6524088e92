import BallastEngine
import BallastProto

/// Aggregates denied calls between two flushes, so that a flood of them becomes a few audit
/// records per second (docs/security.md, "Audit"). A pure value; the node owns it under a lock.
///
/// Bounds: at most `maxKeys` distinct (identity, method, namespace, role, queue) keys are kept
/// per window; calls beyond that are only counted. A flush emits at most `maxRecordsPerFlush`
/// records, the keys with the most calls first, and one `DENIALS_SUPPRESSED` record counting
/// the calls (and keys) left out.
struct DenialAggregator {
    static let maxKeys = 1_024
    static let maxRecordsPerFlush = 64

    struct Key: Hashable {
        var identity: String
        var verified: Bool
        var method: String
        var namespace: String
        var role: AccessRole?
        var taskQueue: String
    }

    private var counts: [Key: (count: UInt64, first: Int64, last: Int64, detail: String)] = [:]
    private var overflowCalls: UInt64 = 0
    private var overflowFirst: Int64 = 0

    /// Counts one denied call; returns true when it is the first of its key in this window
    /// (the caller logs those, and only those).
    mutating func record(_ key: Key, detail: String, nowNanos: Int64) -> Bool {
        if let existing = counts[key] {
            counts[key] = (existing.count + 1, existing.first, nowNanos, existing.detail)
            return false
        }
        guard counts.count < Self.maxKeys else {
            if overflowCalls == 0 { overflowFirst = nowNanos }
            overflowCalls += 1
            return false
        }
        counts[key] = (1, nowNanos, nowNanos, detail)
        return true
    }

    var isEmpty: Bool { counts.isEmpty && overflowCalls == 0 }

    /// The window's records (at most `maxRecordsPerFlush + 1`), and a fresh window.
    mutating func drain(nodeID: UInt64, nowNanos: Int64) -> [Ballast_V1_AuditRecord] {
        let sorted = counts.sorted { lhs, rhs in
            lhs.value.count != rhs.value.count ? lhs.value.count > rhs.value.count : lhs.value.first < rhs.value.first
        }
        var records: [Ballast_V1_AuditRecord] = []
        for (key, value) in sorted.prefix(Self.maxRecordsPerFlush) {
            var record = Ballast_V1_AuditRecord()
            record.kind = .accessDenied
            record.identity = key.identity
            record.identityVerified = key.verified
            record.nodeID = nodeID
            record.method = key.method
            record.namespace = key.namespace
            record.role = key.role?.proto ?? .unspecified
            record.taskQueue = key.taskQueue
            record.detail = value.detail
            record.count = value.count
            record.firstSeenUnixNanos = value.first
            record.lastSeenUnixNanos = value.last
            records.append(record)
        }
        let left = sorted.dropFirst(Self.maxRecordsPerFlush)
        let suppressedCalls = left.reduce(overflowCalls) { $0 + $1.value.count }
        if suppressedCalls > 0 {
            var record = Ballast_V1_AuditRecord()
            record.kind = .denialsSuppressed
            record.nodeID = nodeID
            record.count = suppressedCalls
            record.firstSeenUnixNanos = min(left.map(\.value.first).min() ?? .max, overflowCalls > 0 ? overflowFirst : .max)
            record.lastSeenUnixNanos = nowNanos
            record.detail = "\(suppressedCalls) denied calls not itemized (\(left.count)+ distinct callers/methods beyond the per-second limit)"
            records.append(record)
        }
        counts = [:]
        overflowCalls = 0
        return records
    }
}

/// Security events waiting to be proposed (certificate reloads, membership changes). Bounded:
/// beyond `capacity` the oldest event is dropped and counted, and the count is reported with
/// the next flush.
struct AuditOutbox {
    static let capacity = 1_000
    private(set) var pending: [Ballast_V1_AuditRecord] = []
    private(set) var dropped: UInt64 = 0

    mutating func add(_ record: Ballast_V1_AuditRecord) {
        pending.append(record)
        if pending.count > Self.capacity {
            pending.removeFirst()
            dropped += 1
        }
    }

    /// Up to `max` oldest events (and a record of what was dropped), leaving the rest.
    mutating func take(max: Int, nodeID: UInt64) -> [Ballast_V1_AuditRecord] {
        var taken = Array(pending.prefix(max))
        pending.removeFirst(taken.count)
        if dropped > 0 {
            var record = Ballast_V1_AuditRecord()
            record.kind = .other
            record.nodeID = nodeID
            record.count = dropped
            record.detail = "\(dropped) security events dropped: the node's outbox was full"
            taken.append(record)
            dropped = 0
        }
        return taken
    }

    /// Puts events back at the front after a failed proposal (still bounded).
    mutating func putBack(_ records: [Ballast_V1_AuditRecord]) {
        pending.insert(contentsOf: records, at: 0)
        while pending.count > Self.capacity {
            pending.removeLast()
            dropped += 1
        }
    }
}
