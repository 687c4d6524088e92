import BallastEngine

/// Whether the leader may write eager entries (engine format 2), which a member running an older
/// build cannot apply: such a member would stop at the first one. A pure value: the node feeds it
/// the members in force and what each last reported on its admin `/status`.
///
/// A member's last report is kept while it cannot be asked (down, partitioned): a member that
/// reported format 2 once is taken to still apply it — running an older build under the same id
/// is a downgrade, which needs `--eager-dispatch false` first (docs/operations.md, "Upgrades").
/// A member never heard from counts as an older build.
struct FormatAgreement: Sendable, Equatable {
    /// The format eager entries need.
    static let required = eagerDispatchFormatVersion

    /// What each member last reported (absent from a build before the field: format 1).
    private(set) var reported: [String: UInt32] = [:]

    /// Records a member's answer.
    mutating func record(member: String, format: UInt32?) {
        reported[member] = format ?? engineFormatVersion
    }

    /// Whether every one of `members` (this node's peers in force, voters and learners) applies
    /// eager entries, given this node's own newest format.
    func agreed(members: [String], ownFormat: UInt32) -> Bool {
        ownFormat >= Self.required && members.allSatisfy { (reported[$0] ?? 0) >= Self.required }
    }

    /// The members to ask: those not yet known to apply eager entries first, since only they can
    /// change the answer; every member now and then (`everyone`), to notice a downgrade.
    func toAsk(members: [String], everyone: Bool) -> [String] {
        everyone ? members : members.filter { (reported[$0] ?? 0) < Self.required }
    }
}
