/// A Raft term. Terms only ever grow on a node.
public struct Term: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The term number.
    public var rawValue: UInt64
    /// Wraps a raw term number.
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    /// Wraps a raw term number.
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    /// Term 0: before any election.
    public static let zero = Term(0)
    /// The term after this one.
    public var next: Term { Term(rawValue + 1) }
    public static func < (lhs: Term, rhs: Term) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { "t\(rawValue)" }
}

/// A position in the replicated log. Index 0 means "nothing"; the first entry is 1.
public struct LogIndex: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The index number.
    public var rawValue: UInt64
    /// Wraps a raw index.
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    /// Wraps a raw index.
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    /// Index 0: before the first entry.
    public static let zero = LogIndex(0)
    /// The index after this one.
    public var next: LogIndex { LogIndex(rawValue + 1) }
    /// The index before this one (zero stays zero).
    public var previous: LogIndex { LogIndex(rawValue == 0 ? 0 : rawValue - 1) }
    /// This index moved by `distance` entries.
    public func advanced(by distance: Int) -> LogIndex {
        LogIndex(UInt64(Int64(rawValue) + Int64(distance)))
    }
    public static func < (lhs: LogIndex, rhs: LogIndex) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { "i\(rawValue)" }
}

/// The identity of a cluster member. Never 0.
public struct NodeID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The member number.
    public var rawValue: UInt64
    /// Wraps a raw member number.
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    /// Wraps a raw member number.
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static func < (lhs: NodeID, rhs: NodeID) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { "n\(rawValue)" }
}
