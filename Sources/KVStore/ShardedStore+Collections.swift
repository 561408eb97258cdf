import KVBase
import KVEngine
import KVIndex
import KVLayout

extension ShardedStore {
    /// Reads and changes the rows of `keys` and the elements of the collections they hold
    /// (hashes, lists, sets, sorted sets; see ``CollectionLayout``) as one atomic step.
    ///
    /// Holds the write locks of the keys while `body` runs, as ``modify(_:durability:_:)``
    /// does: no other write to them comes between its reads and its writes. `body` reads rows
    /// and elements through the ``KeyedUpdate`` (its own staged changes included) and stages
    /// changes; they are written in one engine batch at the end (atomic when the keys share a
    /// shard). If `body` throws, nothing is written. Inside a ``transaction(durability:_:)``
    /// the reads see the transaction's earlier writes and the changes join its buffer.
    ///
    /// - Parameter keys: distinct keys.
    public func update<R>(_ keys: [[UInt8]], durability: Durability? = nil, _ body: (KeyedUpdate) throws -> R) throws -> R {
        if keys.count > 1 && Set(keys).count != keys.count {
            throw KVError.invalidArgument("update: the keys must be distinct")
        }
        let slots = keys.map { HashSlot.slot(of: $0) }
        return try keyLocks.withLocks(slots: slots) { () throws -> R in
            var olds: [StoredEntry?] = []
            olds.reserveCapacity(keys.count)
            for key in keys { olds.append(try rawEntry(key, snapshot: nil)) }
            let u = KeyedUpdate(store: self, keys: keys, slots: slots, olds: olds, now: now)
            let result = try body(u)
            var writes: [RowWrite] = []
            for i in keys.indices where u.dirty[i] {
                writes.append(RowWrite(key: keys[i], slot: slots[i], new: u.rows[i], old: olds[i], oldKnown: true))
            }
            if !writes.isEmpty || !u.elements.isEmpty {
                try commitRowsLocked(writes, durability: durability, extra: u.elements, staged: u.staged)
            }
            return result
        }
    }

    /// Writes collection element records as they are (a slot move's copy: the metadata rows
    /// come through the row path).
    package func applyElementRecords(_ batch: RoutedBatch) throws(KVError) {
        try apply(batch, durability: nil)
    }

    /// Deletes every collection element record of the flagged slots (16,384 flags) from the
    /// shards, in batches of 1,000 (a slot move's purge; the rows go through the row path).
    package func deleteElementRecords(ofSlots slots: [Bool]) throws(KVError) {
        let start: [UInt8] = [EngineKey.reservedByte, EngineKey.elementTag]
        let end: [UInt8] = [EngineKey.reservedByte, EngineKey.elementTag + 1]
        for shard in try currentRouting().shards {
            let it = try shard.db.makeIterator()
            try it.seek(start)
            var batch = RoutedBatch()
            while it.isValid, end.withUnsafeBytes({ compareBytes(it.keyView, $0) }) < 0 {
                if let slot = EngineKey.slot(of: it.keyView), slots[slot] {
                    batch.delete(it.keyView, slot: slot)
                    if batch.count >= 1000 {
                        try apply(batch, durability: nil)
                        batch = RoutedBatch()
                    }
                }
                try it.next()
            }
            if !batch.isEmpty { try apply(batch, durability: nil) }
        }
    }

    /// Writes the index entries of the hashes in the flagged slots (16,384 flags) that hash
    /// indexes cover: a slot move's snapshot brings their metadata rows before their element
    /// records, so the row path found no fields to index; the target held no entries for
    /// them (it purged the slots first). Nothing to do without hash indexes.
    package func indexCollections(inSlots slots: [Bool]) throws(KVError) {
        guard indexCatalog.set.all.contains(where: { $0.definition.source == .hash }) else { return }
        let scan = try self.scan()
        var keys: [[UInt8]] = []
        while let (key, row) = try scan.nextRowTyped() {
            if row.type == .hash, slots[HashSlot.slot(of: key)], !indexCatalog.hashFields(covering: key).isEmpty { keys.append(key) }
        }
        for key in keys {
            let slot = HashSlot.slot(of: key)
            try keyLocks.withLock(slot: slot) { () throws(KVError) in
                guard let row = try entry(key, snapshot: nil, now: now) else { return }
                var batch = RoutedBatch()
                var deltas = IndexDeltas()
                indexCatalog.appendUpdates(key: key, slot: slot, old: nil, new: try indexedRow(key, row, slot: slot, staged: nil),
                                           into: &batch, deltas: &deltas)
                if batch.isEmpty { return }
                try apply(batch, durability: nil)
                deltas.apply()
            }
        }
    }

