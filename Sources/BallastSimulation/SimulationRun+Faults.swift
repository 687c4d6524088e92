import BallastRaft

/// The fault schedule: partitions (biased toward short isolations of the leader, which is what
/// exposes the figure-8 case), crashes, leadership transfers, membership changes, then healing.
extension SimulationRun {
    /// The time to the next fault, exponential-ish around the profile's mean.
    func nextFaultGap() -> UInt64 {
        random.micros((profile.meanFaultGapMicros / 4)...(profile.meanFaultGapMicros * 2))
    }

    /// Injects one fault drawn by weight from all kinds; a kind this seed disables (swarm testing)
    /// does nothing, so a seed with fewer kinds has fewer faults rather than more of each.
    func performFault() {
        var roll = random.int(0...(FaultKind.totalWeight - 1))
        for kind in FaultKind.allCases {
            if roll < kind.weight {
                if profile.enabledFaults.contains(kind) { perform(kind) }
                return
            }
            roll -= kind.weight
        }
    }

    private func perform(_ kind: FaultKind) {
        switch kind {
        case .isolateLeader: isolateLeader()
        case .splitCluster: splitCluster()
        case .cutLinksOneWay: cutLinksOneWay()
        case .crashLeader: crashSome(preferLeader: true)
        case .crashAny: crashSome(preferLeader: false)
        case .crashAll: crashAll()
        case .healPartitions: clearPartitions()
        case .transferLeadership: transferLeadership()
        case .changeMembership: changeMembership()
        }
    }

    private var liveNodes: [SimulatedNode] { nodes.filter { $0.started && !$0.removed } }

    /// Cuts the leader off from all but at most one follower for one to four election timeouts,
    /// so its latest entries stay partially replicated while others elect a new leader.
    private func isolateLeader() {
        guard let leader = currentLeader() else { return splitCluster() }
        isolate(leader, timeouts: 1...4)
    }

    /// Cuts `leader` off from all but at most one other node for about `timeouts` election timeouts.
    func isolate(_ leader: SimulatedNode, timeouts: ClosedRange<Int>) {
        var others = liveNodes.filter { $0.slot != leader.slot }
        // Keeping one follower still leaves the leader a minority only in clusters of five or more.
        if others.count >= 4 && random.chance(0.4) { others.remove(at: random.int(0...(others.count - 1))) }
        let duration = electionTimeoutMicros * UInt64(random.int(timeouts)) + random.micros(0...electionTimeoutMicros)
        trace.record(.fault("isolate leader \(leader.id) from \(others.map(\.id)) for \(TraceRing.formatTime(duration))"), at: now)
        partition([leader], others, oneWay: random.chance(0.2), for: duration)
    }

    private func splitCluster() {
        var shuffled = liveNodes
        shuffled.shuffle(using: &random)
        guard shuffled.count >= 2 else { return }
        let cut = random.int(1...(shuffled.count / 2))
        let duration = random.micros(50_000...1_000_000)
        let left = Array(shuffled[..<cut])
        let right = Array(shuffled[cut...])
        trace.record(.fault("partition \(left.map(\.id)) | \(right.map(\.id)) for \(TraceRing.formatTime(duration))"), at: now)
        partition(left, right, oneWay: false, for: duration)
    }

    private func cutLinksOneWay() {
        let live = liveNodes
        guard live.count >= 2 else { return }
        let duration = random.micros(50_000...1_000_000)
        for _ in 0..<random.int(1...3) {
            let from = random.pick(live)
            let to = random.pick(live.filter { $0.slot != from.slot })
            trace.record(.fault("cut \(from.id)→\(to.id) one way for \(TraceRing.formatTime(duration))"), at: now)
            partition([from], [to], oneWay: true, for: duration)
        }
    }

    private func crashSome(preferLeader: Bool) {
        let up = liveNodes.filter(\.isUp)
        // A node in the middle of a write is the interesting victim: it may lose or tear it.
        let writing = up.filter { $0.store.unsyncedWriteCount > 0 }
        let candidates = writing.isEmpty || random.chance(0.3) ? up : writing
        guard let victim = (preferLeader ? currentLeader() : nil) ?? (candidates.isEmpty ? nil : random.pick(candidates)) else { return }
        let downtime = random.chance(0.5) ? random.micros(5_000...electionTimeoutMicros) : random.micros(electionTimeoutMicros...1_500_000)
        crash(victim, restartAfter: downtime)
    }

    private func crashAll() {
        trace.record(.fault("crash every node"), at: now)
        for node in liveNodes where node.isUp { crash(node, restartAfter: random.micros(5_000...300_000)) }
    }

    private func transferLeadership() {
        guard let leader = currentLeader(), let status = leader.core?.status else { return }
        let candidates = status.membership.voters.filter { $0 != leader.id }
        guard !candidates.isEmpty else { return }
        let target = random.pick(candidates)
        trace.record(.fault("transfer leadership \(leader.id) → \(target)"), at: now)
        do { try leader.core?.transferLeadership(to: target) } catch { return }
        stats.transfers += 1
        afterTurn(leader)
    }

    /// Moves the membership one step: add the spare as a learner, promote it once caught up,
    /// then remove one original voter other than the leader.
    func changeMembership() {
        guard let leader = currentLeader(), let status = leader.core?.status, let spare = nodes.last,
            spare.joinsLater
        else { return }
        let membership = leader.machine.membership
        let change: ConfigChange
        if membership.isLearner(spare.id) {
            guard let progress = status.progress[spare.id], progress.match.advanced(by: 5) >= status.commit else { return }
            change = .promote(spare.id)
        } else if membership.isVoter(spare.id) {
            guard membership.voters.count > options.nodeCount,
                let victim = membership.voters.first(where: { $0 != leader.id && $0 != spare.id })
            else { return }
            change = .remove(victim)
        } else {
            guard !spare.removed, !spare.started || spare.isUp else { return }
            if !spare.started { start(spare) }
            change = .addLearner(spare.id)
        }
        do { _ = try leader.core?.proposeConfigChange(change) } catch { return }
        stats.configChanges += 1
        trace.record(.fault("\(leader.id) proposes \(change)"), at: now)
        afterTurn(leader)
    }

    /// Ends the fault phase: every link restored, every node restarted, no more loss or duplication.
    func heal() {
        healedAt = now
        trace.record(.fault("heal: faults stop, every node restarts"), at: now)
        clearPartitions()
        for node in nodes where node.started && !node.removed && !node.isUp { start(node) }
        schedule(.livenessDeadline, after: options.livenessBoundMicros)
    }
}
