import Synchronization

/// Counters and sizes of a ``ShardedLRUCache``, summed over its shards.
public struct CacheStatistics: Sendable, Equatable {
    /// Lookups that found their key.
    public var hits: Int
    /// Lookups that did not.
    public var misses: Int
    /// Entries stored by ``ShardedLRUCache/insert(_:_:charge:)`` (replacements included).
    public var inserts: Int
    /// Entries dropped to stay within the byte budget.
    public var evictions: Int
    /// Entries held now.
    public var entries: Int
    /// Sum of the charges of the entries held now.
    public var usage: Int
    /// The byte budget.
    public var capacity: Int

    /// Statistics with the given values (all zero by default).
    public init(hits: Int = 0, misses: Int = 0, inserts: Int = 0, evictions: Int = 0, entries: Int = 0, usage: Int = 0, capacity: Int = 0) {
        self.hits = hits
        self.misses = misses
        self.inserts = inserts
        self.evictions = evictions
        self.entries = entries
        self.usage = usage
        self.capacity = capacity
    }

    /// `hits / (hits + misses)`, or 0 before the first lookup.
    public var hitRate: Double {
        let lookups = hits + misses
        return lookups == 0 ? 0 : Double(hits) / Double(lookups)
    }
}

/// A key-value cache with a byte budget, split into independently locked shards that evict
/// in approximately least-recently-used order (CLOCK, "second chance").
///
/// Each entry carries a *charge* (its size in bytes, as the caller counts it). The total
/// budget ``capacity`` is divided among the shards (shard `i` gets `capacity / shardCount`,
/// plus one byte for the first `capacity % shardCount` shards, so the shard budgets sum to
/// `capacity`). A key always lives in the shard picked by its hash, and each shard evicts its
/// least-recently-used entries once its usage passes its budget: a hit only marks its entry,
/// and eviction, working from the back of the shard's list, moves a marked entry to the front
/// with its mark cleared instead of dropping it. So a hit writes one flag at most once between
/// evictions, where a strict LRU list moves the entry on every hit (writing its node, both
/// neighbours and the list head, lines that every core reading the cache then has to fetch
/// again).
///
/// Thread safety: every method may be called from any thread. Each shard is guarded by its
/// own `Mutex`; a call locks exactly one shard (``get(_:)``, ``insert(_:_:charge:)``,
/// ``remove(_:)``) or each shard in turn (``statistics``, ``usage``, ``hottestKeys(limit:)``,
/// ``removeAll(where:)``), never two at once. Values are handed out by copy (for a class,
/// a strong reference), so an entry evicted while a caller still holds its value stays alive
/// for that caller: eviction only drops the cache's own reference.
///
/// Invariants, per shard, whenever its lock is free:
/// - `usage` is the sum of the charges of the linked entries and is at most the shard budget;
/// - every key in the hash map indexes a live node, and the live nodes form one circular
///   doubly linked list through the sentinel node 0, most recently stored or spared first;
/// - free node slots form a singly linked list through `next` and hold no key or value.
///
/// Complexity: ``get(_:)``, ``insert(_:_:charge:)`` and ``remove(_:)`` are O(1) expected
/// (one hash lookup plus list splices); nodes are slots of an array, not one object each.
///
/// A capacity of 0 disables the cache: lookups always miss and inserts store nothing.
public final class ShardedLRUCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    /// The total byte budget.
    public let capacity: Int

    /// Number of independently locked shards.
    public let shardCount: Int

    @usableFromInline
    let shards: [LRUShard<Key, Value>]

    /// Creates a cache.
    ///
    /// - Parameters:
    ///   - capacity: Total byte budget (sum of entry charges); 0 disables the cache.
    ///   - shardCount: Number of shards, each with its own lock (default 16). More shards cut
    ///     lock contention; each shard gets `capacity / shardCount` bytes, so an entry larger
    ///     than that is never stored.
    public init(capacity: Int, shardCount: Int = 16) {
        precondition(capacity >= 0, "cache capacity must not be negative")
        precondition(shardCount >= 1, "a cache needs at least one shard")
        self.capacity = capacity
        self.shardCount = shardCount
        var shards: [LRUShard<Key, Value>] = []
        shards.reserveCapacity(shardCount)
        for i in 0..<shardCount {
            let budget = capacity / shardCount + (i < capacity % shardCount ? 1 : 0)
            shards.append(LRUShard(capacity: budget))
        }
        self.shards = shards
    }

    @inlinable
    func shard(for key: Key) -> LRUShard<Key, Value> {
        if shardCount == 1 { return shards[0] }
        // Fibonacci mixing of the hash, then the high half: independent of the low bits a
        // shard's own hash map uses.
        let mixed = UInt64(UInt(bitPattern: key.hashValue)) &* 0x9E37_79B9_7F4A_7C15
        return shards[Int((mixed >> 32) % UInt64(shardCount))]
    }

    /// The value cached under `key`, marking it as used (spared by the next eviction that
    /// reaches it); nil on a miss.
    @inlinable
    public func get(_ key: Key) -> Value? {
        shard(for: key).state.withLock { $0.get(key) }
    }

    /// Caches `value` under `key` at the front of its shard's list, replacing any earlier value
    /// for the key, then evicts from the back of that shard (sparing marked entries once) until
    /// it fits its budget again.
    ///
    /// An entry whose charge exceeds its shard's budget is not stored (an earlier value for
    /// the key is still removed). A charge below 1 counts as 1, so the number of entries stays
    /// bounded by the budget.
    ///
    /// - Parameters:
    ///   - key: The key.
    ///   - value: The value.
    ///   - charge: The entry's size in bytes as counted against the budget.
    @inlinable
    public func insert(_ key: Key, _ value: Value, charge: Int) {
        shard(for: key).state.withLock { $0.insert(key, value, charge: Swift.max(charge, 1)) }
    }

    /// Removes the entry for `key`, returning its value if there was one.
    @inlinable
    @discardableResult
    public func remove(_ key: Key) -> Value? {
        shard(for: key).state.withLock { $0.remove(key) }
    }

    /// Removes every entry whose key satisfies `shouldRemove` (for example, every block of a
    /// deleted table file). The predicate runs while a shard lock is held: it must be quick and
    /// must not call back into this cache.
    ///
    /// - Returns: The number of entries removed.
    @discardableResult
    public func removeAll(where shouldRemove: (Key) -> Bool) -> Int {
        var removed = 0
        for shard in shards {
            removed += shard.state.withLock { s in
                var count = 0
                var i = s.nodes[0].next
                while i != 0 {
                    let next = s.nodes[i].next
                    if let key = s.nodes[i].key, shouldRemove(key) {
                        s.release(i)
                        count += 1
                    }
                    i = next
                }
                return count
            }
        }
        return removed
    }

    /// Removes every entry. Counters are kept.
    public func removeAll() {
        for shard in shards {
            shard.state.withLock { s in
                while s.nodes[0].next != 0 { s.release(s.nodes[0].next) }
            }
        }
    }

    /// Sum of the charges of the cached entries.
    public var usage: Int {
        shards.reduce(0) { acc, shard in acc + shard.state.withLock { $0.usage } }
    }

    /// Number of cached entries.
    public var count: Int {
        shards.reduce(0) { acc, shard in acc + shard.state.withLock { $0.map.count } }
    }

    /// Hit, miss, insert and eviction counters and current sizes, summed over the shards
    /// (each shard is read under its own lock, so the sum is not one atomic snapshot).
    public var statistics: CacheStatistics {
        var total = CacheStatistics(capacity: capacity)
        for shard in shards {
            shard.state.withLock { s in
                total.hits += s.hits
                total.misses += s.misses
                total.inserts += s.inserts
                total.evictions += s.evictions
                total.entries += s.map.count
                total.usage += s.usage
            }
        }
        return total
    }

    /// Keys of the hottest entries first, at most `limit` of them (for recording the cache's
    /// contents at shutdown and warming it at the next start).
    ///
    /// Within one shard: the entries hit since eviction last passed them, then the others,
    /// each group most recently stored or spared first. Shards keep no common clock, so across
    /// shards the lists are interleaved by rank: the first key of every shard, then the second
    /// of every shard, and so on.
    public func hottestKeys(limit: Int) -> [Key] {
        guard limit > 0 else { return [] }
        let perShard = shards.map { shard in shard.state.withLock { $0.hottestKeys(limit: limit) } }
        var result: [Key] = []
        result.reserveCapacity(Swift.min(limit, perShard.reduce(0) { $0 + $1.count }))
        var rank = 0
        while result.count < limit {
            var any = false
            for keys in perShard where rank < keys.count {
                any = true
                result.append(keys[rank])
                if result.count == limit { break }
            }
            if !any { break }
            rank += 1
        }
        return result
    }
}

