import BallastRaft

/// The shell loop of one node, as a real server runs it: feed the core, write its output to the
/// store, send, sync, report persistence, apply, snapshot.
extension SimulationRun {
    /// Starts (or restarts) `node` from what its store kept.
    func start(_ node: SimulatedNode) {
        let restored: RestoredState
        do { restored = try node.store.restore() } catch {
            return fail(Violation(.contract, "\(node.id) cannot restore its store: \(error)"))
        }
        check { () throws(Violation) in try checker.observeRestart(node: node.id, restored: restored) }
        if let snapshot = restored.snapshot {
            guard let machine = ListStateMachine(snapshot: snapshot) else {
                return fail(Violation(.contract, "\(node.id) stored a snapshot at \(snapshot.metadata.index) it cannot decode"))
            }
            node.machine = machine
        } else {
            node.machine = ListStateMachine(membership: node.bootstrap)
        }
        var configuration = RaftConfiguration(id: node.id)
        profile.raft.apply(to: &configuration)
        options.configureRaft?(&configuration)
        node.core = RaftNode(configuration: configuration, restored: restored, bootstrap: node.bootstrap, randomSeed: random.next())
        node.epoch += 1
        node.started = true
        node.diskBusyUntil = now
        trace.record(.restarted(node.id, restored.entries.last?.index ?? restored.snapshot?.metadata.index ?? .zero), at: now)
        schedule(.tick(slot: node.slot, epoch: node.epoch), after: random.micros(1...node.tickMicros))
        afterTurn(node)
    }

    /// Crashes `node`: its store loses unsynced writes (maybe tearing one), everything volatile is gone.
    func crash(_ node: SimulatedNode, restartAfter delay: UInt64?) {
        guard node.isUp else { return }
        let outcome = node.store.crash(using: &random, tornWriteProbability: profile.tornWriteProbability)
        node.dropVolatileState()
        stats.crashes += 1
        stats.lostWrites += outcome.lostWrites
        if outcome.torn { stats.tornWrites += 1 }
        trace.record(.crashed(node.id, outcome), at: now)
        if let delay { schedule(.restart(slot: node.slot, epoch: node.epoch), after: delay) }
    }

    /// Drains the core's output until it has nothing more to say, then checks its role.
    func afterTurn(_ node: SimulatedNode) {
        var rounds = 0
        while violation == nil, let ready = node.core?.takeReady(), !ready.isEmpty {
            rounds += 1
            guard rounds <= 1_000 else {
                return fail(Violation(.contract, "\(node.id) produced output 1000 times in a row without new input"))
            }
            process(ready, at: node)
        }
        observeRole(node)
    }

    private func observeRole(_ node: SimulatedNode) {
        guard violation == nil, let status = node.core?.status else { return }
        let changed = status.role != node.lastRole || status.term != node.lastTerm
        node.lastRole = status.role
        node.lastTerm = status.term
        if changed {
            trace.record(.role(node.id, status.role, status.term), at: now)
            fingerprint = SimulationHash.mix(fingerprint, status.term.rawValue << 8 | UInt64(node.slot))
            if status.role == .leader {
                stats.leaderChanges += 1
                if healedAt == nil && random.chance(profile.leaderChurnProbability) {
                    // Half the time before its first appends land (its no-op stays on its own disk only),
                    // otherwise a few round trips later (old-term entries half replicated).
                    let delay = random.chance(0.5) ? random.micros(0...profile.minDelayMicros) : random.micros(0...(profile.maxDelayMicros * 6))
                    schedule(.isolateIfLeader(slot: node.slot, term: status.term), after: delay)
                }
            }
        }
        check { () throws(Violation) in
            try checker.observeRole(node: node.id, role: status.role, term: status.term, newlyLeader: changed)
        }
    }

    private func process(_ ready: Ready, at node: SimulatedNode) {
        var needsSync = false
        do {
            if let snapshot = ready.snapshot {
                try node.store.installSnapshot(snapshot)
                stats.snapshotsInstalled += 1
                trace.record(.snapshotInstalled(node.id, snapshot.metadata.index), at: now)
                check { () throws(Violation) in try checker.observeSnapshot(node: node.id, metadata: snapshot.metadata) }
            }
            // Entries before the hard state: a crash that keeps a prefix of the unsynced writes must
            // never keep a commit index without the entries it covers (etcd's WAL orders them so too).
            if options.hardStateBeforeEntries, let hardState = ready.hardState { try node.store.setHardState(hardState) }
            if !ready.entries.isEmpty {
                try node.store.append(ready.entries)
                needsSync = true
                check { () throws(Violation) in try checker.observeAppend(node: node.id, entries: ready.entries) }
            }
            if let hardState = ready.hardState {
                if !options.hardStateBeforeEntries { try node.store.setHardState(hardState) }
                needsSync = true
            }
        } catch {
            return fail(Violation(.contract, "\(node.id) storage refused the core's writes: \(error)"))
        }
        for message in ready.messages { send(message) }
        node.batches.append(PersistBatch(
            needsSync: needsSync, snapshot: ready.snapshot, messagesAfterPersist: ready.messagesAfterPersist,
            persistedThrough: ready.entries.last, committed: ready.committed, readStates: ready.readStates,
            droppedReads: ready.droppedReads, snapshotSuggested: ready.snapshotSuggested))
        if needsSync {
            let done = max(now, node.diskBusyUntil) + random.micros(profile.diskLatencyMicros)
            node.diskBusyUntil = done
            queue.push(.syncDone(slot: node.slot, epoch: node.epoch), at: done)
        }
        completeBatches(node)
    }

    /// The disk finished a sync: everything written so far is durable.
    func syncCompleted(_ node: SimulatedNode, epoch: Int) {
        guard node.epoch == epoch, node.isUp else { return }
        do { try node.store.sync() } catch {
            return fail(Violation(.contract, "\(node.id) sync failed: \(error)"))
        }
        stats.syncs += 1
        for position in node.batches.indices { node.batches[position].synced = true }
        completeBatches(node)
        afterTurn(node)
    }

    private func completeBatches(_ node: SimulatedNode) {
        while violation == nil, node.isUp, let first = node.batches.first, !first.needsSync || first.synced {
            node.batches.removeFirst()
            finish(first, at: node)
        }
    }

    private func finish(_ batch: PersistBatch, at node: SimulatedNode) {
        if let snapshot = batch.snapshot {
            guard let machine = ListStateMachine(snapshot: snapshot) else {
                return fail(Violation(.contract, "\(node.id) received a snapshot at \(snapshot.metadata.index) it cannot decode"))
            }
            node.machine = machine
            node.proposals = node.proposals.filter { $0.key > snapshot.metadata.index }
        }
        for message in batch.messagesAfterPersist { send(message) }
        if let last = batch.persistedThrough {
            node.core?.persisted(through: last.index, term: last.term)
        } else if let snapshot = batch.snapshot {
            node.core?.persisted(through: snapshot.metadata.index, term: snapshot.metadata.term)
        }
        apply(batch.committed, at: node)
        for context in batch.droppedReads where node.reads.removeValue(forKey: context) != nil {
            stats.readsFailed += 1
        }
        for readState in batch.readStates where node.reads[readState.context] != nil {
            node.reads[readState.context]?.index = readState.index
            node.waitingReads.append(readState.context)
        }
        serveReads(node)
        if batch.snapshotSuggested && node.isUp { takeSnapshot(node) }
    }
}
