/// An ordered set kept as a list of sorted chunks of at most `maxChunk` elements.
///
/// Insert and remove cost a binary search over the chunks' last elements, a binary search in
/// one chunk and a move of at most `maxChunk` elements: no operation touches the whole set, so
/// applying an entry never stalls on a large index (a plain sorted array would move up to a
/// million elements; a hash table rehashes all of them when it grows). Elements appended in
/// order (new runs start at the latest engine time) take a fast path: one comparison with the
/// last element, then an append to the last chunk. Runs close roughly in start order, so
/// removals cluster at the front of a chunk and move the rest of it: chunks of 128 keep that
/// move at 4 KiB (with 512 it was 16 KiB, a fifth of the index's cost per close).
struct SortedChunks<Element: Comparable> {
    static var maxChunk: Int { 128 }
    private(set) var chunks: [[Element]] = []
    /// Number of elements.
    private(set) var count = 0

    /// An empty set.
    init() {}

    var isEmpty: Bool { count == 0 }

    /// The chunk that holds (or would hold) `element`: the first whose last element is ≥ it.
    private func chunkIndex(for element: Element) -> Int {
        var low = 0, high = chunks.count
        while low < high {
            let middle = (low + high) / 2
            if let last = chunks[middle].last, last < element { low = middle + 1 } else { high = middle }
        }
        return low
    }

    private static func offset(of element: Element, in chunk: [Element]) -> Int {
        var low = 0, high = chunk.count
        while low < high {
            let middle = (low + high) / 2
            if chunk[middle] < element { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// Inserts `element`; false if an equal element is present.
    @discardableResult
    mutating func insert(_ element: Element) -> Bool {
        guard !chunks.isEmpty else {
            chunks.append([element])
            count = 1
            return true
        }
        let lastChunk = chunks.count - 1
        if let last = chunks[lastChunk].last, last < element {
            // After every element: append (a full last chunk starts a new one, sized for the
            // appends that follow).
            if chunks[lastChunk].count < Self.maxChunk {
                chunks[lastChunk].append(element)
            } else {
                var chunk: [Element] = []
                chunk.reserveCapacity(Self.maxChunk)
                chunk.append(element)
                chunks.append(chunk)
            }
            count += 1
            return true
        }
        var index = chunkIndex(for: element)
        if index == chunks.count { index -= 1 }
        let offset = Self.offset(of: element, in: chunks[index])
        if offset < chunks[index].count, chunks[index][offset] == element { return false }
        chunks[index].insert(element, at: offset)
        count += 1
        if chunks[index].count > Self.maxChunk {
            // Appending at the end (new runs start last) keeps full chunks; an insert inside
            // splits in halves. Both halves are fresh arrays, so no chunk keeps the doubled
            // capacity it grew to.
            let chunk = chunks[index]
            let appended = index == chunks.count - 1 && offset == chunk.count - 1
            let cut = appended ? Self.maxChunk : Self.maxChunk / 2
            chunks[index] = Array(chunk[..<cut])
            chunks.insert(Array(chunk[cut...]), at: index + 1)
        }
        return true
    }

    /// Removes `element`; false if it was not present.
    @discardableResult
    mutating func remove(_ element: Element) -> Bool {
        let index = chunkIndex(for: element)
        guard index < chunks.count else { return false }
        let offset = Self.offset(of: element, in: chunks[index])
        guard offset < chunks[index].count, chunks[index][offset] == element else { return false }
        chunks[index].remove(at: offset)
        count -= 1
        if chunks[index].isEmpty { chunks.remove(at: index) }
        return true
    }

    /// Whether `element` is present.
    func contains(_ element: Element) -> Bool {
        let index = chunkIndex(for: element)
        guard index < chunks.count else { return false }
        let offset = Self.offset(of: element, in: chunks[index])
        return offset < chunks[index].count && chunks[index][offset] == element
    }

    /// A position in the set: chunk and offset (`chunk == chunks.count` is the end).
    struct Position: Equatable {
        var chunk: Int
        var offset: Int
    }

    /// The first position whose element is not `before` (elements for which `before` holds
    /// must come first: a partition point).
    func firstPosition(notBefore before: (Element) -> Bool) -> Position {
        var low = 0, high = chunks.count
        while low < high {
            let middle = (low + high) / 2
            if let last = chunks[middle].last, before(last) { low = middle + 1 } else { high = middle }
        }
        guard low < chunks.count else { return Position(chunk: chunks.count, offset: 0) }
        let chunk = chunks[low]
        var lowOffset = 0, highOffset = chunk.count
        while lowOffset < highOffset {
            let middle = (lowOffset + highOffset) / 2
            if before(chunk[middle]) { lowOffset = middle + 1 } else { highOffset = middle }
        }
        return Position(chunk: low, offset: lowOffset)
    }

    /// The element at `position`, nil at the end.
    func element(at position: Position) -> Element? {
        guard position.chunk >= 0, position.chunk < chunks.count, position.offset >= 0,
              position.offset < chunks[position.chunk].count else { return nil }
        return chunks[position.chunk][position.offset]
    }

    /// The position after `position` (or the end).
    func after(_ position: Position) -> Position {
        let next = Position(chunk: position.chunk, offset: position.offset + 1)
        if next.chunk < chunks.count, next.offset >= chunks[next.chunk].count { return Position(chunk: next.chunk + 1, offset: 0) }
        return next
    }

    /// The position before `position`; `chunk == -1` when there is none.
    func before(_ position: Position) -> Position {
        if position.offset > 0 { return Position(chunk: position.chunk, offset: position.offset - 1) }
        var chunk = position.chunk - 1
        while chunk >= 0, chunks[chunk].isEmpty { chunk -= 1 }
        return chunk < 0 ? Position(chunk: -1, offset: 0) : Position(chunk: chunk, offset: chunks[chunk].count - 1)
    }

    /// Every element in ascending order.
    var elements: FlattenSequence<[[Element]]> { chunks.joined() }

    /// The element with `index` elements before it, nil past the end. Walks the chunks from
    /// the front: for indexes near the start.
    func element(atIndex index: Int) -> Element? {
        var remaining = index
        for chunk in chunks {
            if remaining < chunk.count { return chunk[remaining] }
            remaining -= chunk.count
        }
        return nil
    }
}

extension SortedChunks: Sendable where Element: Sendable {}

/// Walks a `SortedChunks` in one direction from a start position.
struct SortedChunksCursor<Element: Comparable> {
    let source: SortedChunks<Element>
    let descending: Bool
    private var position: SortedChunks<Element>.Position

    /// A cursor over `set` starting at the first element not `before` (ascending), or at the
    /// last element that is `before` (descending).
    init(_ set: SortedChunks<Element>, descending: Bool, before: (Element) -> Bool) {
        self.source = set
        self.descending = descending
        let boundary = set.firstPosition(notBefore: before)
        position = descending ? set.before(boundary) : boundary
    }

    /// The current element, nil when exhausted.
    var current: Element? { source.element(at: position) }

    /// Moves one element on.
    mutating func advance() {
        position = descending ? source.before(position) : source.after(position)
    }
}
