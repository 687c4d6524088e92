/// Leader election: timers, pre-vote, votes, check-quorum and role changes (Raft §5.2, thesis §9.6, §6.2).
extension RaftNode {
    /// Draws a new election timeout in [electionTimeoutTicks, 2·electionTimeoutTicks).
    mutating func resetElectionTimer() {
        electionElapsed = 0
        let span = UInt64(max(1, configuration.electionTimeoutTicks))
        randomizedElectionTimeout = configuration.electionTimeoutTicks + Int(random.next() % span)
    }

    /// Whether this member may campaign: it is a voter in the membership it knows.
    var isPromotable: Bool { membership.isVoter(id) }

    /// Whether this member heard from a live leader within the election timeout (the leader lease).
    var heardFromLeaderRecently: Bool { leader != nil && electionElapsed < configuration.electionTimeoutTicks }

    mutating func tickElection() {
        electionElapsed += 1
        if isPromotable && electionElapsed >= randomizedElectionTimeout {
            campaign(leadershipTransfer: false)
        }
    }

    mutating func tickLeader() {
        heartbeatElapsed += 1
        electionElapsed += 1
        if electionElapsed >= configuration.electionTimeoutTicks {
            electionElapsed = 0
            if configuration.checkQuorum && !hasActiveQuorum() {
                becomeFollower(term: term, leader: nil)
                return
            }
            for peer in progress.keys { progress[peer]?.recentlyActive = false }
            // A transfer that has not finished within an election timeout is abandoned.
            leadTransferee = nil
        }
        reads.ticksSinceRound = min(reads.ticksSinceRound + 1, 1 << 30)
        for peer in progress.keys {
            guard var state = progress[peer] else { continue }
            state.ticksSinceUnpaused = min(state.ticksSinceUnpaused + 1, 1 << 30)
            if state.state == .snapshot { state.ticksSinceChunk += 1 }
            progress[peer] = state
        }
        if heartbeatElapsed >= configuration.heartbeatIntervalTicks {
            heartbeatElapsed = 0
            broadcastHeartbeat(readContext: reads.pending.isEmpty ? 0 : reads.lastRound)
        }
    }

    /// Whether a majority of voters (this leader included, if a voter) was heard from in this window.
    func hasActiveQuorum() -> Bool {
        let active = membership.voters.filter { $0 == id || progress[$0]?.recentlyActive == true }.count
        return active >= membership.quorum
    }

    /// Starts an election: a pre-vote round first unless disabled or this is a leadership transfer.
    mutating func campaign(leadershipTransfer: Bool) {
        if configuration.preVote && !leadershipTransfer {
            becomePreCandidate()
        } else {
            becomeCandidate(leadershipTransfer: leadershipTransfer)
        }
    }

    mutating func becomePreCandidate() {
        precondition(role != .leader, "a leader does not run a pre-vote")
        dropPendingReads()
        role = .preCandidate
        leader = nil
        votes = [id: true]
        resetElectionTimer()
        if electionOutcome() == .won {
            becomeCandidate(leadershipTransfer: false)
            return
        }
        for voter in membership.voters where voter != id {
            send(to: voter, .preVote(lastLogIndex: log.lastIndex, lastLogTerm: log.lastTerm), term: term.next)
        }
    }

    mutating func becomeCandidate(leadershipTransfer: Bool) {
        precondition(role != .leader, "a leader does not campaign")
        dropPendingReads()
        setTerm(term.next)
        votedFor = id
        role = .candidate
        leader = nil
        votes = [id: true]
        resetElectionTimer()
        if electionOutcome() == .won {
            becomeLeader()
            return
        }
        // The vote for itself must be durable before anyone acts on this campaign.
        let request = MessageBody.vote(lastLogIndex: log.lastIndex, lastLogTerm: log.lastTerm, leadershipTransfer: leadershipTransfer)
        for voter in membership.voters where voter != id {
            send(to: voter, request, afterPersist: true)
        }
    }

