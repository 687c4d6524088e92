import BallastChaos
import Testing

@Suite struct FaultKindTests {
    @Test func parsesAKnownListInOrderWithoutRepeats() throws {
        let kinds = try FaultKind.parseList("kill-leader, split,kill-leader").get()
        #expect(kinds == [.killLeader, .splitMajority])
    }

    @Test func namesTheUnknownEntry() {
        #expect(FaultKind.parseList("kill-leader,meteor") == .failure(FaultListError(unknown: "meteor")))
        #expect(FaultKind.parseList("") == .failure(FaultListError(unknown: "")))
    }
}