    /// A collection version never handed out before: above the last one, above the wall clock
    /// in microseconds (so a restarted process does not reuse its predecessor's), and above
    /// `old` (the key's previous collection, whose elements may not be compacted away yet).
    func nextCollectionVersion(after old: UInt64?) -> UInt64 {
        let micros = UInt64(max(0, RowValue.wallClockMillis())) &* 1000
        var current = lastCollectionVersion.load(ordering: .relaxed)
        while true {
            let next = max(current &+ 1, micros, (old ?? 0) &+ 1)
            let (done, seen) = lastCollectionVersion.compareExchange(expected: current, desired: next, ordering: .relaxed)
            if done { return next }
            current = seen
        }
    }

    /// The engine value of an engine key in the shard owning `slot`: the running
    /// transaction's buffered write first, then the owner (retried across an ownership
    /// switch, as ``rawGet(_:snapshot:)``).
    func engineValue(_ engineKey: [UInt8], slot: Int) throws(KVError) -> [UInt8]? {
        if transactions.ownedByCurrentThread, let buffered = engineKey.withUnsafeBytes({ transactions.buffered($0) }) {
            return buffered
        }
        waitForTransactionCommit()
        while true {
            let routing = try currentRouting()
            let value: [UInt8]?
            do throws(KVError) {
                value = try routing.shard(forSlot: slot).db.get(engineKey)
            } catch {
                if routingGeneration.load(ordering: .acquiring) == routing.generation { throw error }
                continue
            }
            if routingGeneration.load(ordering: .acquiring) == routing.generation { return value }
        }
    }

    /// An iterator over the current state of the shard owning `slot`, made under a routing
    /// that was still in force after it was made.
    func ownerIterator(slot: Int) throws(KVError) -> DBIterator {
        waitForTransactionCommit()
        while true {
            let routing = try currentRouting()
            let it: DBIterator
            do throws(KVError) {
                it = try routing.shard(forSlot: slot).db.makeIterator()
            } catch {
                if routingGeneration.load(ordering: .acquiring) == routing.generation { throw error }
                continue
            }
            if routingGeneration.load(ordering: .acquiring) == routing.generation { return it }
        }
    }
}

/// The rows of some keys and their collections' elements, read and changed under the keys'
/// write locks inside ``ShardedStore/update(_:durability:_:)``. Valid only inside that call.
///
/// Key `i` is `keys[i]`. Element reads see the changes staged before them in the same call.
public final class KeyedUpdate {
    /// The keys, in the order given.
    public let keys: [[UInt8]]
    /// The store's clock when the locks were taken.
    public let now: Int64
    let store: ShardedStore
    let slots: [Int]
    /// The rows as stored (expired ones included).
    let olds: [StoredEntry?]
    /// The live rows, with the staged changes.
    public private(set) var rows: [StoredEntry?]
    var dirty: [Bool]
    /// Staged element changes by engine key (nil: deleted), and the same as a batch.
    private(set) var staged: [[UInt8]: [UInt8]?] = [:]
    private(set) var elements = RoutedBatch()

    init(store: ShardedStore, keys: [[UInt8]], slots: [Int], olds: [StoredEntry?], now: Int64) {
        self.store = store
        self.keys = keys
        self.slots = slots
        self.olds = olds
        self.now = now
        rows = olds.map { e in
            guard let e, !RowValue.isExpired(e.expiresAt, now: now) else { return nil }
            return e
        }
        dirty = Array(repeating: false, count: keys.count)
    }

    /// Whether no element change is staged.
    public var elementsUnchanged: Bool { elements.isEmpty }

