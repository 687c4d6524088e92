/// Durable storage behind one Raft member, as its shell uses it. The real implementation is
/// `BallastStorage`'s write-ahead log; the simulator has an in-memory one that models what a
/// crash loses. Writes other than snapshots become durable only when `sync()` returns.
public protocol RaftLogStore {
    /// Everything durable: the hard state, the latest snapshot, and the entries after it.
    func restore() throws -> RestoredState
    /// Records a new hard state (durable at the next `sync()`).
    mutating func setHardState(_ state: HardState) throws
    /// Appends entries, first removing every stored entry at or after `entries[0].index`
    /// (a conflicting suffix). The entries are contiguous; durable at the next `sync()`.
    mutating func append(_ entries: [Entry]) throws
    /// Makes every write so far durable (fsync) before returning.
    mutating func sync() throws
    /// Stores a snapshot taken locally, durably, before returning. Entries are kept until `compact`.
    mutating func saveSnapshot(_ snapshot: Snapshot) throws
    /// Stores a snapshot received from the leader durably and drops every stored entry:
    /// the log continues at `snapshot.metadata.index + 1`.
    mutating func installSnapshot(_ snapshot: Snapshot) throws
    /// Allows entries up to and including `index` to be removed; they are covered by a durable snapshot.
    mutating func compact(through index: LogIndex) throws
}
