/// One node's API address, `HOST:PORT`, validated.
public struct BallastEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// Host name or IP literal (IPv6 without brackets).
    public var host: String
    /// TCP port, 1…65535.
    public var port: Int

    /// Creates an endpoint from its parts.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT` or `[IPv6]:PORT`.
    public init(parsing text: String) throws(BallastClientError) {
        let trimmed = text.trimmingCharacters(in: " \t")
        guard let colon = trimmed.lastIndex(of: ":") else {
            throw .invalidAddress(text, "expected HOST:PORT")
        }
        var host = String(trimmed[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, host.utf8.count <= 253, !host.contains(" ") else {
            throw .invalidAddress(text, "the host is empty or invalid")
        }
        guard let port = Int(trimmed[trimmed.index(after: colon)...]), (1 ... 65_535).contains(port) else {
            throw .invalidAddress(text, "the port must be a number in 1-65535")
        }
        self.init(host: host, port: port)
    }

    /// Parses a comma-separated list of addresses (at least one, duplicates removed, order kept).
    public static func parseList(_ text: String) throws(BallastClientError) -> [BallastEndpoint] {
        var endpoints: [BallastEndpoint] = []
        for part in text.split(separator: ",") where !part.trimmingCharacters(in: " \t").isEmpty {
            let endpoint = try BallastEndpoint(parsing: String(part))
            if !endpoints.contains(endpoint) { endpoints.append(endpoint) }
        }
        guard !endpoints.isEmpty else { throw .invalidAddress(text, "no address given") }
        return endpoints
    }

    /// `HOST:PORT` (IPv6 hosts in brackets).
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

extension StringProtocol {
    func trimmingCharacters(in set: String) -> String {
        var slice = Substring(self)
        while let first = slice.first, set.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, set.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}
