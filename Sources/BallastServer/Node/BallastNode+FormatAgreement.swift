import BallastRaft

extension BallastNode {
    /// While this node leads, asks the members' admin ports which engine format they apply and
    /// turns eager dispatch on only once every member applies format 2 (`FormatAgreement`):
    /// every 100 ms while some member is not known to, every second after (and every member
    /// again every tenth round). Ends when the task is cancelled (shutdown).
    func runFormatAgreement() async {
        var agreement = FormatAgreement()
        var round = 0
        while !Task.isCancelled {
            let status = await raftStatus()
            var agreed = false
            if status.role == .leader {
                let own = status.id
                let members = (status.membership.voters + status.membership.learners).filter { $0 != own }.map { String($0.rawValue) }
                let known = transport.knownNodes
                let ask = agreement.toAsk(members: members, everyone: round % 10 == 0)
                let answers = await withTaskGroup(of: ClusterView.Member.self) { tasks in
                    for id in ask {
                        tasks.addTask { [self] in await remoteMember(id: id, info: UInt64(id).flatMap { known[$0] }) }
                    }
                    var answers: [ClusterView.Member] = []
                    for await member in tasks { answers.append(member) }
                    return answers
                }
                for member in answers where member.reachable {
                    agreement.record(member: member.id, format: member.engineFormatVersion)
                }
                agreed = agreement.agreed(members: members, ownFormat: configuration.maxEngineFormat)
            }
            dispatcher.setEagerAgreed(agreed)
            round += 1
            try? await Task.sleep(for: agreed ? .seconds(1) : .milliseconds(100))
        }
    }
}
