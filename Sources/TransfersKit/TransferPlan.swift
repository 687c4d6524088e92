/// The transfers one `transfers start` run makes, drawn from its seed: the same seed gives the
/// same ids, accounts, amounts and approval delays, in every process.
public struct TransferPlan: Sendable {
    /// One planned transfer.
    public struct Item: Sendable, Equatable {
        /// The workflow input.
        public var input: TransferInput
        /// How long after its start the approver signals `approve` (large transfers only).
        public var approvalDelayMilliseconds: Int
    }

    /// What a plan is made from.
    public struct Parameters: Sendable, Equatable {
        /// How many transfers.
        public var count: Int
        /// Seeds amounts, accounts, delays and the bank.
        public var seed: UInt64
        /// Fraction (0…1) of transfers the bank rejects for good.
        public var failRate: Double
        /// Fraction (0…1) of bank calls that fail transiently.
        public var transientRate: Double
        /// The bank's mean latency, milliseconds.
        public var bankLatencyMilliseconds: Int
        /// Amounts at or above this wait for an approval.
        public var approvalThreshold: Int64
        /// How long a large transfer waits for its approval, milliseconds.
        public var approvalTimeoutMilliseconds: Int64
        /// Fraction (0…1) of transfers at or above the approval threshold.
        public var largeFraction: Double
        /// How many accounts the money moves between.
        public var accounts: Int

        /// Parameters with the example's defaults for the rest.
        public init(count: Int, seed: UInt64, failRate: Double = 0, transientRate: Double = 0.2, bankLatencyMilliseconds: Int = 5,
                    approvalThreshold: Int64 = TransferDefaults.approvalThreshold,
                    approvalTimeoutMilliseconds: Int64 = TransferDefaults.approvalTimeoutMilliseconds,
                    largeFraction: Double = 0.1, accounts: Int = 20) {
            self.count = count
            self.seed = seed
            self.failRate = failRate
            self.transientRate = transientRate
            self.bankLatencyMilliseconds = bankLatencyMilliseconds
            self.approvalThreshold = approvalThreshold
            self.approvalTimeoutMilliseconds = approvalTimeoutMilliseconds
            self.largeFraction = largeFraction
            self.accounts = accounts
        }

        /// Why the parameters are unusable, or nil.
        public var problem: String? {
            if !(1 ... 1_000_000).contains(count) { return "--count must be 1...1000000" }
            if !(0 ... 1).contains(failRate) { return "--fail-rate must be in 0...1" }
            if !(0 ... 1).contains(transientRate) { return "--transient-rate must be in 0...1" }
            if !(0 ... 1).contains(largeFraction) { return "the large fraction must be in 0...1" }
            if !(0 ... 60_000).contains(bankLatencyMilliseconds) { return "--bank-latency must be 0...60000 ms" }
            if !(1 ... 1_000_000_000).contains(approvalThreshold) { return "--approval-threshold must be 1...1000000000" }
            if !(1 ... 30 * 86_400_000).contains(approvalTimeoutMilliseconds) { return "--approval-timeout must be 1 ms to 30 days" }
            if !(2 ... 10_000).contains(accounts) { return "--accounts must be 2...10000" }
            return nil
        }
    }

    /// Currency pairs the plan draws from.
    static let pairs = [("USD", "EUR"), ("EUR", "GBP"), ("GBP", "USD"), ("USD", "JPY"), ("EUR", "CHF"), ("USD", "CAD"),
                        ("AUD", "SGD"), ("CHF", "EUR"), ("SEK", "NZD"), ("USD", "USD")]

    /// The planned transfers, in start order.
    public let items: [Item]
    /// The accounts the transfers use.
    public let accounts: [String]
    /// What the plan was drawn from.
    public let parameters: Parameters

    /// Draws the plan.
    public init(_ parameters: Parameters) {
        precondition(parameters.problem == nil, parameters.problem ?? "")
        var generator = Generator(parameters)
        var items: [Item] = []
        items.reserveCapacity(parameters.count)
        while let item = generator.next() { items.append(item) }
        self.items = items
        self.accounts = Self.accounts(parameters)
        self.parameters = parameters
    }

    /// The accounts of a plan drawn from `parameters`.
    public static func accounts(_ parameters: Parameters) -> [String] {
        (1 ... parameters.accounts).map { Self.account($0) }
    }

    /// Draws a plan's items one at a time, in the same order as `items` (a run that stops
    /// starting after a duration never holds the whole plan in memory).
    public struct Generator: IteratorProtocol, Sendable {
        private var random: SplitMix64
        private var index = 0
        private let parameters: Parameters
        private let accounts: [String]
        private let bank: BankBehavior
        private let width: Int

        /// A generator of the plan drawn from `parameters`.
        public init(_ parameters: Parameters) {
            precondition(parameters.problem == nil, parameters.problem ?? "")
            self.parameters = parameters
            random = SplitMix64(seed: parameters.seed)
            accounts = TransferPlan.accounts(parameters)
            bank = BankBehavior(seed: parameters.seed, permanentRejectionRate: parameters.failRate,
                                transientFailureRate: parameters.transientRate, latencyMilliseconds: parameters.bankLatencyMilliseconds)
            width = String(parameters.count).count
        }

        /// The next planned transfer; nil after `count` of them.
        public mutating func next() -> Item? {
            guard index < parameters.count else { return nil }
            defer { index += 1 }
            let from = Int(random.next() % UInt64(accounts.count))
            let to = (from + 1 + Int(random.next() % UInt64(accounts.count - 1))) % accounts.count
            let large = random.fraction() < parameters.largeFraction
            let threshold = parameters.approvalThreshold
            // Small: 1 to 90% of the threshold; large: 1 to 5 times the threshold.
            let amount = large
                ? threshold + Int64(random.next() % UInt64(4 * threshold + 1))
                : 1 + Int64(random.next() % UInt64(max(1, threshold * 9 / 10)))
            let pair = TransferPlan.pairs[Int(random.next() % UInt64(TransferPlan.pairs.count))]
            let id = "transfer-\(parameters.seed)-" + String(repeating: "0", count: width - String(index).count) + String(index)
            let input = TransferInput(transferID: id, fromAccount: accounts[from], toAccount: accounts[to], amount: amount,
                                      sourceCurrency: pair.0, targetCurrency: pair.1, approvalThreshold: threshold,
                                      approvalTimeoutMilliseconds: parameters.approvalTimeoutMilliseconds, bank: bank)
            return Item(input: input, approvalDelayMilliseconds: 100 + Int(random.next() % 900))
        }
    }

    /// The name of account `number` (1-based).
    public static func account(_ number: Int) -> String {
        "acct-" + String(repeating: "0", count: max(0, 3 - String(number).count)) + String(number)
    }

    /// The opening balance of every account: enough for any plan (at most 5 × threshold per
    /// transfer) never to run short, so with fail rate 0 every transfer completes.
    public static func openingBalance(_ parameters: Parameters) -> Int64 {
        let worstCase = Double(parameters.count) * Double(parameters.approvalThreshold) * 5
        return Int64(min(Double(Ledger.maximumAmount), max(worstCase, 1_000_000_000)))
    }
}

/// SplitMix64: a small, seeded, portable generator (the same numbers on every platform).
struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var value = state
        value = (value ^ (value >> 30)) &* 0xbf58_476d_1ce4_e5b9
        value = (value ^ (value >> 27)) &* 0x94d0_49bb_1331_11eb
        return value ^ (value >> 31)
    }

    /// A number in [0, 1).
    mutating func fraction() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
