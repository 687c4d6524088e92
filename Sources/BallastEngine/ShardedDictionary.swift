/// A dictionary split into 64 shards, so that growing it rehashes one small shard at a time.
///
/// A plain `Dictionary` of open runs rehashes every entry at once when it doubles (at 49,152,
/// 98,304 … entries); applying the entry that crossed the line then took up to a second on the
/// Raft loop thread, on every node at the same index, and the cluster held elections. Shards
/// grow one at a time, each a 64th of the whole. Iteration order is unspecified, as a
/// `Dictionary`'s: nothing that reaches history, snapshots or digests may depend on it.
struct ShardedDictionary<Key: Hashable, Value>: ExpressibleByDictionaryLiteral {
    private static var shardCount: Int { 64 }
    private var shards: [[Key: Value]]

    /// An empty dictionary.
    init() { shards = Array(repeating: [:], count: Self.shardCount) }

    /// A dictionary holding `elements` (later duplicates win).
    init(dictionaryLiteral elements: (Key, Value)...) {
        self.init()
        for (key, value) in elements { self[key] = value }
    }

    private static func shard(_ key: Key) -> Int {
        Int(UInt(bitPattern: key.hashValue) % UInt(shardCount))
    }

    /// The value for `key`; assigning nil removes it. Mutations happen in place.
    subscript(key: Key) -> Value? {
        get { shards[Self.shard(key)][key] }
        set { shards[Self.shard(key)][key] = newValue }
        _modify { yield &shards[Self.shard(key)][key] }
    }

    /// Runs `body` on the entry for `key` in place (nil when absent; leaving nil removes it):
    /// one lookup where a read, a check and a write would take three.
    mutating func withValue<Result>(forKey key: Key, _ body: (inout Value?) -> Result) -> Result {
        body(&shards[Self.shard(key)][key])
    }

    /// Sets the value for `key` and returns the one it replaced (one lookup).
    @discardableResult
    mutating func updateValue(_ value: Value, forKey key: Key) -> Value? {
        shards[Self.shard(key)].updateValue(value, forKey: key)
    }

    /// Removes and returns the value for `key`.
    @discardableResult
    mutating func removeValue(forKey key: Key) -> Value? {
        shards[Self.shard(key)].removeValue(forKey: key)
    }

    /// Number of entries (sums the shards).
    var count: Int { shards.reduce(0) { $0 + $1.count } }

    /// Whether there are no entries.
    var isEmpty: Bool { shards.allSatisfy(\.isEmpty) }

    /// Every key, lazily, in unspecified order.
    var keys: LazySequence<FlattenSequence<LazyMapSequence<[[Key: Value]], Dictionary<Key, Value>.Keys>>> {
        shards.lazy.flatMap(\.keys)
    }

    /// Every value, lazily, in unspecified order.
    var values: LazySequence<FlattenSequence<LazyMapSequence<[[Key: Value]], Dictionary<Key, Value>.Values>>> {
        shards.lazy.flatMap(\.values)
    }
}

extension ShardedDictionary: Sendable where Key: Sendable, Value: Sendable {}
