import Logging
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

    /// Raises the limit (`raise()`) and logs it with what a node of `configuration` may need,
    /// as a warning when the limit is below that (a flood of connections could then leave the
    /// log without descriptors).
    public static func raiseAndReport(for configuration: NodeConfiguration, logger: Logger) {
        guard let (soft, hard) = raise() else {
            logger.warning("cannot read the open-files limit (RLIMIT_NOFILE)")
            return
        }
        let needed = needed(apiConnections: configuration.apiLimits.maxConnections, adminConnections: configuration.adminMaxConnections)
        if soft < UInt64(needed) {
            logger.warning("""
                the open-files limit is below what the connection limits allow; raise it (ulimit -n, LimitNOFILE) \
                or lower --max-connections and --admin-max-connections
                """, metadata: ["limit": "\(soft)", "hardLimit": "\(hard)", "needed": "\(needed)"])
        } else {
            logger.info("open-files limit", metadata: ["limit": "\(soft)", "needed": "\(needed)"])
        }
    }

    /// Descriptors a node with these connection caps may need at most.
    public static func needed(apiConnections: Int, adminConnections: Int) -> Int {
        apiConnections + adminConnections + TCPRaftTransport.inboundConnectionLimit + reserve
    }
}