    /// Replaces key `i`'s row (nil deletes the key). Overwriting a collection leaves its
    /// elements behind under their old version; compaction drops them.
    public func setRow(_ i: Int, _ entry: StoredEntry?) {
        rows[i] = entry
        dirty[i] = true
    }

    /// The collection key `i` holds: nil when the key is absent; throws
    /// ``KVError/wrongType(key:)`` when it holds another type.
    public func collection(_ i: Int, _ type: ValueType) throws(KVError) -> CollectionMeta? {
        guard let row = rows[i] else { return nil }
        guard row.type == type else { throw .wrongType(key: printable(keys[i])) }
        return try CollectionMeta.decode(row.value, type: type, key: keys[i])
    }

    /// The metadata of a new, empty collection of `type` for key `i` with a fresh version.
    /// Nothing is written until ``setCollection(_:_:)``.
    public func newCollection(_ i: Int, _ type: ValueType) -> CollectionMeta {
        var old: UInt64?
        for e in [olds[i], rows[i]] {
            if let e, e.type != .string, let m = try? CollectionMeta.decode(e.value, type: e.type, key: keys[i]) {
                old = max(old ?? 0, m.version)
            }
        }
        return CollectionMeta(type: type, version: store.nextCollectionVersion(after: old))
    }

    /// Writes key `i`'s collection metadata: a collection with no elements deletes the key.
    /// The row keeps its expiry when it already held this collection (same version).
    public func setCollection(_ i: Int, _ meta: CollectionMeta) {
        if meta.count <= 0 {
            setRow(i, nil)
            return
        }
        var expiresAt: Int64?
        if let row = rows[i], row.type == meta.type,
           let m = try? CollectionMeta.decode(row.value, type: row.type, key: keys[i]), m.version == meta.version {
            expiresAt = row.expiresAt
        }
        setRow(i, StoredEntry(value: meta.encoded, expiresAt: expiresAt, type: meta.type))
    }

    /// Key `i`'s row with a new expiry time (the row must exist).
    public func setExpiry(_ i: Int, _ expiresAt: Int64?) {
        guard var row = rows[i] else { return }
        row.expiresAt = expiresAt
        setRow(i, row)
    }

    /// Copies key `i`'s collection to key `j` (replacing what `j` holds) under a new version,
    /// with `i`'s expiry. Key `i` is left as it is.
    public func copyCollection(_ i: Int, to j: Int) throws {
        guard let row = rows[i], row.type != .string else { return }
        let m = try CollectionMeta.decode(row.value, type: row.type, key: keys[i])
        var n = newCollection(j, m.type)
        n.count = m.count
        n.head = m.head
        n.tail = m.tail
        for kind in [CollectionLayout.memberKind, CollectionLayout.scoreKind] {
            try scanElements(i, m, kind: kind) { sub, value in
                putElement(j, n, kind: kind, Array(sub), Array(value))
                return true
            }
        }
        setRow(j, StoredEntry(value: n.encoded, expiresAt: row.expiresAt, type: m.type))
    }

    private func engineKey(_ i: Int, _ meta: CollectionMeta, _ kind: UInt8, _ sub: [UInt8]) -> [UInt8] {
        CollectionLayout.elementKey(CollectionLayout.elementPrefix(keys[i], version: meta.version), kind: kind, sub)
    }

    /// The value of an element of key `i`'s collection `meta`, or nil.
    public func element(_ i: Int, _ meta: CollectionMeta, kind: UInt8 = CollectionLayout.memberKind, _ sub: [UInt8]) throws(KVError) -> [UInt8]? {
        let k = engineKey(i, meta, kind, sub)
        if let s = staged[k] { return s }
        return try store.engineValue(k, slot: slots[i])
    }

    /// Stages an element write.
    public func putElement(_ i: Int, _ meta: CollectionMeta, kind: UInt8 = CollectionLayout.memberKind, _ sub: [UInt8], _ value: [UInt8]) {
        let k = engineKey(i, meta, kind, sub)
        staged[k] = .some(value)
        elements.put(k, value, slot: slots[i])
    }

    /// Stages the write of an element record given by its engine key (a slot move copying
    /// another node's records for key `i`).
    package func putRecord(_ i: Int, engineKey: [UInt8], value: [UInt8]) {
        staged[engineKey] = .some(value)
        elements.put(engineKey, value, slot: slots[i])
    }

