import BallastRaft

/// Applying committed entries, acknowledging clients, serving reads and taking snapshots.
extension SimulationRun {
    /// Applies committed entries in order to `node`'s state machine and checks each one.
    func apply(_ entries: [Entry], at node: SimulatedNode) {
        guard let first = entries.first, let last = entries.last, let status = node.core?.status else { return }
        let term = status.term
        if status.role == .leader && last.term < term && last.index == status.commit { stats.oldTermCommitsByLeader += 1 }
        for entry in entries {
            guard violation == nil, node.isUp else { return }
            let applied = node.machine.apply(entry)
            guard case .success(let proposalID) = applied else {
                if case .failure(let error) = applied { fail(Violation(.contract, "\(node.id): \(error)")) }
                return
            }
            stats.entriesApplied += 1
            check { () throws(Violation) in try checker.observeApplied(node: node.id, term: term, entry: entry) }
            if let pending = node.proposals.removeValue(forKey: entry.index) {
                acknowledge(pending, entry: entry, proposalID: proposalID, at: node, term: term)
            }
            if entry.kind == .configChange, case .remove(let removed)? = ConfigChange(encoded: entry.data) {
                shutDownRemoved(removed)
            }
        }
        trace.record(.applied(node.id, from: first.index, through: last.index), at: now)
        fingerprint = SimulationHash.mix(fingerprint, node.machine.hash)
    }

    private func acknowledge(_ pending: PendingProposal, entry: Entry, proposalID: UInt64?, at node: SimulatedNode, term: Term) {
        // The client is told only if the entry at the returned index is the one it proposed.
        guard entry.term == pending.term, proposalID == pending.id else { return }
        check { () throws(Violation) in try checker.observeAcknowledged(id: pending.id, entry: entry, leaderTerm: term) }
        stats.commitsAcknowledged += 1
        trace.record(.acknowledged(node.id, id: pending.id, entry.index), at: now)
        if healedAt == nil && node.lastRole == .leader && random.chance(profile.isolateAfterAckProbability) {
            isolate(node, timeouts: 1...3)
        }
        if let healedAt, pending.proposedAt >= healedAt, livenessMetAt == nil {
            livenessMetAt = now
            schedule(.stop, after: 100_000)
        }
    }

    private func shutDownRemoved(_ id: NodeID) {
        guard let removed = node(id), !removed.removed else { return }
        removed.removed = true
        stats.membersRemoved += 1
        trace.record(.fault("\(id) removed from the cluster and shut down"), at: now)
        if removed.isUp { crash(removed, restartAfter: nil) }
    }

    /// Serves the confirmed reads whose index the state machine has reached.
    func serveReads(_ node: SimulatedNode) {
        guard !node.waitingReads.isEmpty else { return }
        var remaining: [UInt64] = []
        for context in node.waitingReads {
            guard let read = node.reads[context], let index = read.index else { continue }
            guard index <= node.machine.appliedIndex else {
                remaining.append(context)
                continue
            }
            node.reads[context] = nil
            stats.readsServed += 1
            trace.record(.readServed(node.id, context: context, node.machine.appliedIndex), at: now)
            check { () throws(Violation) in
                try checker.checkRead(
                    context: context, node: node.id, acknowledgedAtStart: read.acknowledgedAtStart,
                    servedIndex: node.machine.appliedIndex)
            }
        }
        node.waitingReads = remaining
    }

    /// Takes a snapshot of the state machine, stores it, compacts the store and tells the core.
    func takeSnapshot(_ node: SimulatedNode) {
        let snapshot = node.machine.snapshot()
        guard snapshot.metadata.index > node.store.durableSnapshotIndex else { return }
        do {
            try node.store.saveSnapshot(snapshot)
            try node.store.compact(through: snapshot.metadata.index)
        } catch {
            return fail(Violation(.contract, "\(node.id) cannot store its snapshot: \(error)"))
        }
        node.core?.snapshotTaken(snapshot)
        stats.snapshotsTaken += 1
        trace.record(.snapshotTaken(node.id, snapshot.metadata.index), at: now)
    }
}
