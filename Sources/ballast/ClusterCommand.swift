import ArgumentParser
import BallastProto
import BallastServer
import BallastWire
import Foundation
import NIOPosix

/// `ballast cluster …`: cluster-wide operations.
struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster", abstract: "Inspect the cluster and change its membership.",
        subcommands: [ClusterStatusCommand.self, ClusterAddNodeCommand.self, ClusterRemoveNodeCommand.self])
}

/// `ballast cluster status --address LIST [--json]`: every member, asked of any one node.
struct ClusterStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Every member: id, role, term, commit, applied, leader, reachable.")

    @Option(help: "API addresses HOST:PORT, comma-separated; the first that answers is used.")
    var address: String
    @Flag(help: "Print one JSON object.") var json = false

    func run() async throws {
        let addresses = try address.split(separator: ",").map { try HostPort(parsing: String($0)) }
        guard !addresses.isEmpty else { throw ValidationError("--address needs at least one HOST:PORT") }
        var failures: [String] = []
        for target in addresses {
            do {
                let client = try await GRPCClient.connect(host: target.host, port: target.port,
                                                              configuration: try CommandLineTLS.clientConfiguration())
                defer { Task { await client.close() } }
                let response: Ballast_V1_DescribeClusterResponse = try await client.unary(
                    BallastMethod.Cluster.describeCluster, request: Ballast_V1_DescribeClusterRequest(), timeout: .seconds(5))
                print(json ? Self.json(response) : Self.table(response))
                return
            } catch {
                failures.append("\(target): \(error)")
            }
        }
        throw ValidationError("no node answered:\n  " + failures.joined(separator: "\n  "))
    }

    static func roleName(_ role: Ballast_V1_MemberRole) -> String {
        switch role {
        case .leader: "leader"
        case .candidate: "candidate"
        case .learner: "learner"
        default: "follower"
        }
    }

    /// The JSON object DESIGN.md fixes.
    static func json(_ response: Ballast_V1_DescribeClusterResponse) -> String {
        let members = response.members.map { member in
            ClusterView.Member(id: member.id, role: roleName(member.role), term: member.term, commit: member.commit,
                               applied: member.applied, api: member.apiAddress, raft: member.raftAddress,
                               admin: member.adminAddress, reachable: member.reachable, leader: nil,
                               engineFormatVersion: member.engineFormatVersion > 0 ? member.engineFormatVersion : nil)
        }
        let view = ClusterView(leader: response.leaderID.isEmpty ? nil : response.leaderID, members: members)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(view) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    static func table(_ response: Ballast_V1_DescribeClusterResponse) -> String {
        var lines = ["leader: \(response.leaderID.isEmpty ? "none" : response.leaderID)  (answered by \(response.answeredBy))",
                     "id    role       term    commit   applied  reachable  api / raft / admin"]
        for member in response.members {
            let cells = [member.id.padding(toLength: 5, withPad: " ", startingAt: 0),
                         roleName(member.role).padding(toLength: 10, withPad: " ", startingAt: 0),
                         String(member.term).padding(toLength: 7, withPad: " ", startingAt: 0),
                         String(member.commit).padding(toLength: 8, withPad: " ", startingAt: 0),
                         String(member.applied).padding(toLength: 8, withPad: " ", startingAt: 0),
                         String(member.reachable).padding(toLength: 10, withPad: " ", startingAt: 0)]
            lines.append(cells.joined(separator: " ") + " \(member.apiAddress) / \(member.raftAddress) / \(member.adminAddress)")
        }
        return lines.joined(separator: "\n")
    }
}

/// TLS for the `ballast cluster …` commands: the CA bundle, certificate and key from
/// `BALLAST_TLS_CA`, `BALLAST_TLS_CERT`, `BALLAST_TLS_KEY` (cluster/up --tls sets them for the
/// operator identity); none set: cleartext.
enum CommandLineTLS {
    static func clientConfiguration() throws -> GRPCClientConfiguration {
        var configuration = GRPCClientConfiguration()
        do {
            configuration.tls = try TLSClientOptions.fromFlags(ca: nil, certificate: nil, key: nil,
                                                               environment: ProcessInfo.processInfo.environment)
        } catch {
            throw ValidationError("\(error)")
        }
        return configuration
    }
}
