/// Log replication: the leader's appends with flow control, the follower's consistency check,
/// and the commit rule (Raft §5.3, §5.4.2; thesis §10.2.1 for the leader's parallel disk write).
extension RaftNode {
    /// Appends one entry to the leader's own log; followers get it at the next `takeReady()`.
    mutating func appendAsLeader(kind: EntryKind, data: [UInt8]) -> LogIndex {
        precondition(role == .leader, "only a leader appends new entries")
        let entry = Entry(term: term, index: log.lastIndex.next, kind: kind, data: data)
        appendToLog([entry])
        uncommittedBytes += entry.sizeBytes
        needsBroadcast = true
        // Nothing can commit yet: the leader counts this entry only once `persisted` reports it.
        return entry.index
    }

    /// Appends entries to the in-memory log, queues them for persistence and applies config changes.
    mutating func appendToLog(_ entries: [Entry]) {
        guard let first = entries.first else { return }
        log.append(entries)
        if let pendingLast = ready.entries.last, pendingLast.index >= first.index,
           let overlap = ready.entries.firstIndex(where: { $0.index >= first.index }) {
            ready.entries.removeSubrange(overlap...)
        }
        ready.entries.append(contentsOf: entries)
        for entry in entries where entry.kind == .configChange {
            applyConfigEntry(entry)
        }
    }

    /// Removes the log suffix from `index` on (a follower's conflicting entries).
    mutating func truncateLog(from index: LogIndex) {
        precondition(role != .leader, "a leader never truncates its own log")
        if index <= commit {
            precondition(!enforcesPeerInvariants, "truncating committed entry \(index) (commit \(commit))")
            // Mutation testing only: let the simulator observe the damage instead of trapping.
            commit = index.previous
            applied = min(applied, commit)
        }
        log.truncate(from: index)
        persistedIndex = min(persistedIndex, index.previous)
        ready.entries.removeAll { $0.index >= index }
        membership = membershipFolding(log.entries[...], over: baseMembership)
        membershipChanged()
    }

    /// The commit rule: the highest index durable on a majority of voters, if it is of the current term.
    mutating func maybeCommit() {
        guard role == .leader, !membership.voters.isEmpty else { return }
        let matches = membership.voters.map { $0 == id ? persistedIndex : (progress[$0]?.match ?? .zero) }.sorted(by: >)
        let candidate = matches[membership.quorum - 1]
        guard candidate > commit else { return }
        // §5.4.2: never commit an entry of an earlier term by counting replicas.
        guard log.term(at: candidate) == term || configuration.mutations.commitOldTermEntriesByCounting else { return }
        advanceCommit(to: candidate)
    }

    /// Sends appends to every follower that can take one.
    mutating func broadcastAppend(sendIfEmpty: Bool) {
        needsBroadcast = false
        commitAdvancedSinceBroadcast = false
        for peer in progress.keys.sorted() {
            var sentEntries = false
            while sendAppend(to: peer, sendIfEmpty: false) { sentEntries = true }
            // An empty append only when no append with entries carries the new commit index anyway.
            if sendIfEmpty && !sentEntries { _ = sendAppend(to: peer, sendIfEmpty: true) }
        }
    }

    /// Sends one append (or starts a snapshot) to `peer` if flow control allows; true if one was sent.
    mutating func sendAppend(to peer: NodeID, sendIfEmpty: Bool) -> Bool {
        guard var state = progress[peer],
              !state.isPaused(maxInflight: configuration.maxInflightAppends, maxInflightBytes: configuration.maxInflightBytes)
        else { return false }
        let previousIndex = state.next.previous
        guard let previousTerm = log.term(at: previousIndex) else {
            sendSnapshotChunk(to: peer)
            return false
        }
        let entries = log.entries(from: state.next, maxCount: max(1, configuration.maxEntriesPerAppend), maxBytes: configuration.maxBytesPerAppend)
        if entries.isEmpty && !sendIfEmpty { return false }
        send(to: peer, .append(previousIndex: previousIndex, previousTerm: previousTerm, entries: entries, commit: commit))
        state.sent(lastIndex: entries.last?.index, bytes: entries.reduce(0) { $0 + $1.sizeBytes })
        progress[peer] = state
        return true
    }

    mutating func broadcastHeartbeat(readContext: UInt64) {
        for (peer, state) in progress.sorted(by: { $0.key < $1.key }) {
            send(to: peer, .heartbeat(commit: min(state.match, commit), readContext: readContext))
        }
    }

