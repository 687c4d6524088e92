import Testing
@testable import BallastRaft

@Test func configChangeRoundTrips() {
    for change in [ConfigChange.addLearner(NodeID(7)), .promote(NodeID(1 << 40)), .remove(NodeID(3))] {
        #expect(ConfigChange(encoded: change.encoded) == change)
    }
    #expect(ConfigChange(encoded: [9, 0, 0, 0, 0, 0, 0, 0, 1]) == nil)
}
