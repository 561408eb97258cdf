import KVBase
import KVEngine
import KVLayout

/// Index queries: one merge over every shard's entries in the query's range, each entry
/// checked against its row (see `ShardedStore.query(index:_:offset:limit:withValues:)`).
/// Holds no state: the statistics a query updates live in its index's ``IndexHandle``.
package enum IndexQueryEngine {
    /// Runs `query` on index `name` of `catalog` over the store of `host`.
    package static func run(
        index name: String, _ query: IndexQuery, offset: Int, limit: Int?, withValues: Bool, catalog: IndexCatalog, _ host: any IndexHost
    ) throws(KVError) -> [IndexHit] {
        if offset < 0 { throw .invalidArgument("query offset must not be negative, got \(offset)") }
        if let limit, limit < 0 { throw .invalidArgument("query limit must not be negative, got \(limit)") }
        guard let h = catalog.set.named(name) else { throw .notFound("no such index '\(name)'") }
        if h.isBuilding {
            if let f = h.failure.withLock({ $0 }) {
                throw .invalidState("index '\(name)' is still building (\(h.progress)%); its back-fill stopped: \(f)")
            }
            throw .invalidState("index '\(name)' is still building (\(h.progress)%)")
        }
        let range = try Self.entryRange(h, query)
        h.queries.add(1, ordering: .relaxed)
        guard let (lower, upper) = range, limit != 0 else { return [] }
        _ = try host.indexLayout()  // throws once the store is closing

        let snap = host.indexSnapshot()
        defer { snap.release() }
        let now = host.now
        var cursors: [IndexCursor] = []
        for shard in snap.layout.shards {
            let it = try shard.db.makeIterator(snapshot: snap.snapshots[shard.id])
            let c = IndexCursor(it, shard: shard, owners: snap.layout.owners, upper: upper)
            try c.start(lower)
            cursors.append(c)
        }
        var hits: [IndexHit] = []
        var skipped = 0
        while true {
            var best: IndexCursor?
            for c in cursors where c.valid {
                if best == nil || compareBytes(c.key, best!.key) < 0 { best = c }
            }
            guard let c = best else { break }
            // Verify the entry against its row at the same snapshot.
            let raw = try EngineKey.withEncoded(c.user) { (k) throws(KVError) in
                try c.shard.db.get(k, snapshot: snap.snapshots[c.shard.id])
            }
            if let raw {
                guard let (n, t) = raw.withUnsafeBytes({ RowValue.parse($0) }) else { throw RowValue.damaged(c.user) }
                // What the index reads: the JSON string row, or the hash's field (its element
                // record at the same snapshot).
                var indexed: [UInt8]?
                if !RowValue.isExpired(t, now: now) {
                    switch (h.definition.source, raw.withUnsafeBytes { RowValue.type($0) }) {
                    case (.json, .string):
                        indexed = Array(raw[..<n])
                    case (.hash, .hash):
                        let meta = try CollectionMeta.decode(Array(raw[..<n]), type: .hash, key: c.user)
                        let k = CollectionLayout.elementKey(CollectionLayout.elementPrefix(c.user, version: meta.version),
                                                            kind: CollectionLayout.memberKind, Array(h.definition.field.utf8))
                        indexed = try c.shard.db.get(k, snapshot: snap.snapshots[c.shard.id])
                    default:
                        break
                    }
                }
                if let indexed, h.entry(key: c.user, value: indexed)?.key == c.key {
                    if skipped < offset {
                        skipped += 1
                    } else {
                        hits.append(IndexHit(key: c.user, value: withValues ? indexed : nil))
                        if let limit, hits.count >= limit { break }
                    }
                }
            }
            try c.step()
        }
        h.results.add(hits.count, ordering: .relaxed)
        return hits
    }

    /// The engine-key range `lower..<upper` holding the entries a query matches, or nil when
    /// it can match nothing.
    static func entryRange(_ h: IndexHandle, _ query: IndexQuery) throws(KVError) -> (lower: [UInt8], upper: [UInt8])? {
        let name = h.name
        let type = h.definition.type
        var lower = h.entryPrefix
        switch query {
        case .equals(let v):
            switch (v, type) {
            case (.string(let s), .string):
                if s.count > IndexDefinition.maxIndexedStringLength { return nil }
            case (.number(let d), .number):
                if d.isNaN { throw .invalidArgument("index '\(name)': cannot compare with NaN") }
                if !d.isFinite { return nil }
            case (.string, .number):
                throw .invalidArgument("index '\(name)' indexes numbers; EQ needs a number")
            case (.number, .string):
                throw .invalidArgument("index '\(name)' indexes strings; EQ needs a string")
            }
            IndexKeys.appendValue(v, to: &lower)
            return (lower, prefixSuccessor(lower)!)
        case .prefix(let p):
            guard type == .string else {
                throw .invalidArgument("index '\(name)' indexes numbers; PREFIX needs a string index (use RANGE)")
            }
            lower.append(IndexKeys.stringType)
            EngineKey.appendEscapedPrefix(p, to: &lower)
            return (lower, prefixSuccessor(lower)!)
        case .range(let lo, let hi):
            guard type == .number else {
                throw .invalidArgument("index '\(name)' indexes strings; RANGE needs a number index (use EQ or PREFIX)")
            }
            if lo?.isNaN == true || hi?.isNaN == true { throw .invalidArgument("index '\(name)': a range bound cannot be NaN") }
            if let lo, let hi, lo > hi { return nil }
            var upper = lower
            lower.append(IndexKeys.numberType)
            if let lo { EngineKey.appendBigEndian(IndexKeys.sortableBits(lo), to: &lower) }
            if let hi {
                upper.append(IndexKeys.numberType)
                EngineKey.appendBigEndian(IndexKeys.sortableBits(hi), to: &upper)
                upper = prefixSuccessor(upper)!
            } else {
                upper.append(IndexKeys.numberType + 1)
            }
            return (lower, upper)
        }
    }
}

/// One shard's side of an index query: the entries in `..<upper` whose rows the shard owns in
/// the snapshot's slot table (a reshard's copies elsewhere are skipped).
final class IndexCursor {
    let iterator: DBIterator
    let shard: IndexShard
    let owners: [UInt16]
    let upper: [UInt8]
    /// The current entry's engine key and its user key; meaningful when `valid`.
    private(set) var key: [UInt8] = []
    private(set) var user: [UInt8] = []
    private(set) var valid = false

    init(_ iterator: DBIterator, shard: IndexShard, owners: [UInt16], upper: [UInt8]) {
        self.iterator = iterator
        self.shard = shard
        self.owners = owners
        self.upper = upper
    }

    func start(_ lower: [UInt8]) throws(KVError) {
        try iterator.seek(lower)
        try settle()
    }

    func step() throws(KVError) {
        try iterator.next()
        try settle()
    }

    private func settle() throws(KVError) {
        while iterator.isValid {
            let k = iterator.keyView
            if upper.withUnsafeBytes({ compareBytes(k, $0) }) >= 0 { break }
            guard let user = IndexKeys.userKey(ofEntry: k) else {
                throw .corruption(file: shard.path, offset: 0, reason: "malformed index entry \(printable(Array(k)))")
            }
            if Int(owners[HashSlot.slot(of: user)]) == shard.id {
                key = Array(k)
                self.user = user
                valid = true
                return
            }
            try iterator.next()
        }
        valid = false
    }
}
