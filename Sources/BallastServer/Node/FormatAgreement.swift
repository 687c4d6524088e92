import BallastEngine

/// The engine entry format the leader may write: the newest that this node and every member in
/// force apply. A member running an older build stops at the first entry of a format it does not
/// know, so format 2 (eager dispatch) and format 3 (bounded retry arithmetic) are written only
/// once every member has reported them. A pure value: the node feeds it the members in force and
/// what each last reported on its admin `/status`.
///
/// A member's last report is kept while it cannot be asked (down, partitioned): a member that
/// reported a format once is taken to still apply it — running an older build under the same id
/// is a downgrade, which needs `--eager-dispatch false` first (docs/operations.md, "Upgrades").
/// A member never heard from counts as the oldest build (format 1).
struct FormatAgreement: Sendable, Equatable {
    /// What each member last reported (absent from a build before the field: format 1).
    private(set) var reported: [String: UInt32] = [:]

    /// Records a member's answer.
    mutating func record(member: String, format: UInt32?) {
        reported[member] = format ?? engineFormatVersion
    }

    /// The newest format that this node (`ownFormat`) and every one of `members` (its peers in
    /// force, voters and learners) apply.
    func agreedFormat(members: [String], ownFormat: UInt32) -> UInt32 {
        members.reduce(ownFormat) { agreed, member in min(agreed, reported[member] ?? engineFormatVersion) }
    }

    /// The members to ask: those not yet known to apply `ownFormat`, since only they can change
    /// the answer; every member now and then (`everyone`), to notice a downgrade.
    func toAsk(members: [String], everyone: Bool, ownFormat: UInt32) -> [String] {
        everyone ? members : members.filter { (reported[$0] ?? 0) < ownFormat }
    }
}
