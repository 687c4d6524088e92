import BallastRaft

/// Where one loop turn's event handling went, by kind of event (messages by their body), for
/// the slow-turn line: time and count per kind, and the single slowest event. Two clock
/// readings per event; no allocation.
struct TurnCosts {
    /// The kinds of event counted apart: each message body, then each other event.
    enum Kind: Int, CaseIterable {
        case preVote, preVoteResponse, vote, voteResponse, append, appendResponse, heartbeat
        case heartbeatResponse, installSnapshot, installSnapshotResponse, timeoutNow
        case propose, read, configChange, transfer, tick, persisted, storageFailed, inspect
        case continueApplying, snapshotSerialized, restorePrepared

        /// The name in the slow-turn line (a message's kind prefixed with `message.`).
        var label: String {
            switch self {
            case .preVote: "message.preVote"
            case .preVoteResponse: "message.preVoteResponse"
            case .vote: "message.vote"
            case .voteResponse: "message.voteResponse"
            case .append: "message.append"
            case .appendResponse: "message.appendResponse"
            case .heartbeat: "message.heartbeat"
            case .heartbeatResponse: "message.heartbeatResponse"
            case .installSnapshot: "message.installSnapshot"
            case .installSnapshotResponse: "message.installSnapshotResponse"
            case .timeoutNow: "message.timeoutNow"
            case .propose: "propose"
            case .read: "read"
            case .configChange: "configChange"
            case .transfer: "transfer"
            case .tick: "tick"
            case .persisted: "persisted"
            case .storageFailed: "storageFailed"
            case .inspect: "inspect"
            case .continueApplying: "continueApplying"
            case .snapshotSerialized: "snapshotSerialized"
            case .restorePrepared: "restorePrepared"
            }
        }
    }

    private var time = [Duration](repeating: .zero, count: Kind.allCases.count)
    private var count = [Int](repeating: 0, count: Kind.allCases.count)
    private var slowest: (kind: Kind, took: Duration)?

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
        time[kind.rawValue] += took
        count[kind.rawValue] += 1
        if took > slowest?.took ?? .zero { slowest = (kind, took) }
    }

    /// The kinds that took at least a millisecond in all, costliest first, as
    /// `kind=micros/count`, then the slowest single event: for the slow-turn line.
    var summary: (byKind: String, slowest: String) {
        let costly = Kind.allCases.filter { time[$0.rawValue] >= .milliseconds(1) }
            .sorted { time[$0.rawValue] > time[$1.rawValue] }
        let byKind = costly.map { "\($0.label)=\(microseconds(time[$0.rawValue]))/\(count[$0.rawValue])" }
            .joined(separator: " ")
        let single = slowest.map { "\($0.kind.label)=\(microseconds($0.took))" } ?? ""
        return (byKind.isEmpty ? "-" : byKind, single.isEmpty ? "-" : single)
    }

    /// Every event's kind: a new `RaftDriver.Event` case (or message body) does not compile
    /// until it is given one, and a new kind not until it has a label.
    static func kind(of event: RaftDriver.Event) -> Kind {
        switch event {
        case .message(let message):
            switch message.body {
            case .preVote: .preVote
            case .preVoteResponse: .preVoteResponse
            case .vote: .vote
            case .voteResponse: .voteResponse
            case .append: .append
            case .appendResponse: .appendResponse
            case .heartbeat: .heartbeat
            case .heartbeatResponse: .heartbeatResponse
            case .installSnapshot: .installSnapshot
            case .installSnapshotResponse: .installSnapshotResponse
            case .timeoutNow: .timeoutNow
            }
        case .propose: .propose
        case .read: .read
        case .configChange: .configChange
        case .transfer: .transfer
        case .tick: .tick
        case .persisted: .persisted
        case .storageFailed: .storageFailed
        case .inspect: .inspect
        case .continueApplying: .continueApplying
        case .snapshotSerialized: .snapshotSerialized
        case .restorePrepared: .restorePrepared
        }
    }
}
