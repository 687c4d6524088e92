/// Snapshots: local compaction, chunked InstallSnapshot to lagging followers, and installation (Raft §7, thesis §5).
extension RaftNode {
    /// Reports that the application took a snapshot at `metadata.index` (≤ applied), so the log
    /// before it (minus the compaction slack) can be dropped and lagging followers get this snapshot.
    /// Build the metadata with `snapshotMetadata(at:)`. Returns false, changing nothing, when
    /// the snapshot is no newer than the one the node has (e.g. one from the leader was
    /// installed while this one was being serialized): it must not be saved then.
    @discardableResult
    public mutating func snapshotTaken(_ taken: Snapshot) -> Bool {
        let index = taken.metadata.index
        precondition(index <= applied, "snapshot at \(index) is ahead of applied \(applied)")
        guard index > (snapshot?.metadata.index ?? .zero), index > log.baseIndex else { return false }
        precondition(log.term(at: index) == taken.metadata.term, "snapshot term \(taken.metadata.term) differs from the log's at \(index)")
        precondition(snapshotMetadata(at: index)?.membership == taken.metadata.membership, "snapshot membership differs from the log's at \(index)")
        snapshot = taken
        let slack = UInt64(max(0, configuration.compactionSlackEntries))
        let compactThrough = LogIndex(index.rawValue > slack ? index.rawValue - slack : 0)
        if compactThrough > log.baseIndex {
            baseMembership = snapshotMetadata(at: compactThrough)?.membership ?? baseMembership
            log.compact(through: compactThrough)
        }
        appliedBytesSinceSnapshot = applied > index ? log.entries(from: index.next, through: applied).reduce(0) { $0 + $1.sizeBytes } : 0
        snapshotSuggestionReported = false
        return true
    }

    /// Sends `peer` the chunk of the latest snapshot at its acknowledged offset (restarting if the snapshot changed).
    mutating func sendSnapshotChunk(to peer: NodeID) {
        guard var state = progress[peer], let snapshot else { return }
        if state.state != .snapshot || state.snapshotIndex != snapshot.metadata.index {
            state.becomeSnapshot(index: snapshot.metadata.index)
        }
        let total = UInt64(snapshot.data.count)
        let start = min(state.snapshotOffset, total)
        let end = min(start + UInt64(max(1, configuration.snapshotChunkBytes)), total)
        let chunk = SnapshotChunk(
            metadata: snapshot.metadata, offset: start, totalBytes: total,
            data: Array(snapshot.data[Int(start)..<Int(end)]), done: end == total)
        state.ticksSinceChunk = 0
        progress[peer] = state
        send(to: peer, .installSnapshot(chunk))
    }

    /// Leader side: a chunk was acknowledged (send the next), rejected (resend from the follower's offset) or the snapshot is installed.
    mutating func handleSnapshotResponse(from peer: NodeID, snapshotIndex: LogIndex, nextOffset: UInt64, done: Bool, rejected: Bool) {
        guard var state = progress[peer] else { return }
        state.recentlyActive = true
        progress[peer] = state
        guard state.state == .snapshot, state.snapshotIndex == snapshotIndex else { return }
        if done && !rejected {
            _ = state.acknowledge(snapshotIndex)
            state.becomeProbe()
            progress[peer] = state
            _ = sendAppend(to: peer, sendIfEmpty: true)
            return
        }
        guard rejected || nextOffset > state.snapshotOffset else { return }  // a duplicate ack
        state.snapshotOffset = nextOffset
        progress[peer] = state
        sendSnapshotChunk(to: peer)
    }

    /// Follower side: accumulate chunks in order; install on the last one.
    mutating func handleSnapshotChunk(from leaderID: NodeID, _ chunk: SnapshotChunk) {
        let metadata = chunk.metadata
        func answer(_ nextOffset: UInt64, done: Bool = false, rejected: Bool = false, afterPersist: Bool = false) {
            send(to: leaderID, .installSnapshotResponse(snapshotIndex: metadata.index, nextOffset: nextOffset, done: done, rejected: rejected), afterPersist: afterPersist)
        }
        // Already covered by our log: nothing to transfer.
        if metadata.index <= commit || log.matches(index: metadata.index, term: metadata.term) {
            if log.matches(index: metadata.index, term: metadata.term) { advanceCommit(to: max(commit, metadata.index)) }
            incomingSnapshot = nil
            answer(chunk.totalBytes, done: true, afterPersist: true)
            return
        }
        if chunk.offset == 0 && incomingSnapshot?.matches(chunk) != true {
            incomingSnapshot = IncomingSnapshot(metadata: metadata, totalBytes: chunk.totalBytes, data: [])
        }
        guard var incoming = incomingSnapshot, incoming.matches(chunk) else { return answer(0, rejected: true) }
        let received = UInt64(incoming.data.count)
        if chunk.offset < received { return answer(received) }  // a duplicate
        guard chunk.offset == received, received + UInt64(chunk.data.count) <= incoming.totalBytes else { return answer(received, rejected: true) }
        incoming.data.append(contentsOf: chunk.data)
        guard chunk.done else {
            incomingSnapshot = incoming
            return answer(UInt64(incoming.data.count))
        }
        incomingSnapshot = nil
        guard UInt64(incoming.data.count) == incoming.totalBytes else { return answer(0, rejected: true) }
        install(Snapshot(metadata: metadata, data: incoming.data))
        answer(incoming.totalBytes, done: true, afterPersist: true)
    }

    /// Replaces the whole log by a snapshot from the leader; the log continues at its index + 1.
    mutating func install(_ received: Snapshot) {
        let metadata = received.metadata
        precondition(metadata.index > commit, "installing snapshot \(metadata.index) at or behind commit \(commit)")
        log.reset(baseIndex: metadata.index, baseTerm: metadata.term)
        ready.entries = []
        ready.snapshot = received
        snapshot = received
        baseMembership = metadata.membership
        membership = metadata.membership
        commit = metadata.index
        applied = metadata.index
        persistedIndex = metadata.index
        appliedBytesSinceSnapshot = 0
        snapshotSuggestionReported = false
        membershipChanged()
    }
}

/// A snapshot being received chunk by chunk.
struct IncomingSnapshot: Sendable {
    var metadata: SnapshotMetadata
    var totalBytes: UInt64
    var data: [UInt8]

    /// Whether `chunk` belongs to this snapshot.
    func matches(_ chunk: SnapshotChunk) -> Bool { chunk.metadata == metadata && chunk.totalBytes == totalBytes }
}
