import BallastProto

/// A first-in-first-out buffer that keeps only the newest `capacity` elements.
struct BoundedRing<Element: Equatable & Sendable>: Equatable, Sendable {
    let capacity: Int
    private var storage: [Element] = []
    private var head = 0

    init(capacity: Int) {
        precondition(capacity > 0, "a ring needs room for one element")
        self.capacity = capacity
    }

    /// Oldest first.
    var elements: ArraySlice<Element> { storage[head...] }
    var count: Int { storage.count - head }

    /// Appends; beyond the capacity the oldest element is dropped.
    mutating func append(_ element: Element) {
        storage.append(element)
        if count > capacity { head += 1 }
        // Compact once the dropped prefix is as large as what is kept.
        if head >= capacity {
            storage.removeFirst(head)
            head = 0
        }
        assert(count <= capacity, "a ring never holds more than its capacity")
    }

    static func == (lhs: BoundedRing, rhs: BoundedRing) -> Bool {
        lhs.capacity == rhs.capacity && lhs.elements.elementsEqual(rhs.elements)
    }
}

/// The replicated security state: role bindings and the audit log (docs/security.md).
///
/// The audit log is two bounded rings: denied-call records (`denials`) and everything else
/// (`events`: role changes, membership changes, certificate reloads). A flood of denied calls
/// fills only its own ring, so it can never push a role change out of the log.
struct SecurityState: Equatable, Sendable {
    /// Most bindings kept; a further grant is refused (RESOURCE_EXHAUSTED).
    static let maxBindings = 10_000
    /// Records kept in each ring; the oldest is dropped beyond this.
    static let eventCapacity = 5_000
    static let denialCapacity = 5_000
    /// Most records one RecordAuditEvents entry may carry.
    static let maxRecordsPerEntry = 512
    /// Longest detail text of a record.
    static let maxDetailBytes = 2_048

    var roles = RoleTable()
    var events = BoundedRing<Ballast_V1_AuditRecord>(capacity: eventCapacity)
    var denials = BoundedRing<Ballast_V1_AuditRecord>(capacity: denialCapacity)
    var nextAuditSequence: UInt64 = 1
    /// Set by the first bootstrap, grant or revoke: a later bootstrap changes nothing.
    var rolesInitialized = false

    /// Stamps `record` with the next sequence number and the entry time, and keeps it.
    mutating func append(_ record: Ballast_V1_AuditRecord, now: Int64) {
        var stamped = record
        stamped.sequence = nextAuditSequence
        stamped.timeUnixNanos = now
        if stamped.count == 0 { stamped.count = 1 }
        nextAuditSequence += 1
        switch stamped.kind {
        case .accessDenied, .denialsSuppressed: denials.append(stamped)
        default: events.append(stamped)
        }
    }

    /// Up to `limit` newest records with a sequence above `after`, oldest first.
    func records(after: UInt64, limit: Int) -> [Ballast_V1_AuditRecord] {
        guard limit > 0 else { return [] }
        let newest = events.elements.filter { $0.sequence > after }.suffix(limit)
            + denials.elements.filter { $0.sequence > after }.suffix(limit)
        return Array(newest.sorted { $0.sequence < $1.sequence }.suffix(limit))
    }

    /// The snapshot form, every list in a fixed order.
    var snapshot: Ballast_V1_SnapshotSecurity {
        var message = Ballast_V1_SnapshotSecurity()
        message.bindings = roles.all.map(\.proto)
        message.events = Array(events.elements)
        message.denials = Array(denials.elements)
        message.nextAuditSequence = nextAuditSequence
        message.rolesInitialized = rolesInitialized
        return message
    }

    /// Rebuilds the state from its snapshot form.
    init(snapshot message: Ballast_V1_SnapshotSecurity) throws(EngineError) {
        for binding in message.bindings {
            do {
                roles.insert(try RoleGrant.validated(binding))
            } catch {
                throw .corruptSnapshot("role binding \(binding.identity) is invalid: \(error)")
            }
        }
        for record in message.events { events.append(record) }
        for record in message.denials { denials.append(record) }
        nextAuditSequence = max(message.nextAuditSequence, 1)
        rolesInitialized = message.rolesInitialized
    }

    init() {}
}
