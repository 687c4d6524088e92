import BallastEngine
import BallastRaft
import Synchronization

/// The leader's rounds of asking members for their engine format (`FormatAgreement`).
final class FormatAgreementRounds: Sendable {
    struct State {
        var agreement = FormatAgreement()
        var rounds = 0
        /// The round in flight, if any.
        var running: Task<Void, Never>?
        var nextRoundAt = ContinuousClock.now
        var stopped = false
        /// The newest format ever agreed here (`EngineFormatFloorFile`): what the node writes at
        /// least, within its own maximum, while members' reports are missing.
        var floor = engineFormatVersion
    }

    let state = Mutex(State())
}

extension BallastNode {
    /// Called every 100 ms from an event-loop timer (not `Task.sleep`: libdispatch's timers
    /// crashed the in-process tests when many short-lived nodes cancelled their sleeps). Starts a
    /// round unless one is running or the last one agreed less than a second ago.
    func formatAgreementTick() {
        let now = ContinuousClock.now
        formatRounds.state.withLock { state in
            guard !state.stopped, state.running == nil, now >= state.nextRoundAt else { return }
            state.running = Task { [self] in await formatAgreementRound() }
        }
    }

    /// Loads the floor at start (`EngineFormatFloorFile`) and makes it what the dispatcher writes
    /// until the first round; a file that cannot be read is logged and ignored.
    func loadFormatFloor() {
        let file = EngineFormatFloorFile(dataDirectory: configuration.dataDirectory)
        let stored: UInt32?
        do { stored = try file.load() } catch {
            logger.warning("engine format floor ignored", metadata: ["error": "\(error)"])
            stored = nil
        }
        guard let stored else { return }
        formatRounds.state.withLock { $0.floor = stored }
        dispatcher.setAgreedFormat(min(stored, configuration.maxEngineFormat), leading: false)
    }

    /// Records a newly agreed format as the floor, in memory and in the data directory.
    private func raiseFormatFloor(to format: UInt32) {
        formatRounds.state.withLock { $0.floor = max($0.floor, format) }
        do { try EngineFormatFloorFile(dataDirectory: configuration.dataDirectory).save(format) } catch {
            logger.warning("engine format floor not saved", metadata: ["error": "\(error)"])
        }
    }

    /// Stops the rounds and waits for the one in flight (it ends within its status read or
    /// admin request, at most a second), so nothing reads the driver after it stops.
    func stopFormatAgreement() async {
        let running = formatRounds.state.withLock { state -> Task<Void, Never>? in
            state.stopped = true
            return state.running
        }
        await running?.value
    }

    /// One round: asks the members not yet known to apply this build's format (every member
    /// every tenth round); on the leader, writes a format (and turns eager dispatch on with
    /// format 2) only once all of them apply it. Followers learn
    /// the reports too (through the leader's cluster view), so that a follower elected after the
    /// leader died already knows what the dead leader reported and keeps eager dispatch on while
    /// it is down.
    private func formatAgreementRound() async {
        let status = await raftStatus()
        let own = status.id
        let members = (status.membership.voters + status.membership.learners).filter { $0 != own }.map { String($0.rawValue) }
        var answers: [ClusterView.Member] = []
        let (agreement, rounds) = formatRounds.state.withLock { ($0.agreement, $0.rounds) }
        let ownFormat = configuration.maxEngineFormat
        let ask = agreement.toAsk(members: members, everyone: rounds % 10 == 0, ownFormat: ownFormat)
        if status.role == .follower, !ask.isEmpty, let leader = status.leader {
            // A follower knows the admin address of the leader only: it reads the members'
            // reports from the leader's cluster view (the leader asks each member for it).
            answers = await leaderView(leaderID: String(leader.rawValue))?.members.filter { $0.id != String(own.rawValue) } ?? []
        } else if status.role == .leader {
            let known = transport.knownNodes
            answers = await withTaskGroup(of: ClusterView.Member.self) { tasks in
                for id in ask {
                    tasks.addTask { [self] in await remoteMember(id: id, info: UInt64(id).flatMap { known[$0] }) }
                }
                var answers: [ClusterView.Member] = []
                for await member in tasks { answers.append(member) }
                return answers
            }
        }
        let agreed = formatRounds.state.withLock { state in
            for member in answers where member.reachable {
                state.agreement.record(member: member.id, format: member.engineFormatVersion)
            }
            return state.agreement.agreedFormat(members: members, ownFormat: ownFormat)
        }
        let floor = formatRounds.state.withLock { $0.floor }
        dispatcher.setAgreedFormat(max(agreed, min(floor, ownFormat)), leading: status.role == .leader)
        if agreed > floor { raiseFormatFloor(to: agreed) }
        // Only a leader that has not agreed on its own format yet asks again at once (every
        // 100 ms); followers, whose rounds cost the leader a cluster view, ask once a second.
        let next = ContinuousClock.now + (agreed >= ownFormat || status.role != .leader ? .seconds(1) : .zero)
        formatRounds.state.withLock { state in
            state.rounds += 1
            state.running = nil
            state.nextRoundAt = next
        }
    }
}
