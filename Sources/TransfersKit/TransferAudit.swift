/// `transfers verify`'s judgement, a pure function of what the cluster and the ledger say:
/// every transfer workflow is checked against the ledger operations of its transfer id.
///
/// * A run that completed with outcome `completed` must show exactly one debit of its amount
///   and one credit of the same amount, and nothing in flight.
/// * A run that completed with outcome `compensated` must show either nothing (the debit never
///   applied) or one debit and one refund of the same amount, and nothing in flight.
/// * A run still open is `running` (its money may legitimately be in flight).
/// * Anything else — a run closed as failed, terminated, canceled or timed out, a completed
///   run without the outcome, a ledger that disagrees with the outcome, money in flight for a
///   transfer whose workflow is closed or unknown — is `stuck`.
///
/// `conserved` compares the money that entered the ledger (opening deposits) with the
/// balances plus the money in flight.
public struct TransferAudit: Sendable, Equatable, Codable {
    /// What the cluster says about one transfer workflow.
    public struct Run: Sendable, Equatable {
        /// The workflow id (= the transfer id).
        public var transferID: String
        /// The run's status.
        public var state: State
        /// The `TransferOutcome` search attribute, when set.
        public var outcome: String?

        /// A run's status, reduced to what the audit needs.
        public enum State: Sendable, Equatable {
            /// Still open.
            case running
            /// Closed with status Completed.
            case completed
            /// Closed any other way (failed, canceled, terminated, timed out…), named.
            case closedOtherwise(String)
        }

        /// Creates a run.
        public init(transferID: String, state: State, outcome: String?) {
            self.transferID = transferID
            self.state = state
            self.outcome = outcome
        }
    }

    /// Transfer workflows seen.
    public var transfers: Int
    /// Completed with the money at the recipient.
    public var completed: Int
    /// Completed with the sender refunded (or never debited).
    public var compensated: Int
    /// Neither finished correctly nor still running (see the type's doc).
    public var stuck: Int
    /// Still open.
    public var running: Int
    /// Money that entered the ledger (opening deposits).
    public var ledgerBefore: Int64
    /// Balances plus money in flight now.
    public var ledgerAfter: Int64
    /// Money in flight now.
    public var inFlight: Int64
    /// `ledgerBefore == ledgerAfter`.
    public var conserved: Bool
    /// Up to 20 stuck transfers with why, for a diagnosis.
    public var stuckDetails: [String]

    /// Whether `transfers verify` passes: money conserved and nothing stuck.
    public var passed: Bool { conserved && stuck == 0 }

    enum CodingKeys: String, CodingKey {
        case transfers, completed, compensated, stuck, running
        case ledgerBefore = "ledger_before", ledgerAfter = "ledger_after", inFlight = "in_flight", conserved
        case stuckDetails = "stuck_details"
    }

    /// Judges `runs` against the ledger's `operations` (by transfer id) and totals.
    public init(runs: [Run], operations: [String: [LedgerOperation]], deposited: Int64, totals: LedgerTotals) {
        var audit = TransferAudit(transfers: runs.count, completed: 0, compensated: 0, stuck: 0, running: 0,
                                  ledgerBefore: deposited, ledgerAfter: totals.total, inFlight: totals.inFlight,
                                  conserved: deposited == totals.total, stuckDetails: [])
        var seen = Set<String>()
        for run in runs {
            seen.insert(run.transferID)
            switch Self.judge(run, operations[run.transferID] ?? []) {
            case .running: audit.running += 1
            case .completed: audit.completed += 1
            case .compensated: audit.compensated += 1
            case .stuck(let why): audit.markStuck(run.transferID, why)
            }
        }
        // Money held by a transfer that no workflow accounts for.
        for (transfer, list) in operations.sorted(by: { $0.key < $1.key }) where !seen.contains(transfer) {
            let held = Self.inFlight(list)
            if held != 0 { audit.markStuck(transfer, "\(held) in flight but no Transfer workflow has this id") }
        }
        self = audit
    }

    private init(transfers: Int, completed: Int, compensated: Int, stuck: Int, running: Int, ledgerBefore: Int64, ledgerAfter: Int64,
                 inFlight: Int64, conserved: Bool, stuckDetails: [String]) {
        self.transfers = transfers
        self.completed = completed
        self.compensated = compensated
        self.stuck = stuck
        self.running = running
        self.ledgerBefore = ledgerBefore
        self.ledgerAfter = ledgerAfter
        self.inFlight = inFlight
        self.conserved = conserved
        self.stuckDetails = stuckDetails
    }

    private mutating func markStuck(_ transfer: String, _ why: String) {
        stuck += 1
        if stuckDetails.count < 20 { stuckDetails.append("\(transfer): \(why)") }
    }

    enum Verdict: Equatable {
        case running, completed, compensated
        case stuck(String)
    }

    static func inFlight(_ operations: [LedgerOperation]) -> Int64 {
        operations.reduce(0) { sum, operation in operation.kind == .debit ? sum + operation.amount : sum - operation.amount }
    }

    /// One run against its ledger operations.
    static func judge(_ run: Run, _ operations: [LedgerOperation]) -> Verdict {
        let kinds = operations.map(\.kind)
        let amounts = Set(operations.map(\.amount))
        switch run.state {
        case .running:
            return .running
        case .closedOtherwise(let status):
            return .stuck("workflow closed as \(status), ledger \(describe(operations))")
        case .completed:
            switch run.outcome {
            case TransferOutcome.completed.rawValue?:
                guard kinds == [.debit, .credit], amounts.count == 1 else { return .stuck("outcome completed but ledger \(describe(operations))") }
                return .completed
            case TransferOutcome.compensated.rawValue?:
                guard kinds.isEmpty || (kinds == [.debit, .refund] && amounts.count == 1) else {
                    return .stuck("outcome compensated but ledger \(describe(operations))")
                }
                return .compensated
            default:
                return .stuck("completed without a TransferOutcome (\(run.outcome ?? "unset")), ledger \(describe(operations))")
            }
        }
    }

    static func describe(_ operations: [LedgerOperation]) -> String {
        operations.isEmpty ? "has no operations" : "has " + operations.map { "\($0.kind.rawValue) \($0.amount)" }.joined(separator: ", ")
    }
}
