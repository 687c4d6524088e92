import BallastProto

/// Why a visibility query (or a List page token) was refused: INVALID_ARGUMENT on the wire.
///
/// `column` is 1-based and counts characters (extended grapheme clusters) of the query text; it
/// is 0 when the problem has no position (a page token, the query's length).
public struct VisibilityQueryError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What is wrong and what to do, without the position.
    public var reason: String
    /// 1-based column of the offending token, 0 when there is none.
    public var column: Int
    /// The offending token as written (cut to 40 characters), empty at the end of the query.
    public var token: String

    /// An error at `column` naming `token`.
    public init(_ reason: String, column: Int, token: String) {
        self.reason = reason
        self.column = column
        self.token = token.count > 40 ? String(token.prefix(40)) + "…" : token
    }

    /// The message sent to the caller.
    public var description: String {
        guard column > 0 else { return "invalid query: \(reason)" }
        let near = token.isEmpty ? "at the end of the query" : "near '\(token)'"
        return "invalid query at column \(column) \(near): \(reason)"
    }
}

/// The limits that keep a hostile query cheap to refuse.
public enum VisibilityQueryLimits {
    /// Longest query text, in characters.
    public static let maxQueryCharacters = 4_096
    /// Deepest nesting of parentheses and NOT.
    public static let maxNestingDepth = 32
    /// Most values in one IN list.
    public static let maxInListValues = 256
    /// Most comparisons in one query.
    public static let maxPredicates = 128
    /// Longest string literal or name, in UTF-8 bytes.
    public static let maxLiteralBytes = 1_024
}

/// A literal as written in the query, before it is typed against a field.
public enum QueryLiteralValue: Equatable, Sendable {
    case string(String)
    case integer(Int64)
    case double(Double)
    case bool(Bool)
    /// A bare word (`Running`): accepted where a string is, for friendliness.
    case word(String)
}

/// A literal with its position.
public struct QueryLiteral: Equatable, Sendable {
    public var value: QueryLiteralValue
    public var column: Int
    public var text: String

    /// A literal `text` at `column` meaning `value`.
    public init(value: QueryLiteralValue, column: Int, text: String) {
        (self.value, self.column, self.text) = (value, column, text)
    }
}

/// Comparison operators.
public enum QueryComparison: String, Equatable, Sendable {
    case equal = "=", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
}

/// What a predicate tests about its field.
public enum QueryTest: Equatable, Sendable {
    case compare(QueryComparison, QueryLiteral)
    case oneOf([QueryLiteral], negated: Bool)
    case between(QueryLiteral, QueryLiteral, negated: Bool)
    case startsWith(QueryLiteral)
    case isNull(negated: Bool)
}

/// One `Field <test>` of the query.
public struct QueryPredicate: Equatable, Sendable {
    public var field: String
    public var column: Int
    public var test: QueryTest

    /// `field` (written at `column`) tested by `test`.
    public init(field: String, column: Int, test: QueryTest) {
        (self.field, self.column, self.test) = (field, column, test)
    }
}

/// The parsed (untyped) boolean expression.
public indirect enum QueryExpression: Equatable, Sendable {
    case predicate(QueryPredicate)
    case and([QueryExpression])
    case or([QueryExpression])
    case not(QueryExpression)
}

/// The orders List can return.
public enum VisibilityOrder: UInt8, Equatable, Sendable {
    case startTimeDescending = 0, startTimeAscending = 1, closeTimeDescending = 2, closeTimeAscending = 3

    var byCloseTime: Bool { self == .closeTimeDescending || self == .closeTimeAscending }
    var descending: Bool { self == .startTimeDescending || self == .closeTimeDescending }
}

/// A parsed query: an optional filter and the order (default `StartTime DESC`).
public struct ParsedVisibilityQuery: Equatable, Sendable {
    /// The filter; nil matches every run.
    public var expression: QueryExpression?
    /// The requested order.
    public var order: VisibilityOrder = .startTimeDescending
    /// The query text (fingerprinted into page tokens).
    public var text: String = ""

    /// An empty query: every run, newest start first.
    public init() {}

    /// Parses `text`; throws with the 1-based column of the first error.
    public init(parsing text: String) throws(VisibilityQueryError) {
        var parser = try VisibilityQueryParser(text)
        self = try parser.parse()
    }
}
