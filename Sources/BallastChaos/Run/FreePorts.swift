import Foundation

/// Free TCP ports on 127.0.0.1 for the nodes (their ports must be known before they start, so the
/// proxies can point at them).
enum FreePorts {
    /// A port nothing listens on, below the ephemeral range (an ephemeral port could be taken as
    /// the source port of some outbound connection before the node binds it), not in `used`.
    static func take(excluding used: inout Set<Int>) throws -> Int {
        let range = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? "32768 60999"
        let ephemeralLow = Int(range.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first ?? "") ?? 32768
        var generator = ChaosRandom(seed: UInt64(UInt32(truncatingIfNeeded: getpid())) &* 0x9E37_79B9 &+ UInt64(used.count))
        let candidates = 10_000 ..< max(10_001, ephemeralLow)
        for _ in 0 ..< 500 {
            let port = candidates.lowerBound + Int(generator.next() % UInt64(candidates.count))
            if !used.contains(port) && canBind(port) {
                used.insert(port)
                return port
            }
        }
        throw ChaosRunError.cannotStart("the cluster", "found no free port on 127.0.0.1 below \(ephemeralLow)")
    }

    private static func canBind(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port)).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
