/// Message dispatch: term comparison first (Raft §5.1), then by message kind and role.
extension RaftNode {
    /// Handles a message from a peer.
    public mutating func step(_ message: Message) {
        guard message.to == id, message.from != id else { return }
        switch message.body {
        case .preVote(let lastIndex, let lastTerm):
            handlePreVote(message, lastLogIndex: lastIndex, lastLogTerm: lastTerm)
            return
        case .preVoteResponse(let granted):
            handlePreVoteResponse(message, granted: granted)
            return
        default:
            break
        }
        if message.term > term {
            guard adoptHigherTerm(of: message) else { return }
        } else if message.term < term {
            answerStaleMessage(message)
            return
        }
        dispatch(message)
    }

    /// Moves to a newer term seen in `message`; false when the message is ignored instead
    /// (a vote request arriving while this member still hears from a leader: the leader lease).
    private mutating func adoptHigherTerm(of message: Message) -> Bool {
        switch message.body {
        case .vote(_, _, let leadershipTransfer):
            if configuration.checkQuorum && heardFromLeaderRecently && !leadershipTransfer { return false }
            becomeFollower(term: message.term, leader: nil)
        case .append, .heartbeat, .installSnapshot:
            becomeFollower(term: message.term, leader: message.from)
        default:
            becomeFollower(term: message.term, leader: nil)
        }
        return true
    }

    /// A message from an older term: tell a stale leader about the newer term so it steps down
    /// (needed with check-quorum and pre-vote, where terms do not spread by elections alone).
    private mutating func answerStaleMessage(_ message: Message) {
        switch message.body {
        case .append, .heartbeat, .installSnapshot:
            send(to: message.from, .appendResponse(AppendResponse(success: false, index: .zero)))
        default:
            break
        }
    }

    private mutating func dispatch(_ message: Message) {
        switch message.body {
        case .vote(let lastIndex, let lastTerm, _):
            handleVote(message, lastLogIndex: lastIndex, lastLogTerm: lastTerm)
        case .voteResponse(let granted):
            handleVoteResponse(message, granted: granted)
        case .append(let previousIndex, let previousTerm, let entries, let leaderCommit):
            guard acceptLeader(message.from) else { return }
            handleAppend(from: message.from, previousIndex: previousIndex, previousTerm: previousTerm, entries: entries, leaderCommit: leaderCommit)
        case .heartbeat(let leaderCommit, let readContext):
            guard acceptLeader(message.from) else { return }
            advanceCommit(to: min(leaderCommit, log.lastIndex))
            send(to: message.from, .heartbeatResponse(readContext: readContext))
        case .installSnapshot(let chunk):
            guard acceptLeader(message.from) else { return }
            handleSnapshotChunk(from: message.from, chunk)
        case .appendResponse(let response):
            guard role == .leader else { return }
            handleAppendResponse(from: message.from, response)
        case .heartbeatResponse(let readContext):
            guard role == .leader else { return }
            handleHeartbeatResponse(from: message.from, readContext: readContext)
        case .installSnapshotResponse(let snapshotIndex, let nextOffset, let done, let rejected):
            guard role == .leader else { return }
            handleSnapshotResponse(from: message.from, snapshotIndex: snapshotIndex, nextOffset: nextOffset, done: done, rejected: rejected)
        case .timeoutNow:
            guard role != .leader, isPromotable, message.from == leader else { return }
            campaign(leadershipTransfer: true)
        case .preVote, .preVoteResponse:
            break
        }
    }

    /// Follows `sender` as the leader of the current term; false if this member leads the term itself.
    private mutating func acceptLeader(_ sender: NodeID) -> Bool {
        if role == .leader { return false }  // Two leaders in one term cannot happen; ignore the impostor.
        if role != .follower && role != .learner || leader != sender {
            becomeFollower(term: term, leader: sender)
        }
        electionElapsed = 0
        return true
    }
}
