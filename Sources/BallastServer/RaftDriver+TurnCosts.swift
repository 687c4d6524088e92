import BallastRaft

/// Where one loop turn's event handling went, by kind of event (messages by their body), for
/// the slow-turn line: time and count per kind, and the single slowest event. Two clock
/// readings per event; no allocation.
struct TurnCosts {
    static let labels = [
        "message.preVote", "message.preVoteResponse", "message.vote", "message.voteResponse", "message.append",
        "message.appendResponse", "message.heartbeat", "message.heartbeatResponse", "message.installSnapshot",
        "message.installSnapshotResponse", "message.timeoutNow", "propose", "read", "configChange", "transfer", "tick",
        "persisted", "storageFailed", "inspect", "continueApplying", "snapshotSerialized", "restorePrepared",
    ]
    private var time = [Duration](repeating: .zero, count: labels.count)
    private var count = [Int](repeating: 0, count: labels.count)
    private var slowest: (kind: Int, took: Duration)?

    /// Forgets the last turn.
    mutating func reset() {
        for kind in time.indices where count[kind] > 0 {
            time[kind] = .zero
            count[kind] = 0
        }
        slowest = nil
    }

    /// Counts one handled event that took `took`.
    mutating func record(_ event: RaftDriver.Event, took: Duration) {
        let kind = Self.kind(of: event)
        time[kind] += took
        count[kind] += 1
        if took > slowest?.took ?? .zero { slowest = (kind, took) }
    }

    /// The kinds that took at least a millisecond in all, costliest first, as
    /// `kind=micros/count`, then the slowest single event: for the slow-turn line.
    var summary: (byKind: String, slowest: String) {
        let costly = time.indices.filter { time[$0] >= .milliseconds(1) }.sorted { time[$0] > time[$1] }
        let byKind = costly.map { "\(Self.labels[$0])=\(microseconds(time[$0]))/\(count[$0])" }.joined(separator: " ")
        let single = slowest.map { "\(Self.labels[$0.kind])=\(microseconds($0.took))" } ?? ""
        return (byKind.isEmpty ? "-" : byKind, single.isEmpty ? "-" : single)
    }

    static func kind(of event: RaftDriver.Event) -> Int {
        switch event {
        case .message(let message):
            switch message.body {
            case .preVote: 0
            case .preVoteResponse: 1
            case .vote: 2
            case .voteResponse: 3
            case .append: 4
            case .appendResponse: 5
            case .heartbeat: 6
            case .heartbeatResponse: 7
            case .installSnapshot: 8
            case .installSnapshotResponse: 9
            case .timeoutNow: 10
            }
        case .propose: 11
        case .read: 12
        case .configChange: 13
        case .transfer: 14
        case .tick: 15
        case .persisted: 16
        case .storageFailed: 17
        case .inspect: 18
        case .continueApplying: 19
        case .snapshotSerialized: 20
        case .restorePrepared: 21
        }
    }
}
