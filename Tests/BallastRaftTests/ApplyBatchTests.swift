@testable import BallastRaft
import Testing

/// After a restart the whole log since the last snapshot is committed at once; the core hands
/// it out in bounded batches so the shell can tick, vote and answer between them.
@Suite("committed entries are handed out in bounded batches")
struct ApplyBatchTests {
    /// A member of a 3-voter cluster restarted with `count` entries of 76 payload bytes (100
    /// counted bytes each), all known committed.
    private func restartedNode(entries count: Int, maxBytes: Int) -> RaftNode {
        var configuration = RaftConfiguration(id: NodeID(1))
        configuration.maxCommittedBytesPerReady = maxBytes
        let entries = (1 ... count).map { Entry(term: Term(1), index: LogIndex(UInt64($0)), data: Array(repeating: UInt8($0 % 256), count: 76)) }
        let restored = RestoredState(hardState: HardState(term: Term(1), votedFor: nil, commit: LogIndex(UInt64(count))),
                                     snapshot: nil, entries: entries)
        return RaftNode(configuration: configuration, restored: restored,
                        bootstrap: Membership(voters: [NodeID(1), NodeID(2), NodeID(3)]), randomSeed: 7)
    }

    @Test("a restart with 10 committed entries and a 250-byte bound applies them 2 at a time, in order, each once")
    func boundedBatches() {
        var node = restartedNode(entries: 10, maxBytes: 250)
        var batches: [[UInt64]] = []
        while node.hasCommittedToApply {
            batches.append(node.takeReady().committed.map(\.index.rawValue))
        }
        #expect(batches == [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]])
        #expect(node.status.applied == LogIndex(10))
        #expect(node.takeReady().committed.isEmpty)
    }

    @Test("an entry larger than the bound still goes out, alone")
    func oversizedEntryGoesAlone() {
        var node = restartedNode(entries: 3, maxBytes: 10)
        #expect(node.takeReady().committed.map(\.index.rawValue) == [1])
        #expect(node.takeReady().committed.map(\.index.rawValue) == [2])
        #expect(node.takeReady().committed.map(\.index.rawValue) == [3])
        #expect(!node.hasCommittedToApply)
    }

    @Test("without a bound (the default) everything committed goes out in one Ready")
    func defaultIsUnbounded() {
        var node = restartedNode(entries: 50, maxBytes: .max)
        #expect(node.takeReady().committed.count == 50)
        #expect(!node.hasCommittedToApply)
    }
}