    /// Stages the deletion of an element record given by its engine key.
    package func deleteRecord(_ i: Int, engineKey: [UInt8]) {
        staged[engineKey] = .some(nil)
        elements.delete(engineKey, slot: slots[i])
    }

    /// Stages an element deletion.
    public func deleteElement(_ i: Int, _ meta: CollectionMeta, kind: UInt8 = CollectionLayout.memberKind, _ sub: [UInt8]) {
        let k = engineKey(i, meta, kind, sub)
        staged[k] = .some(nil)
        elements.delete(k, slot: slots[i])
    }

    /// Calls `body` with the sub-key and value of each element of `kind` of key `i`'s
    /// collection `meta` with `from <= sub < to` (nil: open), in sub-key order (descending
    /// with `reverse`), until `body` returns false. Staged changes and the running
    /// transaction's writes are merged in.
    public func scanElements(_ i: Int, _ meta: CollectionMeta, kind: UInt8 = CollectionLayout.memberKind,
                             from: [UInt8]? = nil, to: [UInt8]? = nil, reverse: Bool = false,
                             _ body: (_ sub: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool) throws {
        let prefix = CollectionLayout.elementPrefix(keys[i], version: meta.version) + [kind]
        var lower = prefix + (from ?? [])
        var upper = to.map { prefix + $0 } ?? CollectionLayout.elementPrefix(keys[i], version: meta.version) + [kind &+ 1]
        if kind == CollectionLayout.scoreKind {
            // No live score entry lies outside floor...ceiling: start the walks there.
            if !meta.floor.isEmpty, lower.lexicographicallyPrecedes(prefix + meta.floor) { lower = prefix + meta.floor }
            if !meta.ceiling.isEmpty {
                let end = prefix + meta.ceiling + [0]
                if end.lexicographicallyPrecedes(upper) { upper = end }
            }
        }
        // Writes not in the engine yet: the transaction's, then this call's (which win).
        var pending: [[UInt8]: [UInt8]?] = [:]
        if store.transactions.ownedByCurrentThread {
            for (k, v) in store.transactions.bufferedRange(lower, upper) { pending[k] = .some(v) }
        }
        for (k, v) in staged where !k.lexicographicallyPrecedes(lower) && k.lexicographicallyPrecedes(upper) {
            pending[k] = .some(v)
        }
        var overlay = pending.map { ($0.key, $0.value) }.sorted { $0.0.lexicographicallyPrecedes($1.0) }
        if reverse { overlay.reverse() }
        var o = 0
        let it = try store.ownerIterator(slot: slots[i])
        // Bounded: a move past the range stops at its end instead of stepping over deleted
        // elements beyond it (popped items, other collections' tombstones).
        it.lowerBound = lower
        it.upperBound = upper
        if reverse { try it.seekBefore(upper) } else { try it.seek(lower) }
        func inRange(_ k: UnsafeRawBufferPointer) -> Bool {
            reverse ? lower.withUnsafeBytes { compareBytes(k, $0) } >= 0 : upper.withUnsafeBytes { compareBytes(k, $0) } < 0
        }
        let subStart = prefix.count
        while true {
            let engineValid = it.isValid && inRange(it.keyView)
            if o < overlay.count {
                let ok = overlay[o].0
                let c = engineValid ? ok.withUnsafeBytes { compareBytes($0, it.keyView) } : (reverse ? 1 : -1)
                if (reverse && c >= 0) || (!reverse && c <= 0) {
                    if c == 0 { if reverse { try it.prev() } else { try it.next() } }
                    o += 1
                    if let v = overlay[o - 1].1 {
                        let goOn = try ok.withUnsafeBytes { kb in
                            try v.withUnsafeBytes { vb in try body(UnsafeRawBufferPointer(rebasing: kb[subStart...]), vb) }
                        }
                        if !goOn { return }
                    }
                    continue
                }
            }
            guard engineValid else { return }
            let goOn = try body(UnsafeRawBufferPointer(rebasing: it.keyView[subStart...]), it.valueView)
            if !goOn { return }
            if reverse { try it.prev() } else { try it.next() }
        }
    }
}
