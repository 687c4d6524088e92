import BallastRaft
import BallastStorage
#if canImport(Glibc)
import Glibc
#endif

extension RaftDriver {
    /// The loop thread: take every queued event, feed the core, then carry out its Ready.
    func runLoop() {
        let clock = ContinuousClock()
        // The thread's CPU time is read once a turn, at its end: waiting for events between
        // turns takes none, so the difference from the last reading is this turn's.
        var cpuAtLastTurnEnd = Self.threadCPUNanos()
        while let batch = events.popAll() {
            let started = clock.now
            let appliedBefore = applied
            turnSending = .zero
            turnReading = .zero
            turnCosts.reset()
            var eventStarted = started
            for event in batch {
                handle(event)
                let eventEnded = clock.now
                turnCosts.record(event, took: eventEnded - eventStarted)
                eventStarted = eventEnded
            }
            let handled = eventStarted
            processReady()
            isLeaderNow.store(node.currentRole == .leader, ordering: .relaxed)
            if !rebuildingSnapshot, node.hasCommittedToApply || isApplyBehind || hasReadsToComplete { _ = post(.continueApplying) }
            let took = clock.now - started
            let cpuNow = Self.threadCPUNanos()
            if took >= Self.slowTurn {
                reportSlowTurn(took, events: batch.count, applied: applied.rawValue - appliedBefore.rawValue,
                               handling: handled - started, cpuNanos: cpuNow - cpuAtLastTurnEnd)
            }
            cpuAtLastTurnEnd = cpuNow
        }
        failEverything(with: .stopped)
        if announcedLeaderTerm != nil {
            announcedLeaderTerm = nil
            leadershipObserver?(.notLeading)
        }
    }

    /// A loop turn this long delays heartbeats and votes by as much (the election timeout is
    /// 150–300 ms by default), so it is logged.
    static var slowTurn: Duration { .milliseconds(100) }

