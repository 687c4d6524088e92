/// A dictionary split into 64 shards, so that growing it rehashes one small shard at a time.
///
/// A plain `Dictionary` of open runs rehashes every entry at once when it doubles (at 49,152,
/// 98,304 … entries); applying the entry that crossed the line then took up to a second on the
/// Raft loop thread, on every node at the same index, and the cluster held elections. Shards
/// grow one at a time, each a 64th of the whole. Copies are paid per shard too (a snapshot
/// captures the engine as a copy-on-write copy; each apply after it copies the shards it
/// changes), and with 64 shards the first few hundred applies touch them all; so values should
/// be small (open runs and closed-run summaries are boxed: `BoxedTable`). 1,024 shards spread
/// the copying over thousands of applies in release builds, but made the debug-build tests
/// about 40% slower (docs/benchmarks.md, "Snapshots off the Raft loop"). Iteration order is
/// unspecified, as a `Dictionary`'s: nothing that reaches history, snapshots or digests may
/// depend on it.
///
/// Keys keep their own hash, SipHash keyed per process: several of these maps are keyed by what
/// clients send (workflow ids, search-attribute values), and a cheaper unkeyed-style hash (a
/// word-wise multiply-xorshift was tried) admits colliding keys whatever its seed — a client
/// could turn a shard into a linear scan on every node.
///
/// Each key is hashed once per access (`hashValue`): the shard comes from the top bits of the
/// hash, and the shard's dictionary stores the hash next to the key and uses it, mixed with the
/// dictionary's seed, as its own hash value (`_rawHashValue(seed:)`) instead of running SipHash
/// over it again (a 36-byte run id hashed twice was about 3% of the engine's instructions, and
/// SipHash of the stored 8-byte hash another 2%). Costs 8 bytes per entry.
struct ShardedDictionary<Key: Hashable, Value>: ExpressibleByDictionaryLiteral {
    private static var shardBits: Int { 6 }

    /// A key and its hash value, computed once.
    struct HashedKey: Hashable {
        let key: Key
        let hash: Int

        init(_ key: Key) {
            self.key = key
            hash = key.hashValue
        }

        static func == (left: Self, right: Self) -> Bool { left.hash == right.hash && left.key == right.key }

        func hash(into hasher: inout Hasher) { hasher.combine(hash) }

        /// The stored hash mixed with the dictionary's per-storage seed (one multiply and shift,
        /// not SipHash): the hash is already well mixed, the seed only varies the order per storage.
        func _rawHashValue(seed: Int) -> Int {
            let mixed = UInt64(bitPattern: Int64(hash ^ seed)) &* 0x9e37_79b9_7f4a_7c15
            return Int(bitPattern: UInt(mixed ^ (mixed >> 32)))
        }

        /// The shard this key lives in (the top bits; the shard's dictionary uses the low bits).
        var shard: Int { Int(UInt(bitPattern: hash) >> (UInt.bitWidth - ShardedDictionary.shardBits)) }
    }

    private var shards: [[HashedKey: Value]]
    /// Entries in all shards, kept rather than summed per call (`runs.count` is read on every start).
    private(set) var count = 0

    /// An empty dictionary.
    init() { shards = Array(repeating: [:], count: 1 << Self.shardBits) }

    /// A dictionary holding `elements` (later duplicates win).
    init(dictionaryLiteral elements: (Key, Value)...) {
        self.init()
        for (key, value) in elements { self[key] = value }
    }

    /// The value for `key`; assigning nil removes it. Mutations happen in place.
    subscript(key: Key) -> Value? {
        get {
            let hashed = HashedKey(key)
            return shards[hashed.shard][hashed]
        }
        set {
            let hashed = HashedKey(key)
            let before = shards[hashed.shard].count
            shards[hashed.shard][hashed] = newValue
            count += shards[hashed.shard].count - before
        }
        _modify {
            let hashed = HashedKey(key)
            let before = shards[hashed.shard].count
            defer { count += shards[hashed.shard].count - before }
            yield &shards[hashed.shard][hashed]
        }
    }

    /// Runs `body` on the entry for `key` in place (nil when absent; leaving nil removes it):
    /// one lookup where a read, a check and a write would take three.
    mutating func withValue<Result>(forKey key: Key, _ body: (inout Value?) -> Result) -> Result {
        let hashed = HashedKey(key)
        let before = shards[hashed.shard].count
        defer { count += shards[hashed.shard].count - before }
        return body(&shards[hashed.shard][hashed])
    }

    /// Sets the value for `key` and returns the one it replaced (one lookup).
    @discardableResult
    mutating func updateValue(_ value: consuming Value, forKey key: Key) -> Value? {
        let hashed = HashedKey(key)
        let replaced = shards[hashed.shard].updateValue(value, forKey: hashed)
        if replaced == nil { count += 1 }
        return replaced
    }

    /// Removes and returns the value for `key`.
    @discardableResult
    mutating func removeValue(forKey key: Key) -> Value? {
        let hashed = HashedKey(key)
        let removed = shards[hashed.shard].removeValue(forKey: hashed)
        if removed != nil { count -= 1 }
        return removed
    }

    /// Whether there are no entries.
    var isEmpty: Bool { count == 0 }

    /// Every key, lazily, in unspecified order.
    var keys: some Sequence<Key> { Walk(shards: shards) { $0[$1].key.key } }

    /// Every value, lazily, in unspecified order.
    var values: some Sequence<Value> { Walk(shards: shards) { $0[$1].value } }

    /// The entries shard by shard: a plain loop rather than `lazy.flatMap`, which unoptimized
    /// builds (the tests) walk slowly.
    private struct Walk<Element>: Sequence, IteratorProtocol {
        let shards: [[HashedKey: Value]]
        let element: ([HashedKey: Value], Dictionary<HashedKey, Value>.Index) -> Element
        var shard = 0
        var index: Dictionary<HashedKey, Value>.Index?

        init(shards: [[HashedKey: Value]], _ element: @escaping ([HashedKey: Value], Dictionary<HashedKey, Value>.Index) -> Element) {
            self.shards = shards
            self.element = element
        }

        mutating func next() -> Element? {
            while shard < shards.count {
                if !shards[shard].isEmpty {
                    let position = index ?? shards[shard].startIndex
                    if position < shards[shard].endIndex {
                        index = shards[shard].index(after: position)
                        return element(shards[shard], position)
                    }
                }
                shard += 1
                index = nil
            }
            return nil
        }
    }
}

extension ShardedDictionary.HashedKey: Sendable where Key: Sendable {}
extension ShardedDictionary: Sendable where Key: Sendable, Value: Sendable {}