/// One lock-guarded LRU shard. A class so that the non-copyable `Mutex` has a stable home
/// inside the cache's array of shards.
@usableFromInline
final class LRUShard<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    @usableFromInline
    let state: Mutex<LRUState<Key, Value>>

    @usableFromInline
    init(capacity: Int) {
        state = Mutex(LRUState(capacity: capacity))
    }
}

/// The guarded state of one shard: a hash map from key to node slot, plus an intrusive
/// circular doubly linked list over the node array with sentinel slot 0 (`nodes[0].next` is
/// the entry stored or spared last, `nodes[0].prev` the next one eviction looks at).
///
/// The hot operations are `@inlinable` so that clients get code specialized for their key and
/// value types instead of generic code that looks up type metadata on every call.
@usableFromInline
struct LRUState<Key: Hashable & Sendable, Value: Sendable> {
    @usableFromInline
    struct Node {
        @usableFromInline var key: Key?
        @usableFromInline var value: Value?
        @usableFromInline var charge: Int
        @usableFromInline var prev: Int
        @usableFromInline var next: Int
        /// Hit since it was inserted or last spared by eviction.
        @usableFromInline var referenced: Bool

        @inlinable
        init(key: Key?, value: Value?, charge: Int, prev: Int, next: Int) {
            self.key = key
            self.value = value
            self.charge = charge
            self.prev = prev
            self.next = next
            self.referenced = false
        }
    }

