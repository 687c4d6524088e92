import BallastChaos
import Testing

@Suite struct ScheduleFaultStateTests {
    private func fault(_ id: Int, _ kind: FaultKind, nodes: [Int] = [], latency: Int? = nil) -> ScheduledFault {
        ScheduledFault(id: id, kind: kind, injectAtMilliseconds: 0, healAtMilliseconds: 1_000, nodes: nodes, latencyMilliseconds: latency)
    }

    @Test func killLeaderTakesTheLeaderOfTheMomentOrAnUndisruptedNode() {
        var state = FaultState(nodes: [1, 2, 3, 4, 5])
        let (effect, disrupted) = state.resolve(fault(1, .killLeader), leader: 4)
        #expect(effect == .killNodes([4]))
        #expect(disrupted == [4])
        state.add(id: 1, effect: effect, disrupted: disrupted)
        // A leader that is already disrupted is never "killed again": the next undisrupted node is.
        #expect(state.resolve(fault(2, .killLeader), leader: 4).effect == .killNodes([5]))
        #expect(state.resolve(fault(3, .freezeNode, nodes: [4]), leader: nil).effect == .freezeNodes([5]))
        #expect(state.down == [4])
    }

    @Test func aSplitCutsEveryLinkAcrossItAndNothingElse() {
        var state = FaultState(nodes: [1, 2, 3])
        let (effect, disrupted) = state.resolve(fault(1, .splitMajority, nodes: [2]), leader: 1)
        state.add(id: 1, effect: effect, disrupted: disrupted)
        #expect(disrupted == [2])
        let links = state.linkFaults
        for (link, faults) in links {
            let crosses = (link.from == 2) != (link.to == 2)
            #expect(faults.cut == crosses, "\(link)")
        }
        #expect(links.count == 6)
    }

    @Test func overlappingLinkFaultsCombineAndHealOneByOne() {
        var state = FaultState(nodes: [1, 2, 3])
        let cut = state.resolve(fault(1, .oneWayLoss, nodes: [1, 3]), leader: nil)
        state.add(id: 1, effect: cut.effect, disrupted: cut.disrupted)
        #expect(cut.disrupted == [3], "the receiving side of a one-way loss hears nothing on it")
        let slow = state.resolve(fault(2, .latency, latency: 80), leader: nil)
        state.add(id: 2, effect: slow.effect, disrupted: slow.disrupted)
        #expect(state.linkFaults[Link(from: 1, to: 3)] == LinkFaults(cut: true, latency: .milliseconds(80)))
        #expect(state.linkFaults[Link(from: 3, to: 1)] == LinkFaults(latency: .milliseconds(80)))
        state.remove(id: 1)
        #expect(state.linkFaults[Link(from: 1, to: 3)] == LinkFaults(latency: .milliseconds(80)), "the latency stays")
        state.remove(id: 2)
        #expect(state.linkFaults.values.allSatisfy { $0.isPass })
        #expect(state.disrupted.isEmpty)
    }

    @Test func isolatingTheLeaderCutsBothDirectionsOfItsLinks() {
        let state = FaultState(nodes: [1, 2, 3])
        let (effect, disrupted) = state.resolve(fault(1, .isolateLeader), leader: 2)
        #expect(disrupted == [2])
        guard case .links(let links, let faults) = effect else {
            Issue.record("expected link faults, got \(effect)")
            return
        }
        #expect(Set(links) == [Link(from: 2, to: 1), Link(from: 2, to: 3), Link(from: 1, to: 2), Link(from: 3, to: 2)])
        #expect(faults == .cutOff)
    }

    @Test func onlyLatencyOrDropOnEveryLinkDegradesEveryLink() {
        var state = FaultState(nodes: [1, 2, 3])
        for (id, kind, nodes) in [(1, FaultKind.splitMajority, [2]), (2, .oneWayLoss, [1, 3]), (3, .killNode, [1])] {
            let (effect, disrupted) = state.resolve(fault(id, kind, nodes: nodes), leader: 1)
            state.add(id: id, effect: effect, disrupted: disrupted)
            #expect(!state.degradesEveryLink, "\(kind)")
        }
        let (effect, disrupted) = state.resolve(fault(4, .latency, latency: 120), leader: 1)
        state.add(id: 4, effect: effect, disrupted: disrupted)
        #expect(state.degradesEveryLink)
        state.remove(id: 4)
        #expect(!state.degradesEveryLink)
    }

    @Test func theMeshGivesEachNodeAPeerAddressPerPeer() {
        #expect(Link.all(among: [1, 2, 3]).count == 6)
        #expect(Link.crossing([1], among: [1, 2, 3, 4, 5]).count == 8)
    }
}
