/// Values by run id, each in a box of its own: the engine's open runs (`RunState`) and closed
/// run summaries (`ClosedRun`).
///
/// A `RunState` is a large value (about 560 bytes, with some fifteen reference-counted fields),
/// a `ClosedRun` about half that. Held inline in a `ShardedDictionary`, every copy of a shard
/// copied all of them: after a snapshot's capture (a copy-on-write copy of the engine) the first
/// few hundred applies copied every shard, 184–234 ms for 100,000 open runs on one loop turn.
/// Boxed, a shard holds one reference per value; copying it copies and retains those, and a
/// value is copied only when an apply changes it while a capture still holds its box.
///
/// Copy on write, per box: a box is changed only while this table holds the one reference to
/// it, so a box a capture shares is never written (`removeValue` copies the value out of it
/// instead). The engine's handlers take a run out, change it and put it back; the box a value
/// is taken out of is kept as a spare and filled by the next `updateValue`, so that round trip
/// allocates nothing.
struct BoxedTable<Value: Sendable>: Sendable {
    /// One value. `value` is nil only in the spare box.
    fileprivate final class Box: @unchecked Sendable {
        // Unchecked: a box is written only while uniquely referenced (see the type's comment), so
        // a box reachable from two engines, or two threads, is only ever read.
        var value: Value?

        init(_ value: consuming Value) { self.value = consume value }
    }

    private var boxes: ShardedDictionary<String, Box> = [:]
    /// An emptied box, uniquely referenced when it was stored, for the next `updateValue`.
    private var spare: Box?

    /// An empty table.
    init() {}

    /// Values held.
    var count: Int { boxes.count }

    /// Whether no value is held.
    var isEmpty: Bool { boxes.isEmpty }

    /// Every run id, in unspecified order.
    var keys: some Sequence<String> { boxes.keys }

    /// Every value, in unspecified order (each a copy).
    var values: some Sequence<Value> { boxes.values.lazy.map { $0.value! } }

    /// A value where it is, in its box: its fields are read one by one (the extensions below),
    /// without copying the whole value.
    struct Lent {
        fileprivate let box: Box
    }

    /// Every value, lent, in unspecified order: for walks that read a few fields of every value.
    /// `values` copies each whole value, and a `borrowing` closure parameter did not avoid that
    /// copy (a value in a class instance is copied out to be lent).
    func forEachLent(_ body: (Lent) throws -> Void) rethrows {
        for box in boxes.values { try body(Lent(box: box)) }
    }

    /// The value for `runId` (a copy); assigning nil removes it.
    subscript(runId: String) -> Value? {
        get { boxes[runId]?.value }
        set {
            if let newValue { updateValue(newValue, forKey: runId) } else { boxes.removeValue(forKey: runId) }
        }
    }

    /// Stores `value` under `runId`, replacing any value there, in the spare box when there is one.
    mutating func updateValue(_ value: consuming Value, forKey runId: String) {
        let box: Box
        if var reusable = spare.take(), isKnownUniquelyReferenced(&reusable) {
            reusable.value = consume value
            box = reusable
        } else {
            box = Box(value)
        }
        boxes.updateValue(box, forKey: runId)
    }

    /// Takes the value for `runId` out of the table. It is moved out of a box only this table
    /// holds (the box becomes the spare) and copied out of one a capture shares.
    @discardableResult
    mutating func removeValue(forKey runId: String) -> Value? {
        guard var box = boxes.removeValue(forKey: runId) else { return nil }
        guard isKnownUniquelyReferenced(&box) else { return box.value }
        let value = box.value.take()
        spare = box
        return value
    }
}

extension BoxedTable.Lent where Value == RunState {
    // A box in the table always holds a value (only the spare box is empty).
    var key: RunKey { box.value!.key }
    var namespace: String { box.value!.key.namespace }
    var taskQueue: String { box.value!.taskQueue }
    var workflowTask: WorkflowTaskState? { box.value!.workflowTask }
    var activities: [Int64: PendingActivity] { box.value!.activities }
}
