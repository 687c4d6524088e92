import BallastRaft

/// Why the in-memory store refused a call: the shell (or the core behind it) broke the
/// `RaftLogStore` contract.
public enum MemoryLogStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// An append would leave a hole after the last stored index.
    case gap(lastIndex: LogIndex, appendedFrom: LogIndex)
    /// An append tried to overwrite entries already covered by the snapshot.
    case belowSnapshot(snapshotIndex: LogIndex, appendedFrom: LogIndex)
    /// The appended entries are not consecutive.
    case notContiguous(at: LogIndex)
    /// Compaction beyond the durable snapshot would lose entries nothing else covers.
    case compactBeyondSnapshot(snapshotIndex: LogIndex, requested: LogIndex)

    /// A readable explanation.
    public var description: String {
        switch self {
        case .gap(let last, let from): "append from \(from) leaves a gap after the last index \(last)"
        case .belowSnapshot(let snap, let from): "append from \(from) overwrites the snapshot at \(snap)"
        case .notContiguous(let index): "appended entries are not contiguous at \(index)"
        case .compactBeyondSnapshot(let snap, let requested): "compact through \(requested) beyond the snapshot at \(snap)"
        }
    }
}

/// What a crash did to a `MemoryLogStore`.
public struct CrashOutcome: Sendable, Hashable {
    /// Unsynced writes that were lost.
    public var lostWrites: Int
    /// Unsynced writes that happened to reach the disk anyway (a prefix, in write order).
    public var survivingWrites: Int
    /// Whether the first lost write was an append torn in the middle (its leading entries survived).
    public var torn: Bool
}

/// An in-memory `RaftLogStore` that keeps written and synced data apart, so a simulated crash
/// loses exactly what a real one could: every write after the last `sync()`, except that a
/// prefix of them (in write order, possibly ending inside a torn append) may have reached the disk.
public struct MemoryLogStore: RaftLogStore, Sendable {
    /// One write not yet synced.
    enum Write: Sendable, Hashable {
        case hardState(HardState)
        case append([Entry])
    }

    /// What the store holds: a hard state, a snapshot and entries.
    struct Image: Sendable, Hashable {
        var hardState = HardState()
        var snapshot: Snapshot?
        /// Contiguous entries; they may start before the snapshot until `compact` drops them.
        var entries: [Entry] = []

        var snapshotIndex: LogIndex { snapshot?.metadata.index ?? .zero }
        var lastIndex: LogIndex { entries.last?.index ?? snapshotIndex }

        mutating func apply(_ write: Write) {
            switch write {
            case .hardState(let state): hardState = state
            case .append(let appended):
                guard let first = appended.first else { return }
                if let start = entries.first?.index, first.index >= start {
                    entries.removeLast(entries.count - Int(first.index.rawValue - start.rawValue))
                } else {
                    entries.removeAll()
                }
                entries.append(contentsOf: appended)
            }
        }
    }

    private(set) var durable = Image()
    private(set) var written = Image()
    private var unsynced: [Write] = []

    /// Creates an empty store.
    public init() {}

    /// Number of writes not yet synced.
    public var unsyncedWriteCount: Int { unsynced.count }
    /// The last index written (synced or not), as the core sees its log.
    public var writtenLastIndex: LogIndex { written.lastIndex }
    /// The index of the durable snapshot (zero if none).
    public var durableSnapshotIndex: LogIndex { durable.snapshotIndex }
    /// The last index that would survive a crash that keeps nothing unsynced.
    public var durableLastIndex: LogIndex { durable.lastIndex }

    /// Everything durable: hard state, snapshot, entries after the snapshot.
    public func restore() throws -> RestoredState {
        let snapshotIndex = durable.snapshotIndex
        return RestoredState(
            hardState: durable.hardState, snapshot: durable.snapshot,
            entries: durable.entries.filter { $0.index > snapshotIndex })
    }

    /// Records a new hard state, durable at the next `sync()`.
    public mutating func setHardState(_ state: HardState) throws {
        record(.hardState(state))
    }

    /// Appends entries after removing any stored suffix from `entries[0].index`.
    public mutating func append(_ entries: [Entry]) throws {
        guard let first = entries.first else { return }
        for (offset, entry) in entries.enumerated() where entry.index != first.index.advanced(by: offset) {
            throw MemoryLogStoreError.notContiguous(at: entry.index)
        }
        if first.index <= written.snapshotIndex {
            throw MemoryLogStoreError.belowSnapshot(snapshotIndex: written.snapshotIndex, appendedFrom: first.index)
        }
        if first.index > written.lastIndex.next {
            throw MemoryLogStoreError.gap(lastIndex: written.lastIndex, appendedFrom: first.index)
        }
        record(.append(entries))
    }

    /// Makes every write so far durable.
    public mutating func sync() throws {
        durable = written
        unsynced.removeAll()
    }

    /// Stores a locally taken snapshot durably; entries stay until `compact`.
    public mutating func saveSnapshot(_ snapshot: Snapshot) throws {
        precondition(snapshot.metadata.index <= written.lastIndex, "snapshot beyond the log")
        if snapshot.metadata.index > durable.snapshotIndex { durable.snapshot = snapshot }
        if snapshot.metadata.index > written.snapshotIndex { written.snapshot = snapshot }
    }

    /// Stores a snapshot received from the leader durably and drops every entry.
    /// Like a real store's fsync of the snapshot, it also makes earlier writes durable.
    public mutating func installSnapshot(_ snapshot: Snapshot) throws {
        try sync()
        written.snapshot = snapshot
        written.entries.removeAll()
        durable = written
    }

    /// Drops entries up to `index`, which a durable snapshot covers.
    public mutating func compact(through index: LogIndex) throws {
        guard index <= durable.snapshotIndex else {
            throw MemoryLogStoreError.compactBeyondSnapshot(snapshotIndex: durable.snapshotIndex, requested: index)
        }
        durable.entries.removeAll { $0.index <= index }
        written.entries.removeAll { $0.index <= index }
    }

    /// Simulates a power loss: keeps a random prefix of the unsynced writes (possibly tearing the
    /// next append in the middle, as a checksummed WAL would truncate it) and loses the rest.
    public mutating func crash(using random: inout DeterministicRandom, tornWriteProbability: Double) -> CrashOutcome {
        let kept = random.int(0...unsynced.count)
        for write in unsynced[..<kept] { durable.apply(write) }
        var torn = false
        if kept < unsynced.count, case .append(let entries) = unsynced[kept], entries.count > 1,
            random.chance(tornWriteProbability)
        {
            durable.apply(.append(Array(entries[..<random.int(1...(entries.count - 1))])))
            torn = true
        }
        let outcome = CrashOutcome(lostWrites: unsynced.count - kept, survivingWrites: kept, torn: torn)
        unsynced.removeAll()
        written = durable
        return outcome
    }

    /// Simulates a power loss that keeps nothing unsynced.
    public mutating func crashLosingAllUnsynced() {
        crash(keepingUnsyncedWrites: 0)
    }

    /// Simulates a power loss that keeps exactly the first `count` unsynced writes, in write order.
    public mutating func crash(keepingUnsyncedWrites count: Int) {
        precondition(count >= 0 && count <= unsynced.count, "cannot keep \(count) of \(unsynced.count) unsynced writes")
        for write in unsynced[..<count] { durable.apply(write) }
        unsynced.removeAll()
        written = durable
    }

    private mutating func record(_ write: Write) {
        written.apply(write)
        unsynced.append(write)
    }
}
