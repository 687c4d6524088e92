/// Membership change one server at a time (thesis §4.1): a config entry takes effect as soon as it is
/// appended; learners receive the log without voting; leadership transfer (thesis §3.10).
extension RaftNode {
    /// Proposes a one-server membership change; only one may be uncommitted at a time. `context`
    /// is stored after the change in the entry's data and ignored by Raft (the shell's use).
    public mutating func proposeConfigChange(_ change: ConfigChange, context: [UInt8] = []) throws(RaftError) -> LogIndex {
        guard role == .leader else { throw .notLeader(leaderHint: leader) }
        guard leadTransferee == nil else { throw .leadershipTransferInProgress }
        guard pendingConfigIndex <= commit else { throw .configChangeInProgress }
        if case .failure(let error) = membership.applying(change) { throw error }
        if case .promote(let learner) = change {
            let match = progress[learner]?.match ?? .zero
            let lag = Int(log.lastIndex.rawValue - min(match, log.lastIndex).rawValue)
            guard lag <= configuration.maxPromotionLagEntries else {
                throw .invalidConfigChange(
                    "\(learner) is \(lag) entries behind the leader's last index \(log.lastIndex) (limit \(configuration.maxPromotionLagEntries)); promote it once it has caught up")
            }
        }
        let index = appendAsLeader(kind: .configChange, data: change.encoded + context)
        pendingConfigIndex = index
        return index
    }

    /// Hands leadership to `target` (TimeoutNow once it is caught up).
    public mutating func transferLeadership(to target: NodeID) throws(RaftError) {
        guard role == .leader else { throw .notLeader(leaderHint: leader) }
        guard membership.isVoter(target) else { throw .unknownTransferTarget(target) }
        guard target != id, leadTransferee != target else { return }
        leadTransferee = target
        // The transfer is abandoned if it has not finished within one election timeout (see tickLeader).
        electionElapsed = 0
        if progress[target]?.match == log.lastIndex {
            send(to: target, .timeoutNow)
        } else {
            _ = sendAppend(to: target, sendIfEmpty: false)
        }
    }

    /// Applies an appended config entry to the membership in force. Malformed or inapplicable
    /// changes are skipped identically on every member, so memberships never diverge.
    mutating func applyConfigEntry(_ entry: Entry) {
        guard let change = ConfigChange(encoded: entry.data), case .success(let next) = membership.applying(change) else { return }
        membership = next
        membershipChanged()
    }

    /// The membership after the config entries among `entries`, starting from `base`.
    func membershipFolding(_ entries: ArraySlice<Entry>, over base: Membership) -> Membership {
        var result = base
        for entry in entries where entry.kind == .configChange {
            if let change = ConfigChange(encoded: entry.data), case .success(let next) = result.applying(change) { result = next }
        }
        return result
    }

    /// Brings role and replication bookkeeping in line with `membership`.
    mutating func membershipChanged() {
        switch role {
        case .learner where membership.isVoter(id): role = .follower
        case .follower where membership.isLearner(id): role = .learner
        default: break
        }
        guard role == .leader else { return }
        let members = Set(membership.allMembers)
        for member in members where member != id && progress[member] == nil {
            progress[member] = Progress(match: .zero, next: log.lastIndex.next)
        }
        for peer in progress.keys where !members.contains(peer) { progress[peer] = nil }
        if let transferee = leadTransferee, !membership.isVoter(transferee) { leadTransferee = nil }
        maybeCommit()
    }

    /// A leader whose removal has committed steps down (thesis §4.2.2).
    mutating func stepDownIfRemovalCommitted() {
        guard role == .leader, !membership.isVoter(id), pendingConfigIndex <= commit else { return }
        becomeFollower(term: term, leader: nil)
    }
}
