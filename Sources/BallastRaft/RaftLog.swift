/// The in-memory log of one member: the entries after `baseIndex` (the compaction point, at or
/// behind the latest snapshot). Indexes before `baseIndex` are gone; `baseIndex` keeps its term.
struct RaftLog: Sendable {
    /// The last index dropped by compaction or covered by an installed snapshot (0 at start).
    private(set) var baseIndex: LogIndex
    /// The term of the entry at `baseIndex`.
    private(set) var baseTerm: Term
    /// Entries `baseIndex + 1 ... lastIndex`, contiguous.
    private(set) var entries: [Entry] = []

    init(baseIndex: LogIndex, baseTerm: Term) {
        self.baseIndex = baseIndex
        self.baseTerm = baseTerm
    }

    /// The first index still held.
    var firstIndex: LogIndex { baseIndex.next }
    /// The last index held (the base index when empty).
    var lastIndex: LogIndex { baseIndex.advanced(by: entries.count) }
    /// The term of the last entry.
    var lastTerm: Term { entries.last?.term ?? baseTerm }

    private func position(of index: LogIndex) -> Int { Int(index.rawValue - baseIndex.rawValue) - 1 }

    /// The term of the entry at `index`, nil when compacted away or beyond the end.
    func term(at index: LogIndex) -> Term? {
        if index == baseIndex { return baseTerm }
        guard index > baseIndex, index <= lastIndex else { return nil }
        return entries[position(of: index)].term
    }

    /// The entry at `index` if held.
    func entry(at index: LogIndex) -> Entry? {
        guard index > baseIndex, index <= lastIndex else { return nil }
        return entries[position(of: index)]
    }

    /// Whether the log holds an entry at `index` with `term` (Log Matching check).
    func matches(index: LogIndex, term: Term) -> Bool { self.term(at: index) == term }

    /// Whether a log ending at (`lastIndex`, `lastTerm`) is at least as up to date as this one (§5.4.1).
    func isUpToDate(lastIndex otherIndex: LogIndex, lastTerm otherTerm: Term) -> Bool {
        otherTerm > lastTerm || (otherTerm == lastTerm && otherIndex >= lastIndex)
    }

    /// Entries in `from ... through`, which must be held.
    func entries(from: LogIndex, through: LogIndex) -> ArraySlice<Entry> {
        guard from <= through else { return [] }
        precondition(from > baseIndex && through <= lastIndex, "log slice \(from)...\(through) outside \(firstIndex)...\(lastIndex)")
        return entries[position(of: from)...position(of: through)]
    }

    /// Entries from `from` on, at most `maxCount` and `maxBytes` (but at least one if any exist).
    func entries(from: LogIndex, maxCount: Int, maxBytes: Int) -> [Entry] {
        guard from > baseIndex, from <= lastIndex else { return [] }
        var batch: [Entry] = []
        var bytes = 0
        for entry in entries[position(of: from)...] {
            if !batch.isEmpty && (batch.count >= maxCount || bytes + entry.sizeBytes > maxBytes) { break }
            batch.append(entry)
            bytes += entry.sizeBytes
        }
        return batch
    }

    /// The first index in `(after, through]` whose term is `term`, assuming terms never decrease along the log.
    func firstIndex(ofTerm term: Term, after: LogIndex, through: LogIndex) -> LogIndex {
        var low = max(after, baseIndex).rawValue + 1
        var high = min(through, lastIndex).rawValue
        while low < high {
            let middle = low + (high - low) / 2
            if let middleTerm = self.term(at: LogIndex(middle)), middleTerm >= term { high = middle } else { low = middle + 1 }
        }
        return LogIndex(low)
    }

    /// The last index at or before `through` whose term is `term`, nil if the held log has none.
    func lastIndex(ofTerm term: Term, through: LogIndex) -> LogIndex? {
        var low = baseIndex.rawValue
        var high = min(through, lastIndex).rawValue
        guard high >= low else { return nil }
        // Find the last index with term <= `term` (terms never decrease along the log).
        while low < high {
            let middle = low + (high - low + 1) / 2
            if let middleTerm = self.term(at: LogIndex(middle)), middleTerm <= term { low = middle } else { high = middle - 1 }
        }
        return self.term(at: LogIndex(low)) == term ? LogIndex(low) : nil
    }

    /// Appends entries that continue the log exactly at `lastIndex + 1`.
    mutating func append(_ newEntries: [Entry]) {
        guard let first = newEntries.first else { return }
        precondition(first.index == lastIndex.next, "append at \(first.index) does not continue the log at \(lastIndex)")
        precondition(first.term >= lastTerm, "entry term \(first.term) below the last term \(lastTerm)")
        entries.append(contentsOf: newEntries)
    }

    /// Removes every entry at or after `index` (a conflicting suffix).
    mutating func truncate(from index: LogIndex) {
        precondition(index > baseIndex, "cannot truncate at \(index): compacted through \(baseIndex)")
        guard index <= lastIndex else { return }
        entries.removeSubrange(position(of: index)...)
    }

    /// Drops entries up to and including `index`, which must be held.
    mutating func compact(through index: LogIndex) {
        guard index > baseIndex else { return }
        guard let newBaseTerm = term(at: index) else { preconditionFailure("compaction through \(index) beyond the log end \(lastIndex)") }
        entries.removeSubrange(0...position(of: index))
        baseIndex = index
        baseTerm = newBaseTerm
    }

    /// Empties the log so that it continues at `index + 1` (after installing a snapshot).
    mutating func reset(baseIndex index: LogIndex, baseTerm term: Term) {
        entries = []
        baseIndex = index
        baseTerm = term
    }
}
