import ArgumentParser
import BallastProto
import BallastServer
import BallastWire
import Foundation
import SwiftProtobuf

/// `ballast cluster add-node`: adds a started `--join` node as a learner, waits for it to catch
/// up, then promotes it to voter (docs/operations.md, "Scale out").
struct ClusterAddNodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add-node",
        abstract: "Add a node: as a learner first, then, once it has caught up, as a voter.",
        discussion: """
            Start the new node first with `ballast server --join LIST` and a new id (not with --peers alone: \
            a fresh node given --peers bootstraps a cluster of its own). Running the command again for a node \
            that is still a learner resumes at the catch-up step.
            """)

    @Option(help: "API addresses HOST:PORT of the cluster, comma-separated; the leader is found from any of them.")
    var address: String
    @Option(help: "The new node's id (a positive integer never used in this cluster).") var id: UInt64
    @Option(help: "The new node's Raft address HOST:PORT, as the other members must dial it.") var raft: String
    @Option(help: "The new node's API address HOST:PORT.") var api: String
    @Option(help: "The new node's admin address HOST:PORT.") var admin: String
    @Option(help: "Seconds to wait for the node to catch up before giving up (it then stays a learner).") var timeout: Int = 300
    @Option(help: "Promote once the node's log is at most this many entries behind the leader's.") var maxLag: UInt64 = 64

    func run() async throws {
        guard id > 0 else { throw ValidationError("--id must be a positive integer") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        for (flag, value) in [("--raft", raft), ("--api", api), ("--admin", admin)] {
            do { _ = try HostPort(parsing: value) } catch { throw ValidationError("\(flag): \(error)") }
        }
        let caller = try LeaderCaller(addressList: address)
        let deadline = ContinuousClock.now + .seconds(timeout)
        var request = Ballast_V1_AddMemberRequest()
        (request.id, request.raftAddress, request.apiAddress, request.adminAddress) = (id, raft, api, admin)
        let added: Ballast_V1_AddMemberResponse = try await caller.call(BallastMethod.Cluster.addMember, request, until: deadline)
        print(added.alreadyLearner ? "node \(id) is already a learner; resuming" : "node \(id) added as a learner (entry \(added.index))")
        // The learner must have acknowledged at least the entry that added it: a node that is not
        // running (or cannot be reached) is never promoted.
        let minimumMatch = max(added.index, 1)
        try await waitForCatchUp(caller, minimumMatch: minimumMatch, deadline: deadline)
        var promote = Ballast_V1_PromoteMemberRequest()
        promote.id = id
        while true {
            do {
                let promoted: Ballast_V1_PromoteMemberResponse = try await caller.call(
                    BallastMethod.Cluster.promoteMember, promote, until: deadline)
                print("node \(id) promoted to voter (entry \(promoted.index))")
                return
            } catch let status as GRPCStatus where status.code == .failedPrecondition && ContinuousClock.now < deadline {
                print("not promoted yet: \(status.message)")  // fell behind again under load: wait and retry
                try await waitForCatchUp(caller, minimumMatch: minimumMatch, deadline: deadline)
            }
        }
    }

    /// Polls the leader until the node holds `minimumMatch` and is within `maxLag` entries of the
    /// leader's log, printing progress about once a second.
    private func waitForCatchUp(_ caller: LeaderCaller, minimumMatch: UInt64, deadline: ContinuousClock.Instant) async throws {
        var request = Ballast_V1_GetMemberProgressRequest()
        request.id = id
        var lastPrinted = ContinuousClock.now - .seconds(2)
        while true {
            let progress: Ballast_V1_GetMemberProgressResponse = try await caller.call(
                BallastMethod.Cluster.getMemberProgress, request, until: deadline)
            let lag = progress.leaderLastIndex - min(progress.matchIndex, progress.leaderLastIndex)
            let now = ContinuousClock.now
            if lag <= maxLag && progress.matchIndex >= minimumMatch {
                print("node \(id) caught up: match \(progress.matchIndex) of \(progress.leaderLastIndex) (lag \(lag))")
                return
            }
            if now - lastPrinted >= .seconds(1) {
                print("catching up: match \(progress.matchIndex) of \(progress.leaderLastIndex) (lag \(lag), \(progress.state))")
                lastPrinted = now
            }
            guard now < deadline else {
                throw ValidationError("""
                    node \(id) did not catch up within \(timeout) s (lag \(lag) entries); it stays a learner. \
                    Check its log, then run add-node again to resume, or remove-node to drop it.
                    """)
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }
}

/// `ballast cluster remove-node`: removes a voter or learner; a leader hands over leadership first.
struct ClusterRemoveNodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove-node",
        abstract: "Remove a node from the cluster (the leader hands over leadership first if it is the one removed).")

    @Option(help: "API addresses HOST:PORT of the cluster, comma-separated; the leader is found from any of them.")
    var address: String
    @Option(help: "The id of the member to remove.") var id: UInt64
    @Option(help: "Seconds to keep trying while no leader is available.") var timeout: Int = 30

    func run() async throws {
        guard id > 0 else { throw ValidationError("--id must be a positive integer") }
        let caller = try LeaderCaller(addressList: address)
        var request = Ballast_V1_RemoveMemberRequest()
        request.id = id
        let removed: Ballast_V1_RemoveMemberResponse = try await caller.call(
            BallastMethod.Cluster.removeMember, request, until: ContinuousClock.now + .seconds(max(1, timeout)))
        print("node \(id) removed (entry \(removed.index)); it can be stopped")
    }
}

/// Calls a leader-only method: tries the given addresses, follows `ballast-leader` redirects, and
/// retries UNAVAILABLE (no leader yet, leadership moving) until the deadline. Any other status is
/// final and reported as it is.
struct LeaderCaller {
    let addresses: [HostPort]

    init(addressList: String) throws {
        addresses = try addressList.split(separator: ",").map {
            do { return try HostPort(parsing: String($0)) } catch { throw ValidationError("--address: \(error)") }
        }
        guard !addresses.isEmpty else { throw ValidationError("--address needs at least one HOST:PORT") }
    }

    func call<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ path: String, _ request: Request, until deadline: ContinuousClock.Instant
    ) async throws -> Response {
        var leader: HostPort?
        var lastFailure = "no attempt"
        while true {
            for target in (leader.map { [$0] } ?? []) + addresses {
                do {
                    let client = try await GRPCClient.connect(host: target.host, port: target.port,
                                                              configuration: try CommandLineTLS.clientConfiguration())
                    defer { Task { await client.close() } }
                    return try await client.unary(path, request: request, timeout: .seconds(15))
                } catch let status as GRPCStatus where status.code == .unavailable {
                    lastFailure = "\(target): \(status.message)"
                    if let hint = status.leaderAddress, let parsed = try? HostPort(parsing: hint), parsed != target {
                        leader = parsed
                        break
                    }
                } catch let status as GRPCStatus where status.code != .deadlineExceeded {
                    throw status
                } catch {
                    lastFailure = "\(target): \(error)"
                }
            }
            guard ContinuousClock.now < deadline else { throw ValidationError("no leader answered: \(lastFailure)") }
            if leader == nil { try await Task.sleep(for: .milliseconds(200)) } else { try await Task.sleep(for: .milliseconds(20)) }
        }
    }
}
