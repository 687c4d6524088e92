/// A dictionary split into 64 shards, so that growing it rehashes one small shard at a time.
///
/// A plain `Dictionary` of open runs rehashes every entry at once when it doubles (at 49,152,
/// 98,304 … entries); applying the entry that crossed the line then took up to a second on the
/// Raft loop thread, on every node at the same index, and the cluster held elections. Shards
/// grow one at a time, each a 64th of the whole. Iteration order is unspecified, as a
/// `Dictionary`'s: nothing that reaches history, snapshots or digests may depend on it.
///
/// Each key is hashed once per access: the shard comes from the key's `hashValue`, and the
/// shard's dictionary stores that value next to the key and hashes only the 8-byte number (a
/// 36-byte run id hashed twice, once for the shard and once inside the shard, was about 3% of
/// the engine's instructions). Costs 8 bytes per entry.
struct ShardedDictionary<Key: Hashable, Value>: ExpressibleByDictionaryLiteral {
    private static var shardCount: Int { 64 }

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

        /// The shard this key lives in.
        var shard: Int { Int(UInt(bitPattern: hash) % UInt(ShardedDictionary.shardCount)) }
    }

    private var shards: [[HashedKey: Value]]

    /// An empty dictionary.
    init() { shards = Array(repeating: [:], count: Self.shardCount) }

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
            shards[hashed.shard][hashed] = newValue
        }
        _modify {
            let hashed = HashedKey(key)
            yield &shards[hashed.shard][hashed]
        }
    }

    /// Runs `body` on the entry for `key` in place (nil when absent; leaving nil removes it):
    /// one lookup where a read, a check and a write would take three.
    mutating func withValue<Result>(forKey key: Key, _ body: (inout Value?) -> Result) -> Result {
        let hashed = HashedKey(key)
        return body(&shards[hashed.shard][hashed])
    }

    /// Sets the value for `key` and returns the one it replaced (one lookup).
    @discardableResult
    mutating func updateValue(_ value: consuming Value, forKey key: Key) -> Value? {
        let hashed = HashedKey(key)
        return shards[hashed.shard].updateValue(value, forKey: hashed)
    }

    /// Removes and returns the value for `key`.
    @discardableResult
    mutating func removeValue(forKey key: Key) -> Value? {
        let hashed = HashedKey(key)
        return shards[hashed.shard].removeValue(forKey: hashed)
    }

    /// Number of entries (sums the shards).
    var count: Int { shards.reduce(0) { $0 + $1.count } }

    /// Whether there are no entries.
    var isEmpty: Bool { shards.allSatisfy(\.isEmpty) }

    /// Every key, lazily, in unspecified order.
    var keys: some Sequence<Key> {
        shards.lazy.flatMap(\.keys).map(\.key)
    }

    /// Every value, lazily, in unspecified order.
    var values: some Sequence<Value> {
        shards.lazy.flatMap(\.values)
    }
}

extension ShardedDictionary.HashedKey: Sendable where Key: Sendable {}
extension ShardedDictionary: Sendable where Key: Sendable, Value: Sendable {}
