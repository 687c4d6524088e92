import Testing
@testable import BallastRaft

/// A small seeded chaos run over the in-test network: random ticks, delivery out of order,
/// duplication and loss, slow disks, crashes that lose unsynced writes, symmetric and asymmetric
/// partitions, proposals,
/// snapshots and reads. It checks election safety and state-machine safety at every step.
/// (The full simulator lives in BallastSimulation; this one guards the core on its own.)
private struct ChaosRun {
    var cluster: TestCluster
    var random: DeterministicRandom
    var leadersByTerm: [Term: NodeID] = [:]
    var problems: [String] = []
    var proposals = 0
    let members: [UInt64]

    init(seed: UInt64, voters: [UInt64]) {
        let spare = UInt64(voters.count + 1)
        members = voters + [spare]
        random = DeterministicRandom(seed: seed)
        let configure: (inout RaftConfiguration) -> Void = {
            $0.maxEntriesPerAppend = 3
            $0.maxInflightAppends = 4
            $0.compactionSlackEntries = 2
            $0.snapshotChunkBytes = 7
            $0.maxPromotionLagEntries = 1_000
        }
        cluster = TestCluster(voters: voters, configure: configure)
        // A spare server that membership changes add, promote and remove.
        cluster.addNode(NodeID(spare), bootstrap: cluster.bootstrap, configure: configure)
    }

    /// One membership change on the leader, if any: add or promote the spare, or remove a voter.
    mutating func changeMembership() {
        guard let leader = members.first(where: { cluster[$0].status.role == .leader }) else { return }
        let membership = cluster[leader].status.membership
        let spare = NodeID(members[members.count - 1])
        let change: ConfigChange
        if membership.isLearner(spare) {
            change = .promote(spare)
        } else if membership.voters.count > 3 || (!membership.isVoter(spare) && membership.voters.count > 2 && pick(2) == 0) {
            change = .remove(membership.voters[pick(membership.voters.count)])
        } else if !membership.isVoter(spare) {
            change = .addLearner(spare)
        } else {
            return
        }
        _ = try? cluster[leader].proposeConfigChange(change)
    }

    mutating func pick(_ count: Int) -> Int { Int(random.next() % UInt64(count)) }

    mutating func step() {
        let roll = pick(100)
        switch roll {
        case 0..<30: tickSomeone()
        case 30..<62: deliverOne()
        case 62..<66: if !cluster.inFlight.isEmpty { cluster.inFlight.remove(at: pick(cluster.inFlight.count)) }
        case 66..<69: if let message = cluster.inFlight.randomElement(using: &random) { cluster.inFlight.append(message) }
        case 69..<80: proposeOnLeader()
        case 80..<82: toggleSlowDisk()
        case 82..<84: for id in cluster.slowDisks { cluster.flushDisk(id) }
        case 84..<86: crashAndRestart()
        case 86..<89: togglePartition()
        case 89..<91: snapshotSomeone()
        case 91..<92: changeMembership()
        default: readOnLeader()
        }
        _ = cluster.processReadies()
        check()
    }

    mutating func tickSomeone() {
        let id = NodeID(members[pick(members.count)])
        guard !cluster.down.contains(id) else { return }
        cluster.nodes[id]!.tick()
    }

    mutating func deliverOne() {
        guard !cluster.inFlight.isEmpty else { return }
        let message = cluster.inFlight.remove(at: pick(min(3, cluster.inFlight.count)))
        guard !cluster.cutLinks.contains([message.from, message.to]), cluster.nodes[message.to] != nil else { return }
        cluster.nodes[message.to]!.step(message)
    }

    mutating func proposeOnLeader() {
        for raw in members where cluster[raw].status.role == .leader {
            if (try? cluster.propose(raw, "p\(proposals)")) != nil { proposals += 1 }
        }
    }

    mutating func toggleSlowDisk() {
        let id = NodeID(members[pick(members.count)])
        if cluster.slowDisks.remove(id) != nil { cluster.flushDisk(id) } else { cluster.slowDisks.insert(id) }
    }

    mutating func crashAndRestart() {
        let raw = members[pick(members.count)]
        cluster.slowDisks.remove(NodeID(raw))
        cluster.restart(raw)  // held (unsynced) writes are lost
    }

    mutating func togglePartition() {
        guard cluster.cutLinks.isEmpty else { return cluster.heal() }
        if random.next() % 2 == 0 {
            cluster.isolate(members[pick(members.count)])
        } else {
            // Asymmetric: a few directed links drop everything, their reverse still works.
            for _ in 0..<members.count - 1 {
                let from = NodeID(members[pick(members.count)]), to = NodeID(members[pick(members.count)])
                if from != to { cluster.cutLinks.insert([from, to]) }
            }
        }
    }

    mutating func snapshotSomeone() {
        let raw = members[pick(members.count)]
        let applied = cluster[raw].status.applied
        guard applied > (cluster[raw].snapshot?.metadata.index ?? .zero) else { return }
        cluster.takeSnapshot(raw, data: Array("state@\(applied.rawValue)".utf8))
    }

    mutating func readOnLeader() {
        for raw in members where cluster[raw].status.role == .leader {
            try? cluster[raw].readIndex(context: UInt64(pick(1_000)) + 1)
        }
    }

    mutating func check() {
        for raw in members {
            let status = cluster[raw].status
            guard status.role == .leader else { continue }
            if let other = leadersByTerm[status.term], other != status.id {
                problems.append("two leaders in \(status.term): \(other) and \(status.id)")
            }
            leadersByTerm[status.term] = status.id
        }
        problems += cluster.safetyViolations
        cluster.safetyViolations = []
    }

    /// Heals everything and checks that a voting leader emerges and a proposal commits on every member.
    mutating func settle() {
        cluster.heal()
        for id in cluster.slowDisks { cluster.flushDisk(id) }
        cluster.slowDisks = []
        var final: (leader: UInt64, index: LogIndex)?
        for _ in 0..<300 {
            cluster.tickAll()
            guard let leader = members.first(where: { cluster[$0].status.role == .leader && cluster[$0].status.membership.isVoter(NodeID($0)) }) else { continue }
            if final?.leader != leader, let index = try? cluster.propose(leader, "final") { final = (leader, index) }
            guard let final, cluster[final.leader].status.role == .leader else { continue }
            let current = cluster[final.leader].status.membership.allMembers.map(\.rawValue)
            if current.allSatisfy({ cluster[$0].status.commit >= final.index }) {
                check()
                return
            }
        }
        problems.append("no proposal committed on every member within 300 ticks of healing")
    }
}

@Suite("Randomized fault runs")
struct RandomizedTests {
    @Test("three and five members stay safe and live under seeded chaos", arguments: Array(UInt64(1)...UInt64(60)))
    func chaos(seed: UInt64) {
        var run = ChaosRun(seed: seed, voters: seed % 2 == 0 ? [1, 2, 3] : [1, 2, 3, 4, 5])
        for _ in 0..<1_500 {
            run.step()
        }
        run.settle()
        #expect(run.problems.isEmpty, "seed \(seed): \(run.problems.prefix(5))")
    }
}
