import Dispatch
import KVCache
import Testing

@Suite("Sharded LRU cache")
struct ShardedLRUCacheTests {
    @Test("eviction takes the oldest entry not hit since eviction last passed it")
    func clockOrder() {
        let cache = ShardedLRUCache<Int, String>(capacity: 30, shardCount: 1)
        cache.insert(1, "a", charge: 10)
        cache.insert(2, "b", charge: 10)
        cache.insert(3, "c", charge: 10)
        #expect(cache.hottestKeys(limit: 10) == [3, 2, 1])
        #expect(cache.get(1) == "a")
        // Hit entries first, then the rest newest first.
        #expect(cache.hottestKeys(limit: 10) == [1, 3, 2])
        #expect(cache.hottestKeys(limit: 2) == [1, 3])
        cache.insert(4, "d", charge: 10)  // 1 was hit: spared (to the front, unmarked); 2 goes
        #expect(cache.get(2) == nil)
        #expect(cache.hottestKeys(limit: 10) == [1, 4, 3])
        cache.insert(5, "e", charge: 10)  // nothing marked: the oldest, 3, goes
        #expect(cache.get(3) == nil)
        #expect(cache.hottestKeys(limit: 10) == [5, 1, 4])
        cache.insert(1, "a2", charge: 10)  // replacement moves to the front, unmarked
        #expect(cache.hottestKeys(limit: 10) == [1, 5, 4])
        #expect(cache.get(1) == "a2")
        let s = cache.statistics
        #expect(s.evictions == 2 && s.inserts == 6 && s.entries == 3 && s.usage == 30)
    }

