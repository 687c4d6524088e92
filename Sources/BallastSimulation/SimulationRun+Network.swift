import BallastRaft

/// The simulated network: delay, reordering, loss, duplication and partitions.
extension SimulationRun {
    /// Hands `message` to the network; it arrives later, maybe twice, or not at all.
    func send(_ message: Message) {
        stats.messagesSent += 1
        guard let from = node(message.from), let to = node(message.to) else {
            return drop(message, reason: "unknown node")
        }
        if blocked[from.slot][to.slot] > 0 { return drop(message, reason: "partition") }
        let faulty = healedAt == nil
        if faulty && random.chance(profile.lossProbability) { return drop(message, reason: "loss") }
        queue.push(.deliver(message), at: arrivalTime(from: from.slot, to: to.slot, faulty: faulty))
        if faulty && random.chance(profile.duplicateProbability) {
            stats.messagesDuplicated += 1
            queue.push(.deliver(message), at: arrivalTime(from: from.slot, to: to.slot, faulty: faulty))
        }
    }

    /// When a message sent now arrives. Links are FIFO like a TCP connection, except that during
    /// the fault phase a message may overtake or be overtaken (a reconnect, a retransmission).
    private func arrivalTime(from: Int, to: Int, faulty: Bool) -> UInt64 {
        var arrival = now + random.micros(profile.minDelayMicros...profile.maxDelayMicros)
        if faulty && random.chance(profile.reorderProbability) {
            if random.chance(profile.longDelayProbability) { arrival += random.micros(0...(electionTimeoutMicros * 3)) }
            return arrival
        }
        arrival = max(arrival, linkBusyUntil[from][to])
        linkBusyUntil[from][to] = arrival
        return arrival
    }

    /// Delivers `message` unless its link is cut or its receiver is down.
    func deliver(_ message: Message) {
        guard let to = node(message.to), to.isUp else { return drop(message, reason: "receiver down") }
        if let from = node(message.from), blocked[from.slot][to.slot] > 0 { return drop(message, reason: "partition") }
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

    /// Cuts every link from a node in `left` to a node in `right` (and back unless `oneWay`) for
    /// `duration`; each partition heals on its own schedule.
    func partition(_ left: [SimulatedNode], _ right: [SimulatedNode], oneWay: Bool, for duration: UInt64) {
        var links: [(Int, Int)] = []
        for a in left {
            for b in right where a.slot != b.slot {
                links.append((a.slot, b.slot))
                if !oneWay { links.append((b.slot, a.slot)) }
            }
        }
        for (from, to) in links { blocked[from][to] += 1 }
        nextPartitionID += 1
        partitionLinks[nextPartitionID] = links
        stats.partitions += 1
        schedule(.healPartition(id: nextPartitionID), after: duration)
    }

    /// Restores the links one partition cut (unless they were all cleared meanwhile).
    func healPartition(_ id: Int) {
        guard let links = partitionLinks.removeValue(forKey: id) else { return }
        for (from, to) in links { blocked[from][to] -= 1 }
    }

    /// Restores every link.
    func clearPartitions() {
        for from in blocked.indices {
            for to in blocked[from].indices { blocked[from][to] = 0 }
        }
        partitionLinks.removeAll()
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