    mutating func becomeFollower(term newTerm: Term, leader newLeader: NodeID?) {
        if newTerm > term {
            setTerm(newTerm)
            votedFor = nil
        }
        if role == .leader || !progress.isEmpty { dropPendingReads() }
        role = membership.isLearner(id) ? .learner : .follower
        leader = newLeader
        votes = [:]
        progress = [:]
        leadTransferee = nil
        needsBroadcast = false
        commitAdvancedSinceBroadcast = false
        heartbeatElapsed = 0
        resetElectionTimer()
    }

    mutating func becomeLeader() {
        precondition(role == .candidate, "only a candidate becomes leader")
        role = .leader
        leader = id
        votes = [:]
        leadTransferee = nil
        heartbeatElapsed = 0
        electionElapsed = 0
        uncommittedBytes = 0
        progress = [:]
        for member in membership.allMembers where member != id {
            progress[member] = Progress(match: .zero, next: log.lastIndex.next)
        }
        // Config changes wait until everything before this term (and the no-op) commits.
        pendingConfigIndex = log.lastIndex
        _ = appendAsLeader(kind: .noop, data: [])
    }

    /// Raises the term; terms never decrease.
    mutating func setTerm(_ newTerm: Term) {
        precondition(newTerm >= term, "term moving back from \(term) to \(newTerm)")
        term = newTerm
    }

    enum ElectionOutcome { case won, lost, pending }

    func electionOutcome() -> ElectionOutcome {
        let voters = membership.voters
        let granted = voters.filter { votes[$0] == true }.count
        let rejected = voters.filter { votes[$0] == false }.count
        if granted >= membership.quorum { return .won }
        if rejected > voters.count - membership.quorum { return .lost }
        return .pending
    }

    /// Answers a pre-vote: granted only for a later term, an up-to-date log, and no live leader. Changes no state.
    mutating func handlePreVote(_ message: Message, lastLogIndex: LogIndex, lastLogTerm: Term) {
        let upToDate = configuration.mutations.grantVoteWithoutLogCheck || log.isUpToDate(lastIndex: lastLogIndex, lastTerm: lastLogTerm)
        let granted = message.term > term && upToDate && !heardFromLeaderRecently
        // A grant carries the candidate's future term; a rejection carries ours so a stale candidate learns it.
        send(to: message.from, .preVoteResponse(granted: granted), term: granted ? message.term : term)
    }

    mutating func handlePreVoteResponse(_ message: Message, granted: Bool) {
        if message.term > term && !granted {
            becomeFollower(term: message.term, leader: nil)
            return
        }
        guard role == .preCandidate else { return }
        guard (granted && message.term == term.next) || (!granted && message.term == term) else { return }
        votes[message.from] = granted
        switch electionOutcome() {
        case .won: becomeCandidate(leadershipTransfer: false)
        case .lost: becomeFollower(term: term, leader: nil)
        case .pending: break
        }
    }

    /// Answers a RequestVote at our (possibly just raised) term.
    mutating func handleVote(_ message: Message, lastLogIndex: LogIndex, lastLogTerm: Term) {
        let canVote = votedFor == message.from || (votedFor == nil && leader == nil)
        let upToDate = configuration.mutations.grantVoteWithoutLogCheck || log.isUpToDate(lastIndex: lastLogIndex, lastTerm: lastLogTerm)
        let granted = canVote && upToDate && role != .leader
        if granted {
            votedFor = message.from
            electionElapsed = 0
        }
        send(to: message.from, .voteResponse(granted: granted), afterPersist: true)
    }

    mutating func handleVoteResponse(_ message: Message, granted: Bool) {
        guard role == .candidate else { return }
        votes[message.from] = granted
        switch electionOutcome() {
        case .won: becomeLeader()
        case .lost: becomeFollower(term: term, leader: nil)
        case .pending: break
        }
    }
}
