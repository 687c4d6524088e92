import BallastEngine
import BallastProto

extension Dispatcher {
    /// Fires the deadlines due by the leader's wall clock: one proposal each, all in flight at
    /// once (Raft's group commit batches them), at most `maxTimerProposalsInFlight`, and
    /// releases the workflow-task retries whose backoff has passed. Called every few
    /// milliseconds by the node's timer; does nothing unless leading.
    ///
    /// Most task deadlines outlive their task (a workflow task's 10 s start-to-close, an
    /// activity's timeouts): the engine no longer has them when they come due. Those are
    /// dropped on the loop thread (`WorkflowEngine.isPending`) instead of being committed only
    /// to be rejected as stale — which cost three replicated, fsynced entries per one-activity
    /// workflow. The ones kept are exactly those a new leader would rebuild from `dueTimers()`.
    func tick() {
        let now = Self.wallNanos()
        let (due, rebuild, epoch) = state.withLock { state -> ([DueTimer], Bool, UInt64) in
            guard state.core.isLeading else { return ([], false, state.epoch) }
            let room = max(0, maxTimerProposalsInFlight - state.timerProposalsInFlight)
            let due = state.timers.popDue(nowNanos: now, limit: room)
            state.timerProposalsInFlight += due.count
            return (due, state.timers.takeRebuildRequest(nowNanos: now), state.epoch)
        }
        if !due.isEmpty { fireLive(due, nowNanos: now, epoch: epoch) }
        if rebuild { rebuildTimers(epoch: epoch) }
        // Workflow-task retries whose backoff has passed go to their queues.
        let monotonic = monotonicNanos()
        let work = state.withLock { state -> Dispatcher.Work? in
            guard state.core.isLeading, state.core.releaseHeld(nowNanos: monotonic) else { return nil }
            return collectWork(&state)
        }
        if let work { perform(work) }
    }

    /// Keeps the deadlines the engine still has (read on the loop thread, which owns the
    /// engine) and proposes them.
    private func fireLive(_ due: [DueTimer], nowNanos: Int64, epoch: UInt64) {
        guard let driver else {
            state.withLock { state in if state.epoch == epoch { state.timerProposalsInFlight -= due.count } }
            return
        }
        driver.inspect { [self] _ in
            let live = stateMachine.read { engine in due.filter { engine.isPending($0) } }
            let dropped = due.count - live.count
            if dropped > 0 {
                state.withLock { state in if state.epoch == epoch { state.timerProposalsInFlight -= dropped } }
                metrics.recordDeadlinesDropped(dropped)
            }
            for timer in live { fire(timer, nowNanos: nowNanos, epoch: epoch) }
        }
    }

    private func fire(_ timer: DueTimer, nowNanos: Int64, epoch: UInt64) {
        // Never stamp a time before the deadline: the engine refuses a deadline that is not due.
        let entry = timer.makeEntry(leaderTimeUnixNanos: max(nowNanos, timer.dueTimeUnixNanos), formatVersion: entryFormat)
        propose(entry) { [self] result in
            var fired = false
            state.withLock { state in
                guard state.epoch == epoch else { return }
                state.timerProposalsInFlight -= 1
                switch result {
                case .success(let applied):
                    // A rejected one was stale (the timer was cancelled, the task completed): harmless.
                    fired = applied.response.rejection == nil
                case .failure:
                    state.timers.add(timer)
                }
            }
            if fired { metrics.recordTimerFired() }
        }
    }

    /// Re-reads every deadline from the engine (after the queue let some go), keeping what it
    /// holds meanwhile: the queue keeps the earliest, so the refill only adds what it lacks.
    private func rebuildTimers(epoch: UInt64) {
        guard let driver else { return }
        driver.inspect { [self] _ in reloadDeadlines(ifEpoch: epoch) }
    }

    /// While leading, refills the timer queue with every deadline of the engine as it is now
    /// (emptied first after a leadership change or a restore; kept as it is when `expected`
    /// names the epoch of a refill the full queue asked for, so that the deadlines it holds
    /// are not late while the listing runs), without holding the loop thread: the engine is captured here (a
    /// copy-on-write copy, microseconds) and its deadlines are listed and added from a thread
    /// of its own. Listing them walks every open run (and the retention window); on the loop, with
    /// 33,000 runs, that held a new leader's loop 0.3 s — longer than an election timeout, so
    /// it often lost its term at once (seen in a chaos soak). Deadlines that entries applied
    /// meanwhile add stay (adding a known one is a no-op); ones that went stale meanwhile are
    /// dropped when they come due (`fireLive`). One thread lists at a time: a request arriving
    /// meanwhile waits for it, replacing any request waiting before it, so an election storm
    /// over a large state starts neither a thread nor an engine copy per leadership change
    /// (each copy makes the next applies copy what they change). Call on the loop thread.
    func reloadDeadlines(ifEpoch expected: UInt64? = nil) {
        let epoch = state.withLock { state -> UInt64? in
            guard state.core.isLeading, expected == nil || expected == state.epoch else { return nil }
            if expected == nil { state.timers.removeAll() } else { state.timers.clearOverflow() }
            return state.epoch
        }
        guard let epoch else { return }
        let engine = stateMachine.read { $0 }
        let firstInLine = state.withLock { state -> Bool in
            if state.listingDeadlines {
                state.queuedListing = (epoch, engine)
                return false
            }
            state.listingDeadlines = true
            return true
        }
        guard firstInLine else { return }
        startThread(named: "leader-deadlines") { [self] in
            var listing: (epoch: UInt64, engine: WorkflowEngine)? = (epoch, engine)
            while let (epoch, engine) = listing {
                state.withLock { $0.beforeListing }?()
                let deadlines = engine.dueTimers()
                var current = false
                listing = state.withLock { state in
                    state.deadlineListings += 1
                    if state.epoch == epoch {
                        state.timers.add(contentsOf: deadlines)
                        current = true
                    }
                    guard let next = state.queuedListing else {
                        state.listingDeadlines = false
                        return nil
                    }
                    state.queuedListing = nil
                    return next
                }
                if current { logger.info("dispatcher deadlines loaded", metadata: ["deadlines": "\(deadlines.count)"]) }
            }
        }
    }
}
