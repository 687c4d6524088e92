import BallastRaft

/// One thing that happened in a run, kept compact and rendered to text only when needed.
enum TraceEvent: Sendable {
    case delivered(Message)
    case dropped(Message, reason: String)
    case role(NodeID, RaftRole, Term)
    case crashed(NodeID, CrashOutcome)
    case restarted(NodeID, LogIndex)
    case fault(String)
    case proposed(NodeID, id: UInt64, LogIndex, Term)
    case acknowledged(NodeID, id: UInt64, LogIndex)
    case applied(NodeID, from: LogIndex, through: LogIndex)
    case snapshotTaken(NodeID, LogIndex)
    case snapshotInstalled(NodeID, LogIndex)
    case readServed(NodeID, context: UInt64, LogIndex)
}

/// A bounded ring of the latest trace events: when full, the oldest event is overwritten.
struct TraceRing: Sendable {
    private var records: [(time: UInt64, event: TraceEvent)] = []
    private var next = 0
    /// How many events are kept.
    let capacity: Int

    /// Creates an empty ring keeping `capacity` events.
    init(capacity: Int) {
        precondition(capacity > 0, "a trace needs room for at least one event")
        self.capacity = capacity
    }

    /// Adds an event, overwriting the oldest when full.
    mutating func record(_ event: TraceEvent, at time: UInt64) {
        if records.count < capacity {
            records.append((time, event))
        } else {
            records[next] = (time, event)
        }
        next = (next + 1) % capacity
    }

    /// The kept events, oldest first, as readable lines.
    func lines() -> [String] {
        let ordered = records.count < capacity ? records : Array(records[next...] + records[..<next])
        return ordered.map { "[\(Self.formatTime($0.time))] \(Self.describe($0.event))" }
    }

    /// Simulated microseconds as seconds with six decimals.
    static func formatTime(_ micros: UInt64) -> String {
        let fraction = String(micros % 1_000_000)
        return "\(micros / 1_000_000).\(String(repeating: "0", count: 6 - fraction.count))\(fraction)s"
    }

    static func describe(_ event: TraceEvent) -> String {
        switch event {
        case .delivered(let message): "\(message.from)→\(message.to) \(message.term) \(describe(message.body))"
        case .dropped(let message, let reason): "DROP(\(reason)) \(message.from)→\(message.to) \(message.term) \(describe(message.body))"
        case .role(let node, let role, let term): "\(node) is \(role.rawValue) in \(term)"
        case .crashed(let node, let outcome):
            "CRASH \(node): lost \(outcome.lostWrites) unsynced writes, \(outcome.survivingWrites) survived\(outcome.torn ? ", torn append" : "")"
        case .restarted(let node, let last): "RESTART \(node) with its log up to \(last)"
        case .fault(let text): "FAULT \(text)"
        case .proposed(let node, let id, let index, let term): "client proposal #\(id) accepted by \(node) at \(index) in \(term)"
        case .acknowledged(let node, let id, let index): "client proposal #\(id) acknowledged by \(node) at \(index)"
        case .applied(let node, let from, let through): "\(node) applied \(from)...\(through)"
        case .snapshotTaken(let node, let index): "\(node) took a snapshot at \(index)"
        case .snapshotInstalled(let node, let index): "\(node) installed a snapshot at \(index)"
        case .readServed(let node, let context, let index): "read #\(context) served by \(node) at applied \(index)"
        }
    }

    static func describe(_ body: MessageBody) -> String {
        switch body {
        case .preVote(let index, let term): "preVote(last \(index) \(term))"
        case .preVoteResponse(let granted): "preVoteResponse(\(granted ? "granted" : "rejected"))"
        case .vote(let index, let term, let transfer): "vote(last \(index) \(term)\(transfer ? ", transfer" : ""))"
        case .voteResponse(let granted): "voteResponse(\(granted ? "granted" : "rejected"))"
        case .append(let previousIndex, let previousTerm, let entries, let commit):
            "append(prev \(previousIndex) \(previousTerm), \(describe(entries)), commit \(commit))"
        case .appendResponse(let response):
            response.success ? "appendResponse(ok \(response.index))"
                : "appendResponse(reject \(response.index), conflict \(response.conflictTerm.map(\.description) ?? "none") hint \(response.conflictIndex))"
        case .heartbeat(let commit, let context): "heartbeat(commit \(commit)\(context == 0 ? "" : ", read \(context)"))"
        case .heartbeatResponse(let context): "heartbeatResponse(\(context))"
        case .installSnapshot(let chunk):
            "installSnapshot(\(chunk.metadata.index) \(chunk.metadata.term), bytes \(chunk.offset)+\(chunk.data.count)/\(chunk.totalBytes)\(chunk.done ? ", done" : ""))"
        case .installSnapshotResponse(let index, let offset, let done, let rejected):
            "installSnapshotResponse(\(index), next \(offset)\(done ? ", done" : "")\(rejected ? ", rejected" : ""))"
        case .timeoutNow: "timeoutNow"
        }
    }

    static func describe(_ entries: [Entry]) -> String {
        guard let first = entries.first, let last = entries.last else { return "no entries" }
        let kinds = entries.prefix(4).map { "\($0.index)\($0.term)\($0.kind == .normal ? "" : "/\($0.kind)")" }.joined(separator: " ")
        return entries.count <= 4 ? "[\(kinds)]" : "[\(kinds) … \(last.index)\(last.term)] (\(entries.count) from \(first.index))"
    }
}
