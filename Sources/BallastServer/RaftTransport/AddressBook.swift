/// Where this node believes every member is, and the cluster's initial voters: the table the
/// transport dials from and the node persists in its data directory (`MemberTableFile`).
/// A pure value; the rules for which source wins are here so they can be tested without sockets
/// (docs/operations.md, "Member addresses"):
///
/// * a committed `addLearner` entry carries the member's `NodeInfo` and always wins (it also
///   lifts an earlier removal of that id);
/// * a committed `remove` forgets the member and marks the id removed: it is never dialled, and
///   hellos or peer tables naming it are ignored, until an `addLearner` re-adds it;
/// * `--peers` at start sets the Raft address of the ids it lists (the operator's word);
/// * a hello frame from a member updates its API and admin addresses (it speaks for itself) and
///   supplies its Raft address only if none is known; a peer's table (the `members` frame) only
///   fills in members this node knows nothing about;
/// * after a snapshot is installed, members not in the snapshot's membership are dropped.
///
/// `--peer-address` overrides are not kept here: they are local to one process and never persisted.
public struct AddressBook: Sendable, Equatable {
    /// Where an address came from, which decides whether it replaces what is known.
    public enum Source: Sendable {
        /// `--peers` on this process's command line.
        case commandLine
        /// A committed `addLearner` entry (or this node describing itself).
        case configEntry
        /// The hello frame a member opens its connections with.
        case hello
        /// Another member's table, sent after its hello.
        case peerTable
    }

    /// Upper bound on remembered members; past it, hellos and peer tables add nobody (config
    /// entries still do: the cluster's own log is never refused).
    public static let maxMembers = 1_000

    /// The membership at log index 0 (the voters the cluster was bootstrapped with).
    public private(set) var initialVoters: [UInt64]
    /// Known members by id, this node included; `raft` is the address other nodes dial.
    public private(set) var members: [UInt64: NodeInfo]
    /// Ids removed by a committed change and not re-added since.
    public private(set) var removed: Set<UInt64>

    /// Creates a book.
    public init(initialVoters: [UInt64], members: [UInt64: NodeInfo] = [:], removed: Set<UInt64> = []) {
        self.initialVoters = initialVoters.sorted()
        self.members = members
        self.removed = removed
    }

    /// The Raft address to dial for `id`, or nil if it is unknown or removed.
    public func dialAddress(for id: UInt64) -> String? {
        guard !removed.contains(id), let raft = members[id]?.raft, !raft.isEmpty else { return nil }
        return raft
    }

    /// Records what `source` says about `info.id`; returns whether the book changed.
    @discardableResult
    public mutating func learn(_ info: NodeInfo, from source: Source) -> Bool {
        let known = members[info.id]
        var next: NodeInfo
        switch source {
        case .configEntry:
            removed.remove(info.id)
            next = info
        case .commandLine:
            guard !removed.contains(info.id) else { return false }
            next = known ?? info
            if next.raft != info.raft { next = NodeInfo(id: info.id, raft: info.raft, api: "", admin: "") }
        case .hello:
            guard !removed.contains(info.id), known != nil || members.count < Self.maxMembers else { return false }
            next = known ?? info
            if next.raft.isEmpty { next.raft = info.raft }
            next.api = info.api
            next.admin = info.admin
        case .peerTable:
            guard !removed.contains(info.id), known == nil, members.count < Self.maxMembers else { return false }
            next = info
        }
        guard next != known else { return false }
        members[info.id] = next
        return true
    }

    /// A committed removal of `id`: forget it and never dial it again (until re-added).
    @discardableResult
    public mutating func remove(_ id: UInt64) -> Bool {
        let changed = members[id] != nil || !removed.contains(id)
        members[id] = nil
        removed.insert(id)
        return changed
    }

    /// After a snapshot install: keep only `membership` (and `localID`); ids in the membership
    /// are no longer considered removed (they were re-added in entries this node never saw).
    @discardableResult
    public mutating func restrict(to membership: Set<UInt64>, localID: UInt64) -> Bool {
        guard !membership.isEmpty else { return false }
        let before = self
        members = members.filter { membership.contains($0.key) || $0.key == localID }
        removed.subtract(membership)
        return before != self
    }
}
