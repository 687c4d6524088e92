/// Defaults shared by `ballast chaos`, `cluster/chaos` and the CI round.
public enum ChaosDefaults {
    /// The seed of the CI round in `scripts/test` (40 s, 3 nodes, 2 workers, every fault): its
    /// schedule kills the leader, freezes a node, partitions, and kills a worker (tested in
    /// `ScheduleTests`).
    public static let ciSeed: UInt64 = 12

    /// How long to wait for the load to close and the nodes to agree after healing.
    public static let quiescenceDeadline: Duration = .seconds(90)
}
