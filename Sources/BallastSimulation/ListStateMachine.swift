import BallastRaft

/// The application every simulated node runs: an append-only list of proposal ids with a rolling
/// hash, plus the membership as of the applied index (which the shell needs for snapshots).
public struct ListStateMachine: Sendable, Hashable {
    /// The last applied log index.
    public private(set) var appliedIndex: LogIndex = .zero
    /// The term of the entry at `appliedIndex`.
    public private(set) var appliedTerm: Term = .zero
    /// Membership after the applied configuration changes.
    public private(set) var membership: Membership
    /// Proposal ids in the order they were applied.
    public private(set) var values: [UInt64] = []
    /// Rolling hash of `values`.
    public private(set) var hash: UInt64 = SimulationHash.initial

    /// Creates an empty state machine for a cluster that starts with `membership`.
    public init(membership: Membership) { self.membership = membership }

    /// Restores the state from a snapshot produced by `snapshot()`; nil if its data is malformed.
    public init?(snapshot: Snapshot) {
        let data = snapshot.data
        guard data.count >= 16, (data.count - 16) % 8 == 0 else { return nil }
        membership = snapshot.metadata.membership
        appliedIndex = snapshot.metadata.index
        appliedTerm = snapshot.metadata.term
        let count = Int(Self.readUInt64(data, at: 0))
        guard count == (data.count - 16) / 8 else { return nil }
        values.reserveCapacity(count)
        for position in 0..<count { values.append(Self.readUInt64(data, at: 16 + 8 * position)) }
        hash = Self.readUInt64(data, at: 8)
    }

    /// Applies the next committed entry; returns the proposal id it carried, if any.
    /// A malformed payload or an invalid membership change is reported as an error.
    public mutating func apply(_ entry: Entry) -> Result<UInt64?, ApplyError> {
        guard entry.index == appliedIndex.next else { return .failure(.outOfOrder(expected: appliedIndex.next, got: entry.index)) }
        appliedIndex = entry.index
        appliedTerm = entry.term
        switch entry.kind {
        case .noop:
            return .success(nil)
        case .normal:
            guard let id = Self.proposalID(entry.data) else { return .failure(.malformed(entry.index)) }
            values.append(id)
            hash = SimulationHash.mix(hash, id)
            return .success(id)
        case .configChange:
            guard let change = ConfigChange(encoded: entry.data) else { return .failure(.malformed(entry.index)) }
            switch membership.applying(change) {
            case .success(let next): membership = next
            case .failure(let error): return .failure(.invalidConfigChange(entry.index, error))
            }
            return .success(nil)
        }
    }

    /// A snapshot of the current state at the applied index.
    public func snapshot() -> Snapshot {
        var data: [UInt8] = []
        data.reserveCapacity(16 + 8 * values.count)
        Self.appendUInt64(UInt64(values.count), to: &data)
        Self.appendUInt64(hash, to: &data)
        for value in values { Self.appendUInt64(value, to: &data) }
        let metadata = SnapshotMetadata(index: appliedIndex, term: appliedTerm, membership: membership)
        return Snapshot(metadata: metadata, data: data)
    }

    /// The payload the simulation proposes for proposal `id`.
    public static func payload(for id: UInt64) -> [UInt8] {
        var data: [UInt8] = []
        appendUInt64(id, to: &data)
        return data
    }

    /// The proposal id in a payload made by `payload(for:)`.
    public static func proposalID(_ data: [UInt8]) -> UInt64? {
        data.count == 8 ? readUInt64(data, at: 0) : nil
    }

    private static func appendUInt64(_ value: UInt64, to data: inout [UInt8]) {
        for shift in stride(from: 56, through: 0, by: -8) { data.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    private static func readUInt64(_ data: [UInt8], at offset: Int) -> UInt64 {
        var value: UInt64 = 0
        for byte in data[offset..<(offset + 8)] { value = value << 8 | UInt64(byte) }
        return value
    }
}

/// Why a committed entry could not be applied: each case means the core handed out something wrong.
public enum ApplyError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Committed entries skipped or repeated an index.
    case outOfOrder(expected: LogIndex, got: LogIndex)
    /// The payload is not one the simulation proposed.
    case malformed(LogIndex)
    /// A committed membership change does not apply to the membership in force.
    case invalidConfigChange(LogIndex, RaftError)

    /// A readable explanation.
    public var description: String {
        switch self {
        case .outOfOrder(let expected, let got): "committed entry \(got) handed out where \(expected) was expected"
        case .malformed(let index): "committed entry \(index) has a malformed payload"
        case .invalidConfigChange(let index, let error): "committed entry \(index): \(error)"
        }
    }
}