    /// Follower side of AppendEntries: the consistency check, conflict truncation and the ack.
    mutating func handleAppend(from leaderID: NodeID, previousIndex: LogIndex, previousTerm: Term, entries: [Entry], leaderCommit: LogIndex) {
        var previousIndex = previousIndex, previousTerm = previousTerm, entries = entries[...]
        // Entries up to our commit index are known to match; skip them.
        while previousIndex < commit, let first = entries.first {
            if first.index > log.baseIndex && log.term(at: first.index) != first.term {
                // Leader Completeness says this cannot happen; only a broken peer (mutation testing) gets here.
                precondition(!enforcesPeerInvariants, "leader \(leaderID) sent \(first.term) at committed index \(first.index)")
                break
            }
            previousIndex = first.index
            previousTerm = first.term
            entries = entries.dropFirst()
        }
        if previousIndex < commit && entries.isEmpty {
            send(to: leaderID, .appendResponse(AppendResponse(success: true, index: commit)), afterPersist: true)
            return
        }
        guard log.matches(index: previousIndex, term: previousTerm) else {
            send(to: leaderID, .appendResponse(rejection(of: previousIndex)), afterPersist: true)
            return
        }
        if let conflict = entries.firstIndex(where: { log.term(at: $0.index) != $0.term }) {
            let first = entries[conflict].index
            if first <= log.lastIndex { truncateLog(from: first) }
            appendToLog(Array(entries[conflict...]))
        }
        let lastNewIndex = previousIndex.advanced(by: entries.count)
        advanceCommit(to: min(leaderCommit, lastNewIndex))
        send(to: leaderID, .appendResponse(AppendResponse(success: true, index: lastNewIndex)), afterPersist: true)
    }

    /// A rejection with the fast-backtracking hint: our term at the rejected index and its first index.
    func rejection(of previousIndex: LogIndex) -> AppendResponse {
        guard previousIndex <= log.lastIndex, let conflictTerm = log.term(at: previousIndex) else {
            return AppendResponse(success: false, index: previousIndex, conflictTerm: nil, conflictIndex: log.lastIndex.next)
        }
        let first = log.firstIndex(ofTerm: conflictTerm, after: commit, through: previousIndex)
        return AppendResponse(success: false, index: previousIndex, conflictTerm: conflictTerm, conflictIndex: first)
    }

    /// Leader side of an append answer: advance match and commit, or back off using the hint.
    mutating func handleAppendResponse(from peer: NodeID, _ response: AppendResponse) {
        guard var state = progress[peer] else { return }
        state.recentlyActive = true
        if response.success {
            let moved = state.acknowledge(response.index)
            if state.state == .probe && (moved || state.match == response.index) {
                state.becomeReplicate()
            } else if state.state == .snapshot && state.match >= log.baseIndex {
                state.becomeProbe()
            }
            progress[peer] = state
            if moved { maybeCommit() }
            while sendAppend(to: peer, sendIfEmpty: false) {}
            if leadTransferee == peer && state.match == log.lastIndex { send(to: peer, .timeoutNow) }
            return
        }
        let stale = state.state == .replicate ? response.index <= state.match
            : state.state == .probe ? response.index != state.next.previous : true
        progress[peer] = state
        guard !stale else { return }
        state.next = backtrackedNext(after: response, state: state)
        state.becomeProbeKeepingNext()
        progress[peer] = state
        _ = sendAppend(to: peer, sendIfEmpty: true)
    }

    /// Where to resume after a rejection: skip the follower's whole conflicting term when we lack it.
    func backtrackedNext(after response: AppendResponse, state: Progress) -> LogIndex {
        var next = response.conflictIndex
        if let conflictTerm = response.conflictTerm, let last = log.lastIndex(ofTerm: conflictTerm, through: response.index) {
            next = last.next
        }
        return max(state.match.next, min(next, response.index))
    }

    mutating func handleHeartbeatResponse(from peer: NodeID, readContext: UInt64) {
        guard var state = progress[peer] else { return }
        state.recentlyActive = true
        // The follower is alive: let a probe go again, or free the oldest slot of a full window
        // (its answer may have been lost) — once per heartbeat interval. Every ReadIndex round is
        // a heartbeat too, hundreds a second under reads; unpausing on each answer re-sent a probe
        // batch (up to `maxBytesPerAppend`) per round, and let a slow follower be sent far more
        // than `maxInflightBytes`.
        let unpauses = state.ticksSinceUnpaused >= max(1, configuration.heartbeatIntervalTicks)
        if unpauses {
            state.ticksSinceUnpaused = 0
            state.probeSent = false
            if state.state == .replicate
                && state.isWindowFull(maxInflight: configuration.maxInflightAppends, maxInflightBytes: configuration.maxInflightBytes) {
                state.freeOldestInflight()
            }
        }
        progress[peer] = state
        if state.state == .snapshot {
            // A chunk (possibly large) may still be on its way: re-send only once two heartbeat
            // intervals have passed without an ack (answers to ReadIndex rounds come far oftener).
            if state.ticksSinceChunk >= 2 * max(1, configuration.heartbeatIntervalTicks) { sendSnapshotChunk(to: peer) }
        } else if state.match < log.lastIndex {
            _ = sendAppend(to: peer, sendIfEmpty: unpauses)
        }
        if readContext != 0 { acknowledgeRead(round: readContext, from: peer) }
    }
}

extension Progress {
    /// Back to probing from an explicitly chosen `next` (after a rejection).
    mutating func becomeProbeKeepingNext() {
        let chosen = next
        becomeProbe()
        next = max(chosen, match.next)
    }
}