    /// CPU time this thread has used, in nanoseconds (`CLOCK_THREAD_CPUTIME_ID`).
    static func threadCPUNanos() -> Int64 {
        var time = timespec()
        guard clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time) == 0 else { return 0 }
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }

    /// Logs a slow turn, at most one line a second (counting the turns not logged), with where
    /// its time went: handling the events (`handleMicros`; the rest is carrying out the core's
    /// Ready: writes handed to the log writer, messages, applies), of that the messages handed
    /// to the transport (`sendMicros`; the TCP transport encodes them off this thread), and the reads
    /// completed (`readsMicros`), and the loop thread's own CPU time (`cpuMicros`). A turn whose
    /// CPU time is far below its length waited: for a lock, a full queue, or a core the machine
    /// gave to other threads. `handledByKind` splits the handling by kind of event (messages by
    /// their body) as `kind=micros/count`, costliest first, kinds under a millisecond left out;
    /// `slowestEvent` is the single event that took longest.
    func reportSlowTurn(_ took: Duration, events: Int, applied: UInt64, handling: Duration, cpuNanos: Int64) {
        let now = ContinuousClock.now
        if let last = lastSlowTurnLog, now - last < .seconds(1) {
            unloggedSlowTurns += 1
            return
        }
        let costs = turnCosts.summary
        logger.warning("slow Raft loop turn: heartbeats, votes and proposals waited", metadata: [
            "micros": "\(microseconds(took))", "events": "\(events)", "entriesApplied": "\(applied)",
            "handleMicros": "\(microseconds(handling))", "cpuMicros": "\(cpuNanos / 1_000)",
            "sendMicros": "\(microseconds(turnSending))", "readsMicros": "\(microseconds(turnReading))",
            "slowTurnsNotLogged": "\(unloggedSlowTurns)",
            "handledByKind": "\(costs.byKind)", "slowestEvent": "\(costs.slowest)",
        ])
        lastSlowTurnLog = now
        unloggedSlowTurns = 0
    }

    func handle(_ event: Event) {
        switch event {
        case .message(let message): node.step(message)
        case .tick:
            node.tick()
            handOverIfDiskFull()
        case .propose(let data, let message, let completion): handlePropose(data, message, completion)
        case .read(let completion): startRead(completion)
        case .configChange(let change, let context, let completion): proposeChange(change, context, completion)
        case .transfer(let target):
            do { try node.transferLeadership(to: target) } catch {
                logger.warning("leadership transfer refused", metadata: ["target": "\(target)", "error": "\(error)"])
            }
        case .persisted(let index, let term): node.persisted(through: index, term: term)
        case .storageFailed(let why):
            if storageFailure == nil { logger.critical("log write failed; refusing proposals", metadata: ["error": "\(why)"]) }
            storageFailure = why
            failEverything(with: .storageFailed(why))
        case .inspect(let body):
            var status = node.status
            status.applied = applied // what the state machine has applied, not what the core handed out
            body(status)
        case .continueApplying: break
        case .snapshotSerialized(let metadata, let data, let capture, let serialize):
            snapshotSerialized(metadata, data, capture: capture, serialize: serialize)
        case .restorePrepared(let metadata, let install, let took):
            restorePrepared(metadata, install, took: took)
        }
    }

    func handlePropose(_ data: [UInt8], _ message: (any Sendable)?, _ completion: @escaping ProposalCompletion) {
        if let failure = storageFailure { return completion(.failure(.storageFailed(failure))) }
        if node.currentRole == .leader, let why = diskFullReason?() { return completion(.failure(.diskFull(why))) }
        do {
            let index = try node.propose(data)
            pendingProposals[index] = PendingProposal(term: node.currentTerm, message: message, completion: completion)
        } catch {
            completion(.failure(.refused(error)))
        }
    }

    func proposeChange(_ change: ConfigChange, _ context: [UInt8], _ completion: @escaping ProposalCompletion) {
        if let failure = storageFailure { return completion(.failure(.storageFailed(failure))) }
        if node.currentRole == .leader, let why = diskFullReason?() { return completion(.failure(.diskFull(why))) }
        do {
            let index = try node.proposeConfigChange(change, context: context)
            pendingProposals[index] = PendingProposal(term: node.currentTerm, message: nil, completion: completion)
        } catch {
            completion(.failure(.refused(error)))
        }
    }

    /// A leader whose disk is full hands leadership to its most caught-up voter (asking again
    /// every election timeout until someone takes it), so the cluster keeps serving through
    /// nodes whose disks are fine. It cannot win an election while its writes stall (its own
    /// vote must be durable before it asks for others'), and it can still vote and replicate
    /// within the space left.
    func handOverIfDiskFull() {
        guard node.currentRole == .leader, diskFullReason?() != nil else {
            ticksSinceDiskHandover = .max
            return
        }
        if ticksSinceDiskHandover < handoverIntervalTicks {
            ticksSinceDiskHandover += 1
            return
        }
        let status = node.status
        let candidates = status.progress.filter { $0.key != status.id && status.membership.isVoter($0.key) }
        guard let target = candidates.max(by: { $0.value.match < $1.value.match })?.key else { return }
        ticksSinceDiskHandover = 0
        logger.warning("disk full: handing leadership over", metadata: ["target": "\(target)"])
        do { try node.transferLeadership(to: target) } catch {
            logger.warning("leadership handover refused", metadata: ["target": "\(target)", "error": "\(error)"])
        }
    }

    func startRead(_ completion: @escaping ReadCompletion) {
        let context = nextReadContext
        nextReadContext &+= 1
        do {
            try node.readIndex(context: context)
            pendingReads[context] = completion
        } catch {
            completion(.failure(.refused(error)))
        }
    }

    /// Carries out one Ready in the order its documentation fixes.
    func processReady() {
        // Committed entries still waiting from an earlier Ready come first: no more are taken
        // until they are applied, so the queue holds at most one Ready's worth.
        // None are taken while a snapshot is rebuilt either: they apply after it.
        let ready = node.takeReady(handOutCommitted: !isApplyBehind && !rebuildingSnapshot)
        if ready.isEmpty {
            guard isApplyBehind || hasReadsToComplete else { return }
            applyWithinBudget()
            completeReads()
            announceLeadership()
            return
        }
        if !ready.messages.isEmpty {
            let sending = ContinuousClock.now
            transport.send(ready.messages)
            turnSending += ContinuousClock.now - sending
        }
        if let snapshot = ready.snapshot { restoreSnapshot(snapshot) }
        persist(ready)
        applyQueue += ready.committed
        applyWithinBudget()
        for read in ready.readStates {
            guard let completion = pendingReads.removeValue(forKey: read.context) else { continue }
            confirmedReads.append((read.index, completion))
        }
        for context in ready.droppedReads { pendingReads.removeValue(forKey: context)?(.failure(.readDropped)) }
        completeReads()
        if ready.snapshotSuggested { takeSnapshot() }
        announceLeadership()
    }

    /// Tells the observer when leadership starts (once the term's own no-op is applied) or ends.
    func announceLeadership() {
        guard let observer = leadershipObserver else { return }
        if node.currentRole == .leader {
            let term = node.currentTerm
            guard announcedLeaderTerm != term, node.lastAppliedTermIsCurrent(applied: applied) else { return }
            if announcedLeaderTerm != nil { observer(.notLeading) }
            announcedLeaderTerm = term
            observer(.leading(term: term))
        } else if announcedLeaderTerm != nil {
            announcedLeaderTerm = nil
            observer(.notLeading)
        }
    }

    /// Time one loop turn may spend applying committed entries. A node catching up (after a
    /// restart, a partition or a pause) is handed up to `maxCommittedBytesPerReady` at once,
    /// thousands of small entries: applied in one turn they held heartbeats and votes for up to
    /// 0.74 s in a chaos soak. The rest waits for the next turns, after the events that came
    /// meanwhile.
    static var applyBudget: Duration { .milliseconds(20) }

    /// Committed entries handed out by the core and not yet applied.
    var isApplyBehind: Bool { applyNext < applyQueue.count }

    /// Applies queued committed entries, at least one, until the queue is empty or the turn's
    /// budget is spent.
    func applyWithinBudget() {
        guard isApplyBehind, !rebuildingSnapshot else { return }
        let clock = ContinuousClock()
        let deadline = clock.now + Self.applyBudget
        repeat {
            apply(applyQueue[applyNext])
            applyNext += 1
        } while isApplyBehind && clock.now < deadline
        stateMachine.finishApplying()
        if !isApplyBehind {
            applyQueue.removeAll(keepingCapacity: true)
            applyNext = 0
        }
    }

    func apply(_ entry: Entry) {
        precondition(entry.index == applied.next, "applied \(applied) then got \(entry.index): committed entries must be contiguous")
        let pending = pendingProposals.removeValue(forKey: entry.index)
        // The entry at (index, term) is unique (Log Matching): committed in the term this node
        // proposed it in, it is that proposal, and its data the encoding of the proposal's message.
        let output: (any Sendable)?
        if let pending, pending.term == entry.term, let message = pending.message {
            output = stateMachine.apply(entry, proposed: message)
        } else {
            output = stateMachine.apply(entry)
        }
        applied = entry.index
        guard let pending else { return }
        pending.completion(pending.term == entry.term
            ? .success(AppliedEntry(index: entry.index, output: output)) : .failure(.superseded(index: entry.index)))
    }

    /// Time one loop turn may spend completing reads (each runs its read on the loop, at its
    /// read point: a describe, a history target, a List page of up to 5,000 rows). A client that
    /// pipelines hundreds of reads would otherwise hold heartbeats and votes for all of them;
    /// the rest wait for the next turns, after the events that came meanwhile.
    static var readBudget: Duration { .milliseconds(20) }

    /// Whether a confirmed read waits only for its turn (its read point is applied).
    var hasReadsToComplete: Bool { confirmedReads.contains { $0.index <= applied } }

    /// Completes, in order of confirmation, the reads whose read point is applied, at least one,
    /// until the turn's read budget is spent.
    func completeReads() {
        guard !confirmedReads.isEmpty else { return }
        let clock = ContinuousClock()
        let reading = clock.now
        defer { turnReading += clock.now - reading }
        let deadline = reading + Self.readBudget
        var waiting: [(index: LogIndex, completion: ReadCompletion)] = []
        var completedAny = false
        for read in confirmedReads {
            if read.index <= applied && (!completedAny || clock.now < deadline) {
                read.completion(.success(read.index))
                completedAny = true
            } else {
                waiting.append(read)
            }
        }
        confirmedReads = waiting
    }

    /// Captures the state machine at `applied` and serializes it on a thread of its own, so a
    /// large state does not stall the loop (and with it heartbeats, so a leader would lose its
    /// term). The log is compacted once the bytes are back (`snapshotSerialized`).
    func takeSnapshot() {
        guard !snapshotInProgress, !rebuildingSnapshot else {
            snapshotWanted = true
            return
        }
        guard let metadata = node.snapshotMetadata(at: applied) else { return }
        let clock = ContinuousClock()
        let started = clock.now
        let serialize = stateMachine.captureSnapshot()
        let captured = clock.now
        snapshotInProgress = true
        let events = self.events
        startThread(named: "raft-snapshot-\(id)") {
            lowerThisThreadsPriority()
            let data = serialize()
            events.push(.snapshotSerialized(metadata, data, capture: captured - started, serialize: clock.now - captured),
                        waitForRoom: false)
        }
    }

    /// A snapshot taken by `takeSnapshot` is serialized: the core hears of it (it is dropped if
    /// a newer one was installed meanwhile), then the log saves it and drops what it covers.
    func snapshotSerialized(_ metadata: SnapshotMetadata, _ data: [UInt8]?, capture: Duration, serialize: Duration) {
        snapshotInProgress = false
        defer {
            if snapshotWanted {
                snapshotWanted = false
                takeSnapshot()
            }
        }
        guard let data else {
            logger.warning("snapshot not taken; the log keeps its entries", metadata: ["index": "\(metadata.index)"])
            return
        }
        let snapshot = Snapshot(metadata: metadata, data: data)
        guard node.snapshotTaken(snapshot) else {
            logger.info("snapshot dropped: a newer one was installed meanwhile", metadata: ["index": "\(metadata.index)"])
            return
        }
        logger.info("snapshot taken", metadata: [
            "index": "\(metadata.index)", "bytes": "\(data.count)",
            "captureMicros": "\(microseconds(capture))", "serializeMicros": "\(microseconds(serialize))",
        ])
        let report = reportFailure
        let logger = self.logger
        writer.submit(perform: { log in
            try log.saveSnapshot(snapshot)
            try log.compact(through: snapshot.metadata.index)
        }, completion: { result in
            // A local snapshot is an optimisation: without room for it the log keeps every entry.
            if case .failure(let error as StorageError) = result, error.isNoSpace {
                logger.warning("snapshot not saved for lack of space; the log keeps its entries",
                               metadata: ["index": "\(snapshot.metadata.index)", "error": "\(error)"])
                return
            }
            report(result)
        })
    }

    /// Hands a Ready's writes to the log writer in the documented order: a received snapshot
    /// (durable when written), then the entries, then the hard state, in one group-committed
    /// batch. Once durable, the messages that waited for it go out and the core hears what is
    /// durable. These notifications never wait for room in the event queue: the loop may be
    /// waiting on the writer, and the writer must never wait on the loop.
    func persist(_ ready: Ready) {
        if let snapshot = ready.snapshot {
            // A snapshot from the leader is already applied: it must land, so a full disk stalls it.
            writer.submit(perform: { try $0.installSnapshot(snapshot) }, retryingOnNoSpace: true, completion: reportFailure)
        }
        guard ready.hardState != nil || !ready.entries.isEmpty || ready.snapshot != nil || !ready.messagesAfterPersist.isEmpty
        else { return }
        let durable = ready.entries.last.map { ($0.index, $0.term) }
            ?? ready.snapshot.map { ($0.metadata.index, $0.metadata.term) }
        let messages = ready.messagesAfterPersist
        writer.submit(entries: ready.entries, hardState: ready.hardState) { [transport, events] result in
            switch result {
            case .success:
                if !messages.isEmpty { transport.send(messages) }
                if let (index, term) = durable { events.push(.persisted(index, term), waitForRoom: false) }
            case .failure(let error):
                events.push(.storageFailed("\(error)"), waitForRoom: false)
            }
        }
    }

    /// A completion that reports a failed log operation to the loop.
    var reportFailure: @Sendable (Result<Void, any Error>) -> Void {
        { [events] result in
            if case .failure(let error) = result { events.push(.storageFailed("\(error)"), waitForRoom: false) }
        }
    }

    /// The core installed a snapshot from the leader (it is beyond the commit index): the state
    /// machine rebuilds its state from it on a thread of its own, so a large state does not hold
    /// heartbeats and votes (0.35 s on the loop after about 13,600 workflows in a chaos soak,
    /// growing with the state). Nothing is applied until it is in place; a newer snapshot
    /// arriving meanwhile is rebuilt next, in its stead, never beside it.
    func restoreSnapshot(_ snapshot: Snapshot) {
        // Entries handed out before it are older than the snapshot: it holds their effects.
        applyQueue.removeAll { $0.index <= snapshot.metadata.index }
        applyNext = 0
        failProposals(through: snapshot.metadata.index)
        guard !rebuildingSnapshot else {
            queuedRestore = snapshot
            return
        }
        rebuildingSnapshot = true
        let rebuild = stateMachine.prepareRestore(from: snapshot)
        let events = self.events
        startThread(named: "raft-restore-\(id)") {
            let clock = ContinuousClock()
            let started = clock.now
            let install = rebuild()
            events.push(.restorePrepared(snapshot.metadata, install, took: clock.now - started), waitForRoom: false)
        }
    }

    /// A snapshot is rebuilt: put it in place, unless a newer one arrived meanwhile (then that
    /// one is rebuilt instead). Without an install step (the rebuild failed) the driver stays
    /// as during the rebuild, applying nothing.
    func restorePrepared(_ metadata: SnapshotMetadata, _ install: SnapshotInstall?, took: Duration) {
        if let newer = queuedRestore {
            queuedRestore = nil
            rebuildingSnapshot = false
            logger.info("snapshot rebuilt, but a newer one arrived meanwhile", metadata: [
                "index": "\(metadata.index)", "newerIndex": "\(newer.metadata.index)",
            ])
            restoreSnapshot(newer)
            return
        }
        guard let install else {
            // The rebuild failed (the state machine reported why; the node stops) or was
            // abandoned (the node is stopping): nothing may be applied on the old state.
            logger.warning("snapshot from the leader not put in place; applying nothing more", metadata: ["index": "\(metadata.index)"])
            return
        }
        install()
        rebuildingSnapshot = false
        applied = metadata.index
        logger.info("snapshot from the leader in place", metadata: [
            "index": "\(metadata.index)", "rebuildMicros": "\(microseconds(took))",
        ])
        if snapshotWanted {
            snapshotWanted = false
            takeSnapshot()
        }
    }

    /// Proposals at or below `index` that were not applied here were overwritten by a snapshot.
    func failProposals(through index: LogIndex) {
        for key in pendingProposals.keys.sorted() where key <= index {
            pendingProposals.removeValue(forKey: key)?.completion(.failure(.superseded(index: key)))
        }
    }

    func failEverything(with error: RaftDriverError) {
        for key in pendingProposals.keys.sorted() { pendingProposals.removeValue(forKey: key)?.completion(.failure(error)) }
        for key in pendingReads.keys.sorted() { pendingReads.removeValue(forKey: key)?(.failure(error)) }
        for read in confirmedReads { read.completion(.failure(error)) }
        confirmedReads = []
    }
}

/// Whole microseconds (log lines, `usleep`).
func microseconds(_ duration: Duration) -> Int64 {
    let (seconds, attoseconds) = duration.components
    return seconds * 1_000_000 + attoseconds / 1_000_000_000_000
}

/// Makes the calling thread yield the CPU to the node's other threads (nice 10: about a tenth
/// of a core's share against a normal thread when the machine is busy): a snapshot being
/// serialized must not delay the loop, heartbeats and fsyncs enough to cost an election, and
/// taking longer costs it only log kept a little longer.
private func lowerThisThreadsPriority() {
#if canImport(Glibc)
    // On Linux the nice value belongs to the thread, and 0 names the calling one.
    _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
#endif
}
