#if canImport(Glibc)
import Glibc
#endif

/// The process's limit on open files (`RLIMIT_NOFILE`). Every connection on the three ports
/// takes a descriptor, and so do the log segments, the history files and snapshots: a node
/// that runs out cannot open a log segment or accept a peer. The soft limit is often 1,024
/// while the hard one is far higher, so a node raises its soft limit to the hard one at start.
public enum FileDescriptorLimit {
    /// Descriptors a node needs beyond its connection caps: log segments, history files,
    /// snapshots, outbound peer and member-status connections, the event loops' own.
    public static let reserve = 512

    /// Raises the soft limit to the hard limit; the soft limit in force after, and the hard one
    /// (nil when they cannot be read).
    public static func raise() -> (soft: UInt64, hard: UInt64)? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return (UInt64(limit.rlim_cur), UInt64(limit.rlim_max))
    }

    /// Descriptors a node with these connection caps may need at most.
    public static func needed(apiConnections: Int) -> Int {
        apiConnections + AdminHTTPServer.defaultMaxConnections + TCPRaftTransport.inboundConnectionLimit + reserve
    }
}
