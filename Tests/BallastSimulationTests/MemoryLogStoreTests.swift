import BallastRaft
import Testing

@testable import BallastSimulation

/// The in-memory store must lose exactly what a real disk could lose, or crashes test nothing.
@Suite struct MemoryLogStoreTests {
    private func entries(_ range: ClosedRange<UInt64>, term: UInt64 = 1) -> [Entry] {
        range.map { Entry(term: Term(term), index: LogIndex($0), data: [UInt8($0)]) }
    }

    @Test func aCrashLosesEveryUnsyncedWrite() throws {
        var store = MemoryLogStore()
        try store.append(entries(1...3))
        try store.setHardState(HardState(term: Term(1), votedFor: NodeID(1)))
        try store.sync()
        try store.append(entries(4...5))
        try store.setHardState(HardState(term: Term(2), votedFor: NodeID(2)))
        #expect(store.writtenLastIndex == LogIndex(5))
        #expect(store.unsyncedWriteCount == 2)
        store.crashLosingAllUnsynced()
        let restored = try store.restore()
        #expect(restored.entries == entries(1...3))
        #expect(restored.hardState == HardState(term: Term(1), votedFor: NodeID(1)))
        #expect(store.writtenLastIndex == LogIndex(3))
    }

    @Test func aCrashKeepsOnlyAPrefixOfUnsyncedWritesInWriteOrder() throws {
        var sawEverythingLost = false
        var sawTornAppend = false
        for seed: UInt64 in 0..<200 {
            var store = MemoryLogStore()
            try store.append(entries(1...2))
            try store.sync()
            try store.append(entries(3...6))
            try store.setHardState(HardState(term: Term(3)))
            try store.append(entries(5...7, term: 2))  // replaces 5...6 with a conflicting suffix
            var random = DeterministicRandom(seed: seed)
            let outcome = store.crash(using: &random, tornWriteProbability: 0.5)
            let restored = try store.restore()
            let indexes = restored.entries.map(\.index.rawValue)
            #expect(indexes == Array(1...UInt64(indexes.count)), "seed \(seed): entries must stay contiguous")
            // The hard state of write 2 survives only if write 1 (entries 3...6) survived whole
            // (write 3 may then have replaced 5...6, torn or not).
            if restored.hardState.term == Term(3) { #expect(indexes.count >= 5, "seed \(seed)") }
            if restored.entries.contains(where: { $0.term == Term(2) }) { #expect(restored.hardState.term == Term(3)) }
            sawEverythingLost = sawEverythingLost || (outcome.survivingWrites == 0 && !outcome.torn && indexes.count == 2)
            sawTornAppend = sawTornAppend || (outcome.torn && indexes.count > 2 && indexes.count < 6 && outcome.survivingWrites == 0)
        }
        #expect(sawEverythingLost && sawTornAppend)
    }

    @Test func appendsReplaceAConflictingSuffixAndRejectHoles() throws {
        var store = MemoryLogStore()
        try store.append(entries(1...5))
        try store.append(entries(3...4, term: 2))
        try store.sync()
        #expect(try store.restore().entries == entries(1...2) + entries(3...4, term: 2))
        #expect(throws: MemoryLogStoreError.self) { try store.append(entries(7...8)) }
        #expect(throws: MemoryLogStoreError.self) { try store.append([Entry(term: Term(2), index: LogIndex(5)), Entry(term: Term(2), index: LogIndex(7))]) }
    }

    @Test func snapshotsAreDurableAndBoundCompaction() throws {
        var store = MemoryLogStore()
        try store.append(entries(1...6))
        try store.sync()
        let snapshot = Snapshot(metadata: SnapshotMetadata(index: LogIndex(4), term: Term(1), membership: Membership(voters: [NodeID(1)])), data: [1])
        try store.saveSnapshot(snapshot)
        #expect(throws: MemoryLogStoreError.self) { try store.compact(through: LogIndex(5)) }
        try store.compact(through: LogIndex(4))
        #expect(throws: MemoryLogStoreError.self) { try store.append(entries(3...3, term: 2)) }
        store.crashLosingAllUnsynced()
        var restored = try store.restore()
        #expect(restored.snapshot == snapshot && restored.entries == entries(5...6))

        let installed = Snapshot(metadata: SnapshotMetadata(index: LogIndex(20), term: Term(3), membership: Membership(voters: [NodeID(1)])), data: [2])
        try store.append(entries(7...7))
        try store.installSnapshot(installed)
        store.crashLosingAllUnsynced()
        restored = try store.restore()
        #expect(restored.snapshot == installed && restored.entries.isEmpty)
        try store.append(entries(21...21, term: 3))
        #expect(store.writtenLastIndex == LogIndex(21))
    }
}
