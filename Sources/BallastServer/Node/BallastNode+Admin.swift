import BallastRaft
import Foundation
import NIOHTTP1

extension BallastNode {
    /// The admin port's routes: `/healthz`, `/readyz`, `/status`, `/metrics`, `/cluster` (JSON, or
    /// the UI's page for browsers), and the web UI (`/`, `/workflows…`, `/failing`, `/ui/…`).
    func route(_ request: AdminRequest) async -> AdminResponse {
        if let page = await uiRoute(request) { return page }
        guard request.method == .GET || request.method == .HEAD else {
            return .text("method not allowed\n", status: .methodNotAllowed)
        }
        switch request.path {
        case "/healthz":
            return .text("ok\n")
        case "/readyz":
            let status = await raftStatus()
            let (ready, reason) = Self.readiness(status)
            return .text(reason + "\n", status: ready ? .ok : .serviceUnavailable)
        case "/status":
            return .json(Self.encodeJSON(await status(digest: request.query["digest"] == "1")))
        case "/metrics":
            metrics.update(from: await raftStatus())
            metrics.updateConnections(connectionCounts())
            return AdminResponse(contentType: "text/plain; version=0.0.4; charset=utf-8", body: Array(metrics.text().utf8))
        case "/cluster":
            return .json(Self.encodeJSON(await clusterView(askLeader: request.query["local"] == nil)))
        default:
            return .text("not found: \(request.path)\n", status: .notFound)
        }
    }

    /// Ready means: a leader is known and this node has applied what it knows to be committed
    /// (within a small lag), so it can serve.
    static func readiness(_ status: RaftStatus) -> (Bool, String) {
        guard let leader = status.leader else { return (false, "no leader known") }
        let lag = status.commit.rawValue - min(status.commit.rawValue, status.applied.rawValue)
        guard lag <= 64 else { return (false, "applied \(status.applied.rawValue) lags commit \(status.commit.rawValue)") }
        return (true, "ready: leader \(leader.rawValue), applied \(status.applied.rawValue)")
    }

    /// Every member's status, asked of each member's admin port (this node answers for itself);
    /// a member that does not answer within a second shows as unreachable with what is known of it.
    /// A follower first asks the leader, which hears from every member, and answers itself only
    /// when the leader cannot be asked.
    public func clusterView(askLeader: Bool = true) async -> ClusterView {
        let local = await status()
        if askLeader, local.role != "leader", let leader = local.leader, let view = await leaderView(leaderID: leader) {
            return view
        }
        let known = transport.knownNodes
        // The membership in force; before a joining node has received any, the members it knows of.
        let inForce = local.voters + local.learners
        let memberIDs = Set(inForce.isEmpty ? known.keys.map { String($0) } : inForce + [local.id])
        var members: [ClusterView.Member] = []
        await withTaskGroup(of: ClusterView.Member.self) { tasks in
            for id in memberIDs {
                tasks.addTask { [self] in
                    if id == local.id { return Self.member(from: local, reachable: true) }
                    return await remoteMember(id: id, info: UInt64(id).flatMap { known[$0] })
                }
            }
            for await member in tasks { members.append(member) }
        }
        members.sort { (UInt64($0.id) ?? 0) < (UInt64($1.id) ?? 0) }
        let leader = members.first { $0.role == "leader" && $0.reachable }?.id ?? local.leader
        return ClusterView(leader: leader, members: members)
    }

    func leaderView(leaderID: String) async -> ClusterView? {
        guard let id = UInt64(leaderID), let info = transport.knownNodes[id],
              let admin = try? HostPort(parsing: info.admin) else { return nil }
        guard let (code, body) = try? await AdminHTTPClient.get(
            host: admin.host, port: admin.port, path: "/cluster?local=1", timeout: .seconds(2), group: group, tls: clientTLS),
            code == 200 else { return nil }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try? decoder.decode(ClusterView.self, from: Data(body))
    }

    func remoteMember(id: String, info: NodeInfo?) async -> ClusterView.Member {
        let raftAddress = info?.raft ?? ""
        var fallback = ClusterView.Member(id: id, role: "follower", term: 0, commit: 0, applied: 0, api: info?.api ?? "",
                                          raft: raftAddress, admin: info?.admin ?? "", reachable: false, leader: nil)
        guard let info, let admin = try? HostPort(parsing: info.admin) else { return fallback }
        do {
            let (code, body) = try await AdminHTTPClient.get(host: admin.host, port: admin.port, path: "/status",
                                                             timeout: .seconds(1), group: group, tls: clientTLS)
            guard code == 200 else { return fallback }
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            let status = try decoder.decode(NodeStatus.self, from: Data(body))
            return Self.member(from: status, reachable: true)
        } catch {
            fallback.reachable = false
            return fallback
        }
    }

    static func member(from status: NodeStatus, reachable: Bool) -> ClusterView.Member {
        ClusterView.Member(id: status.id, role: status.role, term: status.term, commit: status.commit, applied: status.applied,
                           api: status.api, raft: status.raft, admin: status.admin, reachable: reachable, leader: status.leader,
                           engineFormatVersion: status.engineFormatVersion)
    }

    static func encodeJSON<Value: Encodable>(_ value: Value) -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(value) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}
