import BallastSDK

extension ProcessCluster {
    /// The API endpoints of the nodes `ids` (every node, in id order, when nil), for SDK clients.
    func apiEndpoints(_ ids: [Int]? = nil) -> [BallastEndpoint] {
        (ids ?? nodes.keys.sorted()).compactMap { id in nodes[id].map { BallastEndpoint(host: "127.0.0.1", port: $0.apiPort) } }
    }
}
