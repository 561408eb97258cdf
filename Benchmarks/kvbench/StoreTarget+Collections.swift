import Shale

/// The collection commands on a ``ShardedStore``, done as kvserver's handlers do them
/// (Sources/KVServer/Commands+Hash.swift, +List, +Set, +SortedSet, +SortedSetRange): one
/// ``ShardedStore/update(_:durability:_:)`` per command — the key's lock, its metadata row,
/// element reads through the ``KeyedUpdate``, and the metadata rewritten in the same batch as
/// the elements. Reads go through `update` as well, as the server's do. What the server adds
/// on top (parsing, keyspace notifications, the reply) is left out.
extension StoreSession {
    mutating func collection(_ op: CollectionOp, into recorder: inout Recorder) throws {
        switch op {
        case .hset(let key, let field, let value):
            try change(key, .hash) { u, m in
                if try u.element(0, m, field) == nil { m.count += 1 }
                u.putElement(0, m, field, Array(value))
            }
        case .hget(let key, let field):
            let value = try read(key, .hash) { u, m in try u.element(0, m, field) }
            recorder.reads += 1
            if let value {
                recorder.found += 1
                recorder.bytes += value.count
            }
        case .push(let key, let items, let left):
            try change(key, .list) { u, m in
                for item in items {
                    if left {
                        m.head -= 1
                        u.putElement(0, m, CollectionLayout.positionBytes(m.head), Array(item))
                    } else {
                        u.putElement(0, m, CollectionLayout.positionBytes(m.tail), Array(item))
                        m.tail += 1
                    }
                }
                m.count = m.tail - m.head
            }
        case .pop(let key, let left):
            // As the server's popItems: the item read with a range scan of its one position.
            let item = try store.update([key], durability: durability) { u -> [UInt8]? in
                guard var m = try u.collection(0, .list), m.count > 0 else { return nil }
                let from = left ? m.head : m.tail - 1
                var items: [[UInt8]] = []
                try u.scanElements(0, m, from: CollectionLayout.positionBytes(from), to: CollectionLayout.positionBytes(from + 1)) { _, value in
                    items.append(Array(value))
                    return true
                }
                u.deleteElement(0, m, CollectionLayout.positionBytes(from))
                if left { m.head += 1 } else { m.tail -= 1 }
                m.count = m.tail - m.head
                u.setCollection(0, m)
                return items.first
            }
            recorder.reads += 1
            if let item {
                recorder.found += 1
                recorder.bytes += item.count
            }
        case .lrange(let key, let start, let stop):
            let (items, bytes) = try read(key, .list) { u, m -> (Int, Int) in
                let from = m.head + Int64(start), to = min(m.tail, m.head + Int64(stop) + 1)
                guard from < to else { return (0, 0) }
                var items: [[UInt8]] = []
                try u.scanElements(0, m, from: CollectionLayout.positionBytes(from), to: CollectionLayout.positionBytes(to)) { _, value in
                    items.append(Array(value))
                    return true
                }
                return (items.count, items.reduce(0) { $0 + $1.count })
            } ?? (0, 0)
            recorder.range(items: items, bytes: bytes)
        case .sadd(let key, let member):
            try change(key, .set) { u, m in
                if try u.element(0, m, member) == nil {
                    u.putElement(0, m, member, [])
                    m.count += 1
                }
            }
        case .sismember(let key, let member):
            let found = try read(key, .set) { u, m in try u.element(0, m, member) } != nil
            recorder.reads += 1
            if found { recorder.found += 1 }
        case .zadd(let key, let members):
            try change(key, .zset) { u, m in
                for (given, member) in members {
                    let old = try u.element(0, m, member).flatMap { v in v.withUnsafeBytes { CollectionLayout.score(ofValue: $0) } }
                    let score = given == 0 ? 0 : given
                    if let old {
                        if old == score { continue }
                        u.deleteElement(0, m, kind: CollectionLayout.scoreKind, CollectionLayout.scoreBytes(old) + member)
                    } else {
                        m.count += 1
                    }
                    u.putElement(0, m, member, CollectionLayout.scoreValue(score))
                    u.putElement(0, m, kind: CollectionLayout.scoreKind, CollectionLayout.scoreBytes(score) + member, [])
                }
            }
        case .zrange(let key, let start, let stop):
            let (items, bytes) = try read(key, .zset) { u, m -> (Int, Int) in
                var rank = 0, items = 0, bytes = 0
                try u.scanElements(0, m, kind: CollectionLayout.scoreKind) { sub, _ in
                    defer { rank += 1 }
                    if rank < start { return true }
                    if rank > stop { return false }
                    // The reply's member: the entry's sub-key after the 8 score bytes.
                    let member = Array(sub[8...])
                    items += 1
                    bytes += member.count
                    return true
                }
                return (items, bytes)
            } ?? (0, 0)
            recorder.range(items: items, bytes: bytes)
        case .zrangeByScore(let key, let min, let limit):
            let (items, bytes) = try read(key, .zset) { u, m -> (Int, Int) in
                var items = 0, bytes = 0
                guard limit > 0 else { return (0, 0) }
                try u.scanElements(0, m, kind: CollectionLayout.scoreKind, from: CollectionLayout.scoreBytes(min)) { sub, _ in
                    let member = Array(sub[8...])
                    items += 1
                    bytes += member.count
                    return items < limit
                }
                return (items, bytes)
            } ?? (0, 0)
            recorder.range(items: items, bytes: bytes)
        }
    }

    /// A write to key's collection of `type` (created when absent), as the server's
    /// `changeCollection`: the metadata is written when `body` staged an element change.
    private func change(_ key: [UInt8], _ type: ValueType, _ body: (KeyedUpdate, inout CollectionMeta) throws -> Void) throws {
        try store.update([key], durability: durability) { u in
            var m = try u.collection(0, type) ?? u.newCollection(0, type)
            try body(u, &m)
            if !u.elementsUnchanged { u.setCollection(0, m) }
        }
    }

    /// A read of key's collection of `type`; nil when the key is absent.
    private func read<R>(_ key: [UInt8], _ type: ValueType, _ body: (KeyedUpdate, CollectionMeta) throws -> R?) throws -> R? {
        try store.update([key]) { u -> R? in
            guard let m = try u.collection(0, type) else { return nil }
            return try body(u, m)
        }
    }
}

extension Recorder {
    /// Accounts one answered range read of `items` items and `bytes` bytes.
    mutating func range(items: Int, bytes: Int) {
        reads += 1
        if items > 0 { found += 1 }
        self.bytes += bytes
        count("items", items)
    }
}