    @usableFromInline let capacity: Int
    @usableFromInline var map: [Key: Int] = [:]
    @usableFromInline var nodes: [Node]
    /// Head of the free-slot list (linked through `next`), or -1.
    @usableFromInline var freeHead = -1
    @usableFromInline var usage = 0
    @usableFromInline var hits = 0
    @usableFromInline var misses = 0
    @usableFromInline var inserts = 0
    @usableFromInline var evictions = 0

    @usableFromInline
    init(capacity: Int) {
        self.capacity = capacity
        nodes = [Node(key: nil, value: nil, charge: 0, prev: 0, next: 0)]
    }

    @inlinable
    mutating func unlink(_ i: Int) {
        let p = nodes[i].prev
        let n = nodes[i].next
        nodes[p].next = n
        nodes[n].prev = p
    }

    @inlinable
    mutating func pushFront(_ i: Int) {
        let first = nodes[0].next
        nodes[i].prev = 0
        nodes[i].next = first
        nodes[first].prev = i
        nodes[0].next = i
    }

    @inlinable
    mutating func get(_ key: Key) -> Value? {
        guard let i = map[key] else {
            misses += 1
            return nil
        }
        hits += 1
        // Only the first hit writes: a hot entry's node stays a clean cache line that both
        // cores can hold, where moving it to the front wrote its node, both neighbours and
        // the sentinel on every hit.
        if !nodes[i].referenced { nodes[i].referenced = true }
        return nodes[i].value
    }

    @inlinable
    mutating func insert(_ key: Key, _ value: Value, charge: Int) {
        guard capacity > 0 else { return }
        if let i = map[key] {
            if charge > capacity {
                release(i)
                return
            }
            usage += charge - nodes[i].charge
            nodes[i].value = value
            nodes[i].charge = charge
            nodes[i].referenced = false
            unlink(i)
            pushFront(i)
            evict(sparing: i)
        } else {
            guard charge <= capacity else { return }
            let i: Int
            if freeHead >= 0 {
                i = freeHead
                freeHead = nodes[i].next
                nodes[i] = Node(key: key, value: value, charge: charge, prev: 0, next: 0)
            } else {
                i = nodes.count
                nodes.append(Node(key: key, value: value, charge: charge, prev: 0, next: 0))
            }
            map[key] = i
            usage += charge
            pushFront(i)
            evict(sparing: i)
        }
        inserts += 1
    }

    /// Evicts from the back of the list until the shard fits its budget. An entry hit since it
    /// was last passed over gets a second chance instead (its mark cleared, moved to the
    /// front); `entry`, the one just stored, is never the victim (it alone fits the budget).
    @inlinable
    mutating func evict(sparing entry: Int) {
        while usage > capacity {
            let victim = nodes[0].prev
            precondition(victim != 0, "LRU list empty while over budget")
            if victim == entry || nodes[victim].referenced {
                nodes[victim].referenced = false
                unlink(victim)
                pushFront(victim)
                continue
            }
            release(victim)
            evictions += 1
        }
    }

    @inlinable
    mutating func remove(_ key: Key) -> Value? {
        guard let i = map[key] else { return nil }
        let value = nodes[i].value
        release(i)
        return value
    }

    /// Unlinks slot `i`, drops its key and value and puts it on the free list.
    @inlinable
    mutating func release(_ i: Int) {
        unlink(i)
        if let key = nodes[i].key { map.removeValue(forKey: key) }
        usage -= nodes[i].charge
        nodes[i].key = nil
        nodes[i].value = nil
        nodes[i].charge = 0
        nodes[i].prev = -1
        nodes[i].next = freeHead
        freeHead = i
    }

    /// Entries hit since they were last passed over first, then the rest; each group in list
    /// order (most recently stored or spared first).
    func hottestKeys(limit: Int) -> [Key] {
        var keys: [Key] = []
        keys.reserveCapacity(Swift.min(limit, map.count))
        for hit in [true, false] {
            var i = nodes[0].next
            while i != 0 && keys.count < limit {
                if nodes[i].referenced == hit, let key = nodes[i].key { keys.append(key) }
                i = nodes[i].next
            }
        }
        return keys
    }
}
