import Foundation

/// A quote from the (simulated) FX desk.
public struct FXQuote: Codable, Sendable, Equatable {
    /// "USD/EUR".
    public var pair: String
    /// Units of the target currency per unit of the source currency.
    public var rate: Double
    /// What the beneficiary receives, minor units of the target currency.
    public var receivedAmount: Int64
}

/// Why a quote or a compliance check could not be made.
public enum TransferRuleError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The FX desk does not trade this currency.
    case unsupportedCurrency(String)

    /// What happened.
    public var description: String {
        switch self {
        case .unsupportedCurrency(let code): "the FX desk does not trade \(code)"
        }
    }
}

/// The simulated FX desk: fixed mid rates against the US dollar, so every worker quotes the
/// same (a real desk would be called by the activity; the workflow records its answer).
public enum FXDesk {
    /// Units of each currency per US dollar, and the currency's minor-unit exponent.
    static let currencies: [String: (perDollar: Double, exponent: Int)] = [
        "USD": (1.0, 2), "EUR": (0.92, 2), "GBP": (0.79, 2), "CHF": (0.88, 2), "JPY": (151.3, 0),
        "CAD": (1.36, 2), "AUD": (1.52, 2), "SGD": (1.34, 2), "SEK": (10.4, 2), "NZD": (1.64, 2),
    ]

    /// The currencies quoted, sorted.
    public static var supportedCurrencies: [String] { currencies.keys.sorted() }

    /// Quotes `amount` minor units of `source` in `target`.
    public static func quote(amount: Int64, from source: String, to target: String) throws(TransferRuleError) -> FXQuote {
        guard let from = currencies[source] else { throw .unsupportedCurrency(source) }
        guard let to = currencies[target] else { throw .unsupportedCurrency(target) }
        let rate = (to.perDollar / from.perDollar * 1_000_000).rounded() / 1_000_000
        let major = Double(amount) / pow(10, Double(from.exponent))
        let received = Int64((major * rate * pow(10, Double(to.exponent))).rounded())
        return FXQuote(pair: "\(source)/\(target)", rate: rate, receivedAmount: received)
    }
}

/// The compliance desk's answer.
public struct ComplianceDecision: Codable, Sendable, Equatable {
    /// Whether the transfer may proceed.
    public var cleared: Bool
    /// Why not (empty when cleared).
    public var reason: String
}

/// What a compliance check looks at.
public struct ComplianceRequest: Codable, Sendable, Equatable {
    /// The transfer.
    public var transferID: String
    /// Sender and recipient accounts.
    public var fromAccount: String, toAccount: String
    /// Amount in minor units of `currency`.
    public var amount: Int64
    /// The sender's currency.
    public var currency: String
}

/// Compliance rules: a per-transfer amount limit and a sanctions list of accounts.
public struct ComplianceRules: Sendable, Equatable {
    /// The largest amount one transfer may move, minor units.
    public var maximumAmount: Int64
    /// Accounts no transfer may touch.
    public var sanctionedAccounts: Set<String>

    /// The rules every worker applies unless told otherwise: 1,000,000.00 per transfer and a
    /// short list of blocked accounts (what a screening service would return).
    public static let standard = ComplianceRules(maximumAmount: 100_000_000,
                                                 sanctionedAccounts: ["acct-sanctioned-1", "acct-sanctioned-2", "acct-blocked"])

    /// Creates rules.
    public init(maximumAmount: Int64, sanctionedAccounts: Set<String>) {
        self.maximumAmount = maximumAmount
        self.sanctionedAccounts = sanctionedAccounts
    }

    /// Checks one transfer.
    public func check(_ request: ComplianceRequest) -> ComplianceDecision {
        for party in [request.fromAccount, request.toAccount] where sanctionedAccounts.contains(party) {
            return ComplianceDecision(cleared: false, reason: "account \(party) is on the sanctions list")
        }
        if request.amount > maximumAmount {
            return ComplianceDecision(cleared: false, reason: "amount \(request.amount) exceeds the per-transfer limit of \(maximumAmount)")
        }
        return ComplianceDecision(cleared: true, reason: "")
    }
}
