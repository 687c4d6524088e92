import ArgumentParser
import BallastProto
import BallastServer
import BallastWire
import Foundation
import Synchronization

/// Leader-kill trials on a cluster this benchmark started, measured the way
/// `../shared/peers/etcd3_bench.py` measures etcd: SIGKILL the leader, then every 10 ms send a
/// probe (a StartWorkflow with a fresh id, 3 s deadline) to the survivors in turn, and take the
/// time from the kill to the first probe that succeeds; meanwhile poll the survivors' `/status`
/// for the time until one names a new leader. Then restart the killed node and wait until it
/// follows the new leader and has applied everything committed before the next trial.
struct FailoverTrials {
    struct Trial {
        var killed: Int
        var newLeader: Int?
        var firstSuccessMilliseconds: Double?
        var leaderSeenMilliseconds: Double?
        var probes: Int
        var catchUpMilliseconds: Double
    }

    var trials: Int
    var probeInterval: Duration = .milliseconds(10)
    var probeTimeout: Duration = .seconds(3)
    var giveUpAfter: Duration = .seconds(30)
    var runTag = "failover-\(getpid())-\(String(UInt32.random(in: 0 ... .max), radix: 36))"

    /// Runs every trial, reporting each one through `progress` as it ends.
    func run(on cluster: BenchCluster, progress: (Int, Trial) -> Void) async throws -> [Trial] {
        var results: [Trial] = []
        for number in 1 ... trials {
            let trial = try await runOne(number, on: cluster)
            progress(number, trial)
            results.append(trial)
        }
        return results
    }

    private func runOne(_ number: Int, on cluster: BenchCluster) async throws -> Trial {
        try await cluster.waitForAllUp(timeout: .seconds(60))
        let (old, _) = try await cluster.waitForLeader(timeout: .seconds(20))
        let survivors = cluster.ids.filter { $0 != old }
        var clients: [Int: GRPCClient] = [:]
        for id in survivors {
            guard let member = cluster.member(id) else { continue }
            clients[id] = try await GRPCClient.connect(host: "127.0.0.1", port: member.apiPort, group: cluster.group)
        }
        defer { for client in clients.values { client.channel.close(promise: nil) } }
        let firstSuccess = EarliestInstant()
        let clock = ContinuousClock()
        let killedAt = clock.now
        cluster.kill(old)
        var leaderSeenAt: ContinuousClock.Instant?
        var probes = 0
        await withTaskGroup(of: Void.self) { group in
            while clock.now - killedAt < giveUpAfter, firstSuccess.value == nil {
                let target = survivors[probes % survivors.count]
                probes += 1
                if let client = clients[target] {
                    let (path, payload) = ClusterLoad.start(workflowID: "\(runTag)-\(number)-\(probes)")
                    group.addTask {
                        let (status, _, _) = await client.rawUnary(path, payload: payload, timeout: probeTimeout)
                        let now = ContinuousClock.now
                        if status.code == .ok { firstSuccess.offer(now) }
                    }
                }
                if leaderSeenAt == nil, let status = await cluster.status(of: target, timeout: .milliseconds(50)),
                   let leader = status.leader, leader != String(old) {
                    leaderSeenAt = clock.now
                }
                try? await Task.sleep(for: probeInterval)
            }
            group.cancelAll()
        }
        let succeededAt = firstSuccess.value
        let restartedAt = clock.now
        let (newLeader, leaderStatus) = try await cluster.waitForLeader(excluding: old, timeout: .seconds(20))
        try cluster.start(old)
        try await cluster.waitForCatchUp(old, index: leaderStatus.commit, timeout: .seconds(60))
        return Trial(killed: old, newLeader: newLeader, firstSuccessMilliseconds: succeededAt.map { ($0 - killedAt).milliseconds },
                     leaderSeenMilliseconds: leaderSeenAt.map { ($0 - killedAt).milliseconds }, probes: probes,
                     catchUpMilliseconds: (clock.now - restartedAt).milliseconds)
    }
}

/// The earliest of the instants offered to it, shared by concurrent probes.
final class EarliestInstant: Sendable {
    private let earliest = Mutex<ContinuousClock.Instant?>(nil)

    var value: ContinuousClock.Instant? { earliest.withLock { $0 } }

    func offer(_ instant: ContinuousClock.Instant) {
        earliest.withLock { $0 = min($0 ?? instant, instant) }
    }
}
