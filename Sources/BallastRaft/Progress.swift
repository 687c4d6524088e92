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
    /// In replicate state: the last index of each append in flight, oldest first.
    var inflights: [LogIndex] = []
    /// In snapshot state: the index of the snapshot being sent.
    var snapshotIndex: LogIndex = .zero
    /// In snapshot state: the byte offset the follower has acknowledged.
    var snapshotOffset: UInt64 = 0
    /// In snapshot state: heartbeat answers since the last chunk was sent (a chunk is re-sent after two).
    var heartbeatsSinceChunk = 0

    init(match: LogIndex, next: LogIndex) {
        self.match = match
        self.next = next
    }

    /// Whether no append may be sent now.
    func isPaused(maxInflight: Int) -> Bool {
        switch state {
        case .probe: probeSent
        case .replicate: inflights.count >= max(1, maxInflight)
        case .snapshot: true
        }
    }

    /// Returns to probing one append at a time from just after `match`.
    mutating func becomeProbe() {
        next = state == .snapshot ? max(match.next, snapshotIndex.next) : match.next
        state = .probe
        probeSent = false
        inflights = []
        snapshotIndex = .zero
        snapshotOffset = 0
    }

    /// Starts optimistic pipelining after a successful probe.
    mutating func becomeReplicate() {
        state = .replicate
        next = match.next
        inflights = []
        probeSent = false
    }

    /// Starts sending the snapshot at `index` from its first byte.
    mutating func becomeSnapshot(index: LogIndex) {
        state = .snapshot
        snapshotIndex = index
        snapshotOffset = 0
        inflights = []
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
        inflights.removeAll { $0 <= index }
        return moved
    }

    /// Records an append of entries ending at `lastIndex` (or an empty append) just sent.
    mutating func sent(lastIndex: LogIndex?) {
        switch state {
        case .replicate:
            if let lastIndex {
                next = lastIndex.next
                inflights.append(lastIndex)
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
