/// The leader's replication bookkeeping for one follower (modelled on etcd-raft's tracker).
struct Progress: Sendable {
    /// The highest index known to be replicated (acknowledged as durable) on the follower.
    var match: LogIndex
    /// The next index to send.
    var next: LogIndex
    /// Flow-control state.
    var state: FollowerProgress.State = .probe
    /// Heard from in the current check-quorum window.
    var recentlyActive = false
    /// In probe state: an append is outstanding, so no other is sent until an answer or heartbeat.
    var probeSent = false
    /// In replicate state: the last index and entry bytes of each append in flight, oldest first.
    var inflights: [Inflight] = []
    /// In replicate state: the entry bytes of `inflights`, summed.
    var inflightBytes = 0
    /// In snapshot state: the index of the snapshot being sent.
    var snapshotIndex: LogIndex = .zero
    /// In snapshot state: the byte offset the follower has acknowledged.
    var snapshotOffset: UInt64 = 0
    /// In snapshot state: the leader's ticks since the last chunk was sent. A chunk is re-sent on
    /// a heartbeat answer once two heartbeat intervals have passed; counted in ticks, not answers,
    /// because every ReadIndex round is a heartbeat too (each answer re-sent a chunk of up to
    /// `snapshotChunkBytes` before, hundreds a second under reads).
    var ticksSinceChunk = 0
    /// The leader's ticks since a heartbeat answer last lifted flow control for this follower (a
    /// probe may go again, a slot of the window is freed): at most once per heartbeat interval,
    /// as every ReadIndex round's answers are heartbeat answers too. Held at 2^30.
    var ticksSinceUnpaused = 1 << 30

    init(match: LogIndex, next: LogIndex) {
        self.match = match
        self.next = next
    }

    /// One append in flight.
    struct Inflight: Sendable {
        /// The index of its last entry.
        var lastIndex: LogIndex
        /// Its entries' `sizeBytes`, summed.
        var bytes: Int
    }

    /// Whether no append may be sent now.
    func isPaused(maxInflight: Int, maxInflightBytes: Int) -> Bool {
        switch state {
        case .probe: probeSent
        case .replicate: isWindowFull(maxInflight: maxInflight, maxInflightBytes: maxInflightBytes)
        case .snapshot: true
        }
    }

    /// Whether the pipelining window is full, by count or by bytes (never with nothing in flight).
    func isWindowFull(maxInflight: Int, maxInflightBytes: Int) -> Bool {
        !inflights.isEmpty && (inflights.count >= max(1, maxInflight) || inflightBytes >= maxInflightBytes)
    }

    /// Forgets the oldest append in flight (a heartbeat answer shows the follower is alive, and
    /// its answer to that append may have been lost).
    mutating func freeOldestInflight() {
        guard !inflights.isEmpty else { return }
        inflightBytes -= inflights.removeFirst().bytes
    }

    private mutating func clearInflights() {
        inflights = []
        inflightBytes = 0
    }

    /// Returns to probing one append at a time from just after `match`.
    mutating func becomeProbe() {
        next = state == .snapshot ? max(match.next, snapshotIndex.next) : match.next
        state = .probe
        probeSent = false
        clearInflights()
        snapshotIndex = .zero
        snapshotOffset = 0
    }

    /// Starts optimistic pipelining after a successful probe.
    mutating func becomeReplicate() {
        state = .replicate
        next = match.next
        clearInflights()
        probeSent = false
    }

    /// Starts sending the snapshot at `index` from its first byte.
    mutating func becomeSnapshot(index: LogIndex) {
        state = .snapshot
        snapshotIndex = index
        snapshotOffset = 0
        clearInflights()
        probeSent = false
    }

    /// Records an acknowledged `index`; returns whether `match` moved.
    mutating func acknowledge(_ index: LogIndex) -> Bool {
        var moved = false
        if index > match {
            match = index
            probeSent = false
            moved = true
        }
        if next <= index { next = index.next }
        while let oldest = inflights.first, oldest.lastIndex <= index { freeOldestInflight() }
        return moved
    }

    /// Records an append of entries ending at `lastIndex` (or an empty append) just sent; `bytes`
    /// is their `sizeBytes`, summed.
    mutating func sent(lastIndex: LogIndex?, bytes: Int) {
        switch state {
        case .replicate:
            if let lastIndex {
                next = lastIndex.next
                inflights.append(Inflight(lastIndex: lastIndex, bytes: bytes))
                inflightBytes += bytes
            }
        case .probe: probeSent = true
        case .snapshot: break
        }
    }

    /// The public picture of this record.
    var publicView: FollowerProgress {
        FollowerProgress(match: match, next: next, state: state, recentlyActive: recentlyActive)
    }
}
