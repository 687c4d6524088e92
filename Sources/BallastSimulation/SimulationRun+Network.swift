import BallastRaft

/// The simulated network: delay, reordering, loss, duplication and partitions.
extension SimulationRun {
    /// Hands `message` to the network; it arrives later, maybe twice, or not at all.
    func send(_ message: Message) {
        stats.messagesSent += 1
        guard let from = node(message.from), let to = node(message.to) else {
            return drop(message, reason: "unknown node")
        }
        if blocked[from.slot][to.slot] { return drop(message, reason: "partition") }
        let faulty = healedAt == nil
        if faulty && random.chance(profile.lossProbability) { return drop(message, reason: "loss") }
        queue.push(.deliver(message), at: now + networkDelay(faulty: faulty))
        if faulty && random.chance(profile.duplicateProbability) {
            stats.messagesDuplicated += 1
            queue.push(.deliver(message), at: now + networkDelay(faulty: faulty))
        }
    }

    /// Delivers `message` unless its link is cut or its receiver is down.
    func deliver(_ message: Message) {
        guard let to = node(message.to), to.isUp else { return drop(message, reason: "receiver down") }
        if let from = node(message.from), blocked[from.slot][to.slot] { return drop(message, reason: "partition") }
        stats.messagesDelivered += 1
        fingerprint = SimulationHash.mix(fingerprint, Self.code(message))
        if !Self.isHeartbeat(message) { trace.record(.delivered(message), at: now) }
        to.core?.step(message)
        afterTurn(to)
    }

    private func drop(_ message: Message, reason: String) {
        stats.messagesDropped += 1
        if !Self.isHeartbeat(message) { trace.record(.dropped(message, reason: reason), at: now) }
    }

    private func networkDelay(faulty: Bool) -> UInt64 {
        var delay = random.micros(profile.minDelayMicros...profile.maxDelayMicros)
        if faulty && random.chance(profile.longDelayProbability) { delay += random.micros(0...(electionTimeoutMicros * 3)) }
        return delay
    }

    /// Cuts every link from a node in `left` to a node in `right` (and back unless `oneWay`).
    func partition(_ left: [SimulatedNode], _ right: [SimulatedNode], oneWay: Bool, for duration: UInt64) {
        for a in left {
            for b in right where a.slot != b.slot {
                blocked[a.slot][b.slot] = true
                if !oneWay { blocked[b.slot][a.slot] = true }
            }
        }
        partitionGeneration += 1
        stats.partitions += 1
        schedule(.healPartitions(generation: partitionGeneration), after: duration)
    }

    /// Restores every link.
    func clearPartitions() {
        for from in blocked.indices {
            for to in blocked[from].indices { blocked[from][to] = false }
        }
        partitionGeneration += 1
        trace.record(.fault("all partitions healed"), at: now)
    }

    private static func isHeartbeat(_ message: Message) -> Bool {
        switch message.body {
        case .heartbeat, .heartbeatResponse: true
        default: false
        }
    }

    /// A cheap fingerprint of a message for the run's determinism hash.
    static func code(_ message: Message) -> UInt64 {
        let kind: UInt64 = switch message.body {
        case .preVote: 1
        case .preVoteResponse: 2
        case .vote: 3
        case .voteResponse: 4
        case .append(_, _, let entries, _): 5 | UInt64(entries.count) << 8
        case .appendResponse(let response): 6 | response.index.rawValue << 8
        case .heartbeat: 7
        case .heartbeatResponse: 8
        case .installSnapshot(let chunk): 9 | chunk.offset << 8
        case .installSnapshotResponse: 10
        case .timeoutNow: 11
        }
        return kind ^ message.from.rawValue << 40 ^ message.to.rawValue << 48 ^ message.term.rawValue << 20
    }
}
