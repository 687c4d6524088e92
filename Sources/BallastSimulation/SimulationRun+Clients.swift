import BallastRaft

/// Simulated clients: proposals with unique ids and ReadIndex reads, mostly sent to the leader.
extension SimulationRun {
    /// Mostly the newest leader, sometimes a stale one (clients with old leader information), sometimes anyone.
    private func clientTarget() -> SimulatedNode? {
        let roll = random.int(0...9)
        if roll < 7, let leader = currentLeader() { return leader }
        let leaders = nodes.filter { $0.isUp && $0.lastRole == .leader }
        if roll < 9, !leaders.isEmpty { return random.pick(leaders) }
        let up = nodes.filter(\.isUp)
        return up.isEmpty ? nil : random.pick(up)
    }

    /// Proposes a new unique id to the node a client believes is the leader.
    func clientPropose() {
        guard let target = clientTarget() else { return }
        let id = nextProposalID
        nextProposalID += 1
        let index: LogIndex?
        do { index = try target.core?.propose(ListStateMachine.payload(for: id)) } catch {
            stats.proposalsRejected += 1
            return
        }
        guard let index, let term = target.core?.status.term else { return }
        target.proposals[index] = PendingProposal(id: id, term: term, proposedAt: now)
        stats.proposals += 1
        trace.record(.proposed(target.id, id: id, index, term), at: now)
        afterTurn(target)
    }

    /// Starts a ReadIndex read, remembering what had been acknowledged when it started.
    func clientRead() {
        guard let target = clientTarget() else { return }
        let context = nextReadContext
        nextReadContext += 1
        do { try target.core?.readIndex(context: context) } catch {
            stats.readsFailed += 1
            return
        }
        target.reads[context] = PendingRead(acknowledgedAtStart: checker.maxAcknowledgedIndex, index: nil)
        afterTurn(target)
    }
}
