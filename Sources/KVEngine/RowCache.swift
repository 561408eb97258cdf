import KVBase
import KVCache
import Synchronization

/// Caches point-lookup results (user key → value) in front of the tables.
///
/// Correctness rules:
/// - Only reads at the latest state (no snapshot) use it, and only after the memtables missed:
///   a write still in a memtable is always seen there first.
/// - Every write removes its keys (the group-commit leader calls ``invalidate(_:)`` after the
///   memtable insert, before the write becomes visible).
/// - A reader that missed fills the cache only if no write to a key of the same stripe
///   happened since it started the lookup (``generation(of:)`` / ``insert(_:_:ifGeneration:)``),
///   so a value read before a concurrent write can never be cached after that write.
final class RowCache: Sendable {
    let cache: ShardedLRUCache<[UInt8], [UInt8]>
    /// One lock-protected write generation per stripe of the key space.
    final class Stripe: Sendable {
        let generation = Mutex<UInt64>(0)
    }

    private let stripes: [Stripe]
    static let stripeCount = 256

    init(capacity: Int) {
        cache = ShardedLRUCache(capacity: capacity)
        stripes = (0..<Self.stripeCount).map { _ in Stripe() }
    }

    private func stripe(_ key: UnsafeRawBufferPointer) -> Int {
        // FNV-1a over the key; stripes only need to spread writes.
        var h: UInt32 = 2_166_136_261
        for b in key { h = (h ^ UInt32(b)) &* 16_777_619 }
        return Int(h % UInt32(Self.stripeCount))
    }

    func generation(of key: UnsafeRawBufferPointer) -> UInt64 {
        stripes[stripe(key)].generation.withLock { $0 }
    }

    func get(_ key: UnsafeRawBufferPointer) -> [UInt8]? {
        cache.get(Array(key))
    }

    func insert(_ key: UnsafeRawBufferPointer, _ value: [UInt8], ifGeneration g: UInt64) {
        stripes[stripe(key)].generation.withLock { gen in
            if gen == g { cache.insert(Array(key), value, charge: key.count + value.count + 64) }
        }
    }

    func invalidate(_ key: UnsafeRawBufferPointer) {
        stripes[stripe(key)].generation.withLock { gen in
            gen = gen &+ 1
            _ = cache.remove(Array(key))
        }
    }
}
