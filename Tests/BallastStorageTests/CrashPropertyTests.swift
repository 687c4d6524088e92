import BallastRaft
import Foundation
import Testing
@testable import BallastStorage

/// What the log should hold, record by record, to compare recovery against.
struct LogModel {
    enum Record {
        case truncate(LogIndex)
        case entry(Entry)
        case hardState(HardState)
    }

    var entries: [Entry] = []
    var hardState = HardState()
    var snapshot: Snapshot?

    var snapshotIndex: LogIndex { snapshot?.metadata.index ?? .zero }
    var lastIndex: LogIndex { entries.last?.index ?? snapshotIndex }

    mutating func apply(_ record: Record) {
        switch record {
        case .truncate(let from): entries.removeAll { $0.index >= from }
        case .entry(let entry): entries.append(entry)
        case .hardState(let state): hardState = state
        }
    }

    /// The state `restore()` must report for this model: entries after the snapshot, commit clamped.
    var expectedRestore: (entries: [Entry], hardState: HardState) {
        let kept = entries.filter { $0.index > snapshotIndex }
        var state = hardState
        state.commit = min(max(state.commit, snapshotIndex), kept.last?.index ?? snapshotIndex)
        return (kept, state)
    }
}

/// Random operations on a real log and a model, then a crash that damages the unsynced tail.
struct CrashScenario {
    var random: SplitMix
    var model = LogModel()
    /// Records written since the last sync, in order; a crash keeps a prefix of them.
    var unsynced: [LogModel.Record] = []
    var term: UInt64 = 1
    /// Name and offset of the active segment at the last sync.
    var syncedPoint: (name: String, offset: Int) = ("", WALFormat.segmentHeaderSize)

    init(seed: UInt64) { random = SplitMix(seed: seed) }

    mutating func chance(_ percent: UInt64) -> Bool { random.next() % 100 < percent }
    mutating func below(_ bound: UInt64) -> UInt64 { bound == 0 ? 0 : random.next() % bound }

    mutating func markSynced(_ log: WriteAheadLog) {
        for record in unsynced { model.apply(record) }
        unsynced.removeAll()
        syncedPoint = (log.active.info.name, log.active.writtenEnd)
    }

    /// The model with the unsynced records applied, as the log sees itself.
    var current: LogModel {
        var copy = model
        for record in unsynced { copy.apply(record) }
        return copy
    }

    mutating func step(_ log: WriteAheadLog) throws {
        let roll = below(100)
        let now = current
        if roll < 45 {
            let lowest = max(now.snapshotIndex.rawValue + 1, now.lastIndex.rawValue >= 3 ? now.lastIndex.rawValue - 2 : 1)
            let first = lowest + below(now.lastIndex.rawValue + 2 - lowest)
            if chance(30) { term += 1 }
            let entries = (first..<(first + 1 + below(5))).map { index in
                Entry(term: Term(term), index: LogIndex(index), data: (0..<Int(below(300))).map { _ in UInt8(truncatingIfNeeded: random.next()) })
            }
            try log.append(entries)
            if first <= now.lastIndex.rawValue { unsynced.append(.truncate(LogIndex(first))) }
            unsynced += entries.map { .entry($0) }
        } else if roll < 65 {
            let state = HardState(term: Term(term), votedFor: chance(50) ? NodeID(1 + below(5)) : nil,
                                  commit: LogIndex(below(now.lastIndex.rawValue + 1)))
            try log.setHardState(state)
            if state != now.hardState { unsynced.append(.hardState(state)) }
        } else if roll < 90 {
            try log.sync()
            markSynced(log)
        } else if roll < 97 {
            try snapshotAndCompact(log, now: now)
        } else {
            let index = now.lastIndex.rawValue + below(10)
            guard index > now.snapshotIndex.rawValue else { return }
            let snapshot = makeSnapshot(index: index, term: term)
            try log.installSnapshot(snapshot)
            model = current
            model.entries.removeAll()
            model.snapshot = snapshot
            unsynced.removeAll()
            markSynced(log)
        }
    }

    mutating func snapshotAndCompact(_ log: WriteAheadLog, now: LogModel) throws {
        guard now.lastIndex > now.snapshotIndex,
              let entry = now.entries.first(where: { $0.index.rawValue == now.snapshotIndex.rawValue + 1 + below(now.lastIndex.rawValue - now.snapshotIndex.rawValue) })
        else { return }
        let snapshot = makeSnapshot(index: entry.index.rawValue, term: entry.term.rawValue)
        try log.saveSnapshot(snapshot)
        model.snapshot = snapshot
        // Compaction syncs only when it deletes something, so the model keeps treating later
        // records as unsynced (a weaker but always correct expectation).
        if chance(70) { try log.compact(through: snapshot.metadata.index) }
    }

    /// Every state a crash may legitimately leave: the synced model plus each prefix of the unsynced records.
    var candidates: [(entries: [Entry], hardState: HardState)] {
        var copy = model
        var result = [copy.expectedRestore]
        for record in unsynced {
            copy.apply(record)
            result.append(copy.expectedRestore)
        }
        return result
    }
}

@Suite struct CrashPropertyTests {
    /// 40 seeds by default; `BALLAST_STORAGE_CRASH_SEEDS=N` runs seeds 0..<N (a long run).
    static let seeds: [UInt64] = {
        let count = ProcessInfo.processInfo.environment["BALLAST_STORAGE_CRASH_SEEDS"].flatMap(UInt64.init) ?? 40
        return Array(0..<count)
    }()

    @Test(arguments: seeds)
    func recoveryAfterACrashYieldsASyncedPrefix(seed: UInt64) throws {
        try withTemporaryDirectory { directory in
            var scenario = CrashScenario(seed: seed)
            var active: (name: String, writtenEnd: Int) = ("", 0)
            do {
                let log = try WriteAheadLog(directory: directory, options: smallSegments)
                scenario.markSynced(log)
                for _ in 0..<(40 + scenario.below(40)) { try scenario.step(log) }
                try log.flushPending()
                active = (log.active.info.name, log.active.writtenEnd)
                // The log is dropped without close(): a crash.
            }
            let start = active.name == scenario.syncedPoint.name ? scenario.syncedPoint.offset : WALFormat.segmentHeaderSize
            let path = directory + "/" + active.name
            var bytes = try readFile(path)
            let cut = start + Int(scenario.below(UInt64(active.writtenEnd - start + 1)))
            switch scenario.below(3) {
            case 0: bytes.removeSubrange(cut...)
            case 1: for position in cut..<active.writtenEnd { bytes[position] = 0 }
            default: for position in cut..<active.writtenEnd { bytes[position] = UInt8(truncatingIfNeeded: scenario.random.next()) | 0x80 }
            }
            try writeFile(path, bytes)
            let restored = try reopenAndRestore(directory)
            let matches = scenario.candidates.contains { $0.entries == restored.entries && $0.hardState == restored.hardState }
            #expect(matches, "seed \(seed): restored \(restored.entries.count) entries up to \(restored.entries.last?.index ?? .zero), \(restored.hardState)")
            #expect(restored.snapshot == scenario.model.snapshot, "seed \(seed)")
            // The recovered log takes appends again.
            let log = try WriteAheadLog(directory: directory, options: smallSegments)
            let next = (restored.entries.last?.index ?? restored.snapshot?.metadata.index ?? .zero).next
            try log.append([Entry(term: Term(1000), index: next, data: [7])])
            try log.close()
            #expect(try reopenAndRestore(directory).entries.last?.index == next, "seed \(seed)")
        }
    }
}
