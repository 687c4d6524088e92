/// The open runs by run id, each run's state in a box of its own.
///
/// A `RunState` is a large value (about 560 bytes, with some fifteen reference-counted fields).
/// Held inline in the dictionary, every copy of a shard copied all of them: after a snapshot's
/// capture (a copy-on-write copy of the engine) the first few hundred applies copied every
/// shard of 100,000 open runs, 130–180 ms on one loop turn. Boxed, a shard holds one reference
/// per run; copying it copies and retains those, and a run's state is copied only when an apply
/// changes that run while a capture still holds its box.
///
/// Copy on write, per box: a box is changed only while this table holds the one reference to
/// it, so a box a capture shares is never written (`removeValue` copies the state out of it
/// instead). The engine's handlers take a run out, change it and put it back; the box a run is
/// taken out of is kept as a spare and filled by the next `updateValue`, so that round trip
/// allocates nothing.
struct RunTable: Sendable {
    /// One run's state. `state` is nil only in the spare box.
    private final class Box: @unchecked Sendable {
        // Unchecked: a box is written only while uniquely referenced (see the type's comment), so
        // a box reachable from two engines, or two threads, is only ever read.
        var state: RunState?

        init(_ state: consuming RunState) { self.state = consume state }
    }

    private var boxes: ShardedDictionary<String, Box> = [:]
    /// An emptied box, uniquely referenced when it was stored, for the next `updateValue`.
    private var spare: Box?

    /// An empty table.
    init() {}

    /// Open runs.
    var count: Int { boxes.count }

    /// Whether no run is open.
    var isEmpty: Bool { boxes.isEmpty }

    /// Every run id, in unspecified order.
    var keys: some Sequence<String> { boxes.keys }

    /// Every run, in unspecified order (each a copy of its state).
    var values: some Sequence<RunState> { boxes.values.lazy.map { $0.state! } }

    /// The run `runId` (a copy of its state); assigning nil removes it.
    subscript(runId: String) -> RunState? {
        get { boxes[runId]?.state }
        set {
            if let newValue { updateValue(newValue, forKey: runId) } else { boxes.removeValue(forKey: runId) }
        }
    }

    /// Stores `run` under `runId`, replacing any run there, in the spare box when there is one.
    mutating func updateValue(_ run: consuming RunState, forKey runId: String) {
        let box: Box
        if var reusable = spare.take(), isKnownUniquelyReferenced(&reusable) {
            reusable.state = consume run
            box = reusable
        } else {
            box = Box(run)
        }
        boxes.updateValue(box, forKey: runId)
    }

    /// Takes the run `runId` out of the table. Its state is moved out of a box only this table
    /// holds (the box becomes the spare) and copied out of one a capture shares.
    mutating func removeValue(forKey runId: String) -> RunState? {
        guard var box = boxes.removeValue(forKey: runId) else { return nil }
        guard isKnownUniquelyReferenced(&box) else { return box.state }
        let state = box.state.take()
        spare = box
        return state
    }
}