    @Test("an entry just stored is not its own victim, even when every other one was hit")
    func newEntrySurvives() {
        let cache = ShardedLRUCache<Int, Int>(capacity: 3, shardCount: 1)
        for i in 0..<3 { cache.insert(i, i, charge: 1) }
        for i in 0..<3 { #expect(cache.get(i) == i) }
        cache.insert(9, 9, charge: 1)
        #expect(cache.get(9) == 9)
        #expect(cache.count == 3)
        // All three were spared once; the oldest of them went.
        #expect(cache.get(0) == nil && cache.get(1) == 1 && cache.get(2) == 2)
    }

    @Test("a working set that is hit survives a stream of one-off entries")
    func hotSetSurvivesScan() {
        let cache = ShardedLRUCache<Int, Int>(capacity: 100, shardCount: 1)
        for i in 0..<50 { cache.insert(i, i, charge: 1) }
        for round in 0..<20 {
            for i in 0..<50 { #expect(cache.get(i) == i) }
            for j in 0..<30 { cache.insert(1000 + round * 30 + j, j, charge: 1) }
        }
        #expect((0..<50).allSatisfy { cache.get($0) == $0 })
        #expect(cache.usage == 100)
    }

    @Test("the byte budget is respected")
    func budget() {
        let cache = ShardedLRUCache<Int, [UInt8]>(capacity: 1000, shardCount: 4)
        for i in 0..<1000 {
            cache.insert(i, [UInt8](repeating: 0, count: 1), charge: 7 + i % 13)
            #expect(cache.usage <= 1000)
        }
        let s = cache.statistics
        #expect(s.usage <= 1000 && s.usage > 800)
        #expect(s.inserts == 1000 && s.evictions == 1000 - s.entries)
        // The newest entries survive.
        #expect(cache.get(999) != nil)
    }

    @Test("replacing an entry updates its charge")
    func replaceCharge() {
        let cache = ShardedLRUCache<String, Int>(capacity: 100, shardCount: 1)
        cache.insert("x", 1, charge: 10)
        cache.insert("x", 2, charge: 60)
        #expect(cache.usage == 60 && cache.count == 1 && cache.get("x") == 2)
        cache.insert("y", 3, charge: 50)  // 110 > 100: evicts x
        #expect(cache.get("x") == nil && cache.usage == 50)
    }

    @Test("entries larger than a shard's budget are not stored")
    func oversized() {
        let cache = ShardedLRUCache<Int, Int>(capacity: 100, shardCount: 4)  // 25 per shard
        cache.insert(1, 1, charge: 26)
        #expect(cache.get(1) == nil && cache.usage == 0)
        cache.insert(2, 2, charge: 25)
        #expect(cache.get(2) == 2)
        cache.insert(2, 3, charge: 1000)  // replacement too large: the old value goes too
        #expect(cache.get(2) == nil && cache.count == 0)
    }

    @Test("capacity 0 disables the cache")
    func disabled() {
        let cache = ShardedLRUCache<Int, Int>(capacity: 0)
        cache.insert(1, 1, charge: 0)
        cache.insert(2, 2, charge: 1)
        #expect(cache.get(1) == nil && cache.get(2) == nil)
        #expect(cache.count == 0 && cache.usage == 0 && cache.capacity == 0)
        #expect(cache.statistics.misses == 2 && cache.statistics.inserts == 0)
    }

    @Test("hit, miss, insert and eviction counters")
    func counters() {
        let cache = ShardedLRUCache<Int, Int>(capacity: 4, shardCount: 1)
        for i in 0..<6 { cache.insert(i, i, charge: 1) }
        for i in 0..<6 { _ = cache.get(i) }
        let s = cache.statistics
        #expect(s == CacheStatistics(hits: 4, misses: 2, inserts: 6, evictions: 2, entries: 4, usage: 4, capacity: 4))
        #expect(s.hitRate == 4.0 / 6.0)
    }

    @Test("remove and removeAll(where:)")
    func removal() {
        let cache = ShardedLRUCache<Int, Int>(capacity: 1000)
        for i in 0..<100 { cache.insert(i, i * 10, charge: 3) }
        #expect(cache.remove(5) == 50)
        #expect(cache.remove(5) == nil)
        #expect(cache.removeAll(where: { $0 % 2 == 0 }) == 50)
        #expect(cache.count == 49 && cache.usage == 147)
        #expect(cache.get(4) == nil && cache.get(7) == 70)
        // Freed slots are reused.
        for i in 100..<150 { cache.insert(i, i, charge: 3) }
        #expect(cache.count == 99)
        cache.removeAll()
        #expect(cache.count == 0 && cache.usage == 0)
    }

    @Test("hottest keys interleave shards by rank")
    func hottestAcrossShards() {
        let cache = ShardedLRUCache<Int, Int>(capacity: 10_000, shardCount: 8)
        for i in 0..<100 { cache.insert(i, i, charge: 1) }
        let hot = cache.hottestKeys(limit: 20)
        #expect(hot.count == 20 && Set(hot).count == 20)
        // The first rank holds each shard's most recent key, so the newest key of all is there.
        #expect(hot.prefix(8).contains(99))
        #expect(hot.allSatisfy { (0..<100).contains($0) })
        #expect(cache.hottestKeys(limit: 1000).count == 100)
        #expect(cache.hottestKeys(limit: 0).isEmpty)
    }

    @Test("concurrent use from many threads")
    func concurrent() {
        final class Payload: Sendable {
            let id: Int
            init(_ id: Int) { self.id = id }
        }
        let cache = ShardedLRUCache<Int, Payload>(capacity: 5000, shardCount: 8)
        let threads = 8
        let perThread = 20_000
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            var x = UInt64(t + 1) &* 0x9E37_79B9_7F4A_7C15
            for _ in 0..<perThread {
                x ^= x << 13
                x ^= x >> 7
                x ^= x << 17
                let key = Int(x % 2000)
                switch (x >> 40) % 10 {
                case 0...5:
                    if let p = cache.get(key) { precondition(p.id == key) }
                case 6...8:
                    cache.insert(key, Payload(key), charge: 1 + Int((x >> 20) % 7))
                default:
                    cache.remove(key)
                }
            }
        }
        let s = cache.statistics
        print("concurrent: \(s)")
        #expect(s.usage <= 5000)
        #expect(s.hits > 0 && s.misses > 0 && s.evictions > 0)
        #expect(s.entries == cache.count)
    }
}
