import BallastChaos
import Testing

@Suite struct ScheduleTests {
    private func parameters(seed: UInt64, seconds: Int64 = 60, nodes: Int = 3, workers: Int = 2,
                            faults: [FaultKind] = FaultKind.allCases) -> ChaosSchedule.Parameters {
        ChaosSchedule.Parameters(seed: seed, durationMilliseconds: seconds * 1000, nodeCount: nodes, workerCount: workers, faults: faults)
    }

    @Test func theSameInputsGiveTheSameSchedule() {
        let first = ChaosSchedule(parameters(seed: 42))
        let second = ChaosSchedule(parameters(seed: 42))
        #expect(first == second)
        #expect(first.lines == second.lines)
        #expect(!first.faults.isEmpty)
        #expect(ChaosSchedule(parameters(seed: 43)).faults != first.faults, "another seed, another schedule")
        #expect(ChaosSchedule(parameters(seed: 42, nodes: 5)).faults != first.faults)
    }

    /// A schedule fixed in the test: if the drawing changes, old seeds no longer reproduce old runs.
    @Test func aSeedKeepsItsSchedule() {
        let schedule = ChaosSchedule(parameters(seed: 7, seconds: 20))
        let shape = schedule.faults.map { "\($0.kind.rawValue)@\($0.injectAtMilliseconds)+\($0.holdMilliseconds)\($0.nodes)" }
        #expect(shape == ScheduleTests.seed7Shape, "\(shape)")
    }

    static let seed7Shape = [
        "kill-worker@5542+5664[]", "kill-node@7967+4133[1]", "latency@10554+3629[]", "packet-drop@12252+4580[]",
        "restart-cluster@15318+2541[1, 2, 3]",
    ]

    @Test(arguments: [3, 5])
    func neverMoreThanAMinorityIsDisruptedUnlessTheWholeClusterRestarts(nodes: Int) {
        for seed in UInt64(1) ... 300 {
            let schedule = ChaosSchedule(parameters(seed: seed, seconds: 120, nodes: nodes))
            let budget = (nodes - 1) / 2
            for fault in schedule.faults {
                let overlapping = schedule.faults.filter {
                    $0.disruptsNodes && $0.injectAtMilliseconds <= fault.injectAtMilliseconds
                        && $0.healAtMilliseconds > fault.injectAtMilliseconds
                }
                if overlapping.contains(where: { $0.kind == .restartCluster }) {
                    #expect(overlapping.count == 1, "seed \(seed): restart-cluster overlaps \(overlapping.map(\.summary))")
                    continue
                }
                let disrupted = overlapping.reduce(0) { $0 + ($1.kind == .splitMajority ? $1.nodes.count : 1) }
                #expect(disrupted <= budget, "seed \(seed) at \(fault.injectAtMilliseconds) ms: \(overlapping.map(\.summary))")
                let named = overlapping.filter { $0.kind == .killNode || $0.kind == .freezeNode }.flatMap(\.nodes)
                #expect(Set(named).count == named.count, "seed \(seed): one node taken twice")
            }
        }
    }

    @Test func faultsStayWithinTheRunAndHealAfterTheyStart() {
        for seed in UInt64(1) ... 100 {
            let schedule = ChaosSchedule(parameters(seed: seed, seconds: 40))
            for fault in schedule.faults {
                #expect(fault.injectAtMilliseconds >= 3_000)
                #expect(fault.healAtMilliseconds > fault.injectAtMilliseconds)
                #expect(fault.healAtMilliseconds <= 40_000)
            }
            let times = schedule.actions.map(\.atMilliseconds)
            #expect(times == times.sorted())
            #expect(schedule.actions.count == 2 * schedule.faults.count)
        }
    }

    @Test func everyEnabledKindComesUpInALongEnoughRun() {
        let schedule = ChaosSchedule(parameters(seed: 5, seconds: 300))
        #expect(Set(schedule.faults.map(\.kind)) == Set(FaultKind.allCases), "\(schedule.countsByKind)")
    }

    @Test func onlyTheEnabledKindsAreDrawn() {
        let schedule = ChaosSchedule(parameters(seed: 9, seconds: 120, faults: [.killWorker, .latency]))
        #expect(Set(schedule.faults.map(\.kind)) == [.killWorker, .latency])
        // One of two workers at most is down at once.
        for fault in schedule.faults where fault.kind == .killWorker {
            let overlapping = schedule.faults.filter {
                $0.kind == .killWorker && $0.injectAtMilliseconds <= fault.injectAtMilliseconds
                    && $0.healAtMilliseconds > fault.injectAtMilliseconds
            }
            #expect(overlapping.count == 1)
        }
    }

    @Test func targetsAreWithinTheCluster() {
        for seed in UInt64(1) ... 100 {
            for fault in ChaosSchedule(parameters(seed: seed, seconds: 60, nodes: 5, workers: 3)).faults {
                #expect(fault.nodes.allSatisfy { (1 ... 5).contains($0) })
                if let worker = fault.worker { #expect((0 ..< 3).contains(worker)) }
                switch fault.kind {
                case .splitMajority: #expect(fault.nodes.count == 2)
                case .oneWayLoss: #expect(fault.nodes.count == 2 && fault.nodes[0] != fault.nodes[1])
                case .killNode, .freezeNode: #expect(fault.nodes.count == 1)
                case .latency: #expect((20 ... 200).contains(fault.latencyMilliseconds ?? 0))
                case .packetDrop: #expect((5 ... 50).contains(fault.dropPerMille ?? 0))
                default: break
                }
            }
        }
    }

    /// The CI round (`scripts/test`) runs this seed: it must exercise a leader kill, a freeze, a
    /// partition and a worker kill.
    @Test func theCISeedExercisesTheFaultsCIPromises() {
        let schedule = ChaosSchedule(parameters(seed: ChaosDefaults.ciSeed, seconds: 40))
        let kinds = Set(schedule.faults.map(\.kind))
        #expect(kinds.contains(.killLeader), "\(schedule.lines)")
        #expect(kinds.contains(.freezeNode), "\(schedule.lines)")
        #expect(!kinds.isDisjoint(with: [.splitMajority, .isolateLeader, .oneWayLoss]), "\(schedule.lines)")
        #expect(kinds.contains(.killWorker), "\(schedule.lines)")
    }

    @Test func aBadParameterIsNamed() {
        #expect(parameters(seed: 1, nodes: 2).problem != nil)
        #expect(parameters(seed: 1, seconds: 0).problem != nil)
        #expect(parameters(seed: 1, faults: []).problem != nil)
        #expect(parameters(seed: 1).problem == nil)
    }
}
