/// What one directed link of the fault proxy does to the bytes crossing it (docs/reliability.md,
/// "cluster/chaos"). `pass` forwards them untouched.
public struct LinkFaults: Sendable, Equatable, CustomStringConvertible {
    /// Nothing crosses: existing connections are blackholed (neither read nor written), new ones
    /// are accepted and blackholed too; when the cut heals, every connection it blackholed is closed.
    public var cut: Bool
    /// Added to every forwarded chunk's delivery time; chunks keep their order.
    public var latency: Duration
    /// Chance (0…1) that a forwarded chunk is dropped, which resets its connection (bytes cannot
    /// vanish from the middle of a TCP stream without corrupting it).
    public var dropProbability: Double

    /// A link with the given faults.
    public init(cut: Bool = false, latency: Duration = .zero, dropProbability: Double = 0) {
        precondition(latency >= .zero, "latency cannot be negative")
        precondition((0 ... 1).contains(dropProbability), "a drop probability is within 0…1")
        self.cut = cut
        self.latency = latency
        self.dropProbability = dropProbability
    }

    /// Forward everything at once.
    public static let pass = LinkFaults()

    /// Only the cut set.
    public static let cutOff = LinkFaults(cut: true)

    /// Whether this is `pass`.
    public var isPass: Bool { self == .pass }

    public var description: String {
        var parts: [String] = []
        if cut { parts.append("cut") }
        if latency > .zero { parts.append("latency \(latency)") }
        if dropProbability > 0 { parts.append("drop \(dropProbability)") }
        return parts.isEmpty ? "pass" : parts.joined(separator: ", ")
    }
}
