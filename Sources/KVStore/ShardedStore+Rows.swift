import KVBase
import KVEngine
import KVIndex
import KVLayout
import Synchronization

/// One row change of a store write: the new state of a user key, and its old state when it
/// was read under the key's lock (needed to remove old index entries and expiry entries).
struct RowWrite {
    var key: [UInt8]
    var slot: Int
    /// The new row; nil deletes it.
    var new: StoredEntry?
    /// The row as stored before (even if expired); nil when absent; not set when not read.
    var old: StoredEntry?
    var oldKnown: Bool
}

extension ShardedStore {
    /// The store's clock: wall-clock milliseconds since the Unix epoch (plus a test offset).
    /// Expiry times are compared with it.
    public var now: Int64 {
        let frozen = frozenClock.load(ordering: .relaxed)
        return frozen != 0 ? frozen : RowValue.wallClockMillis() &+ clockOffset.load(ordering: .relaxed)
    }

    /// Moves the store's clock by `millis` (tests of expiry).
    package func advanceClock(by millis: Int64) {
        if frozenClock.load(ordering: .relaxed) != 0 {
            frozenClock.add(millis, ordering: .relaxed)
        } else {
            clockOffset.add(millis, ordering: .relaxed)
        }
    }

    /// Stops the store's clock at `millis` (tests of expiry); ``advanceClock(by:)`` moves it.
    package func freezeClock(at millis: Int64) {
        frozenClock.store(millis, ordering: .relaxed)
    }

    /// The live row under `key`: its value and expiry time; nil when there is none or it has
    /// expired.
    public func getEntry(_ key: [UInt8], snapshot: StoreSnapshot? = nil) throws(KVError) -> StoredEntry? {
        try entry(key, snapshot: snapshot, now: now)
    }

    /// Stores `value` under `key`, expiring at `expiresAt` (milliseconds since the Unix epoch;
    /// nil for never). An expiry time in the past stores a row that is already invisible.
    public func put(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64?, durability: Durability? = nil) throws(KVError) {
        let slot = HashSlot.slot(of: key)
        try keyLocks.withLock(slot: slot) { () throws(KVError) in
            let indexed = indexCatalog.mayIndex(key)
            if expiresAt == nil && !indexed {
                // The hot path: one record, no read.
                var batch = RoutedBatch(reservingCapacity: 1)
                batch.put(EngineKey.encode(key), value, suffix: CollectionOfOne(RowValue.plain), slot: slot)
                try apply(batch, durability: durability)
                return
            }
            let old = indexed ? try rawEntry(key, snapshot: nil) : nil
            let w = RowWrite(key: key, slot: slot, new: StoredEntry(value: value, expiresAt: expiresAt), old: old, oldKnown: indexed)
            try commitRowsLocked([w], durability: durability)
        }
    }

    /// Atomically reads and rewrites the rows of `keys`.
    ///
    /// Holds the write locks of the keys while `body` runs, so no other write to them can
    /// come between the read and the write. `body` receives the live rows (nil for absent or
    /// expired keys), in the order of `keys`, and may change any of them (nil deletes); the
    /// rows it changed are then written in one batch (atomic when the keys share a shard,
    /// as for ``write(_:durability:)``). What `body` returns is returned; if it throws, nothing
    /// is written. Keep `body` short: it runs with the locks held.
    ///
    /// - Parameter keys: distinct keys.
    /// - Throws: ``KVError/invalidArgument(_:)`` for repeated keys, storage errors, or what
    ///   `body` throws.
    public func modify<R>(_ keys: [[UInt8]], durability: Durability? = nil, _ body: (inout [StoredEntry?]) throws -> R) throws -> R {
        if keys.count > 1 && Set(keys).count != keys.count {
            throw KVError.invalidArgument("modify: the keys must be distinct")
        }
        let slots = keys.map { HashSlot.slot(of: $0) }
        return try keyLocks.withLocks(slots: slots) { () throws -> R in
            let now = self.now
            var olds: [StoredEntry?] = []
            olds.reserveCapacity(keys.count)
            for key in keys { olds.append(try rawEntry(key, snapshot: nil)) }
            var rows = olds.map { e -> StoredEntry? in
                guard let e, !RowValue.isExpired(e.expiresAt, now: now) else { return nil }
                return e
            }
            let before = rows
            let result = try body(&rows)
            var writes: [RowWrite] = []
            for i in keys.indices where rows[i] != before[i] {
                writes.append(RowWrite(key: keys[i], slot: slots[i], new: rows[i], old: olds[i], oldKnown: true))
            }
            if !writes.isEmpty { try commitRowsLocked(writes, durability: durability) }
            return result
        }
    }

    /// Deletes rows whose expiry time has passed, up to `limit` of them across all shards, by
    /// walking each shard's expiry entries in time order. Returns the number of rows deleted.
    /// Expired rows are invisible to reads anyway; this reclaims their space (as does the
    /// compaction filter) and removes their index entries.
    ///
    /// - Parameter removed: called with the key of every row deleted, after its deletion
    ///   committed (the server's `expired` keyspace events).
    @discardableResult
    public func removeExpired(limit: Int = 1000, removed: (([UInt8]) -> Void)? = nil) throws(KVError) -> Int {
        try removeExpiredRows(limit: limit, removed: removed)
    }

    // MARK: internals

    /// Deletes `key`'s row (and its index entries) under the key's lock.
    func deleteRow(_ key: [UInt8], durability: Durability?) throws(KVError) {
        let slot = HashSlot.slot(of: key)
        try keyLocks.withLock(slot: slot) { () throws(KVError) in
            let known = indexCatalog.mayIndex(key)
            let old = known ? try rawEntry(key, snapshot: nil) : nil
            try commitRowsLocked([RowWrite(key: key, slot: slot, new: nil, old: old, oldKnown: known)], durability: durability)
        }
    }

    /// Applies a user batch: puts store rows without expiry; the last operation on a key wins.
    func writeRows(_ batch: WriteBatch, durability: Durability?) throws(KVError) {
        // Distinct keys in first-seen order, each with its last operation.
        var distinct = DistinctKeys(capacity: batch.count)
        var last: [StoredEntry?] = []
        try batch.forEach { kind, key, value in
            let entry = kind == .value ? StoredEntry(value: Array(value)) : nil
            let (i, inserted) = distinct.position(of: key)
            if inserted { last.append(entry) } else { last[i] = entry }
        }
        let order = distinct.keys
        let slots = order.map { HashSlot.slot(of: $0) }
        try keyLocks.withLocks(slots: slots) { () throws(KVError) in
            var writes: [RowWrite] = []
            writes.reserveCapacity(order.count)
            for (i, key) in order.enumerated() {
                let known = indexCatalog.mayIndex(key)
                let old = known ? try rawEntry(key, snapshot: nil) : nil
                writes.append(RowWrite(key: key, slot: slots[i], new: last[i], old: old, oldKnown: known))
            }
            try commitRowsLocked(writes, durability: durability)
        }
    }

    /// Builds the engine batch of `writes` (rows, expiry entries, index entries) and applies
    /// it. The caller holds the key locks of every write.
    ///
    /// `extra` (collection elements) goes in the same batch; `staged` holds those elements by
    /// engine key, so hash indexes read a new row's fields from them.
    func commitRowsLocked(_ writes: [RowWrite], durability: Durability?, extraDeletes: [(key: [UInt8], slot: Int)] = [],
                          extra: RoutedBatch? = nil, staged: [[UInt8]: [UInt8]?] = [:]) throws(KVError) {
        var batch = RoutedBatch(reservingCapacity: writes.count * 2)
        var deltas = IndexDeltas()
        for w in writes {
            let ek = EngineKey.encode(w.key)
            if let new = w.new {
                var trailer: [UInt8] = []
                RowValue.appendTrailer(new.expiresAt, type: new.type, to: &trailer)
                batch.put(ek, new.value, suffix: trailer, slot: w.slot)
                if let t = new.expiresAt {
                    var entry: [UInt8] = []
                    RowValue.appendTrailer(t, to: &entry)
                    batch.put(EngineKey.expiryEntry(w.key, at: t), entry, slot: w.slot)
                }
            } else {
                batch.delete(ek, slot: w.slot)
            }
            if w.oldKnown, let t = w.old?.expiresAt, t != w.new?.expiresAt {
                batch.delete(EngineKey.expiryEntry(w.key, at: t), slot: w.slot)
            }
            if w.oldKnown && !indexCatalog.set.all.isEmpty {
                let old = try indexedRow(w.key, w.old, slot: w.slot, staged: nil)
                let new = try indexedRow(w.key, w.new, slot: w.slot, staged: staged)
                indexCatalog.appendUpdates(key: w.key, slot: w.slot, old: old, new: new, into: &batch, deltas: &deltas)
            }
        }
        for d in extraDeletes {
            batch.delete(d.key, slot: d.slot)
        }
        if let extra { batch.append(extra) }
        if batch.isEmpty { return }
        try apply(batch, durability: durability)
        deltas.apply()
    }

    /// A row as the indexes read it: a string row's value, or the fields of a hash row that
    /// the hash indexes covering `key` name (read from `staged`, this write's elements, for a
    /// new row, else from the shard; nil `staged`: the row as stored before this write).
    func indexedRow(_ key: [UInt8], _ e: StoredEntry?, slot: Int, staged: [[UInt8]: [UInt8]?]?) throws(KVError) -> IndexedRow? {
        guard let e else { return nil }
        switch e.type {
        case .string:
            return IndexedRow(expiresAt: e.expiresAt, value: e.value)
        case .hash:
            let fields = indexCatalog.hashFields(covering: key)
            if fields.isEmpty { return IndexedRow(expiresAt: e.expiresAt) }
            let meta = try CollectionMeta.decode(e.value, type: .hash, key: key)
            let prefix = CollectionLayout.elementPrefix(key, version: meta.version)
            var values: [String: [UInt8]] = [:]
            for f in fields {
                let k = CollectionLayout.elementKey(prefix, kind: CollectionLayout.memberKind, Array(f.utf8))
                let v: [UInt8]?
                if let s = staged?[k] { v = s } else { v = try engineValue(k, slot: slot) }
                if let v { values[f] = v }
            }
            return IndexedRow(expiresAt: e.expiresAt, fields: values)
        default:
            return IndexedRow(expiresAt: e.expiresAt)
        }
    }

    /// The stored row of `key` (expired or not), or nil.
    func rawEntry(_ key: [UInt8], snapshot: StoreSnapshot?) throws(KVError) -> StoredEntry? {
        guard let raw = try rawGet(key, snapshot: snapshot) else { return nil }
        return try RowValue.decode(raw, key: key)
    }

    /// The live row of `key` at `now`, or nil.
    /// `now` is read only for a row that can expire (most have no expiry time).
    func entry(_ key: [UInt8], snapshot: StoreSnapshot?, now: @autoclosure () -> Int64) throws(KVError) -> StoredEntry? {
        guard let e = try rawEntry(key, snapshot: snapshot) else { return nil }
        if e.expiresAt != nil && RowValue.isExpired(e.expiresAt, now: now()) { return nil }
        return e
    }

    func removeExpiredRows(limit: Int, removed report: (([UInt8]) -> Void)? = nil) throws(KVError) -> Int {
        let routing = try currentRouting()
        let now = self.now
        var removed = 0
        var budget = limit
        for shard in routing.shards where budget > 0 {
            // Collect due entries first, then apply them under the key locks.
            var due: [(user: [UInt8], at: Int64, entry: [UInt8])] = []
            let it = try shard.db.makeIterator()
            let bound = EngineKey.expiryBound(now)
            try it.seek(EngineKey.expiryStart)
            while it.isValid && due.count < budget {
                let k = it.keyView
                if bound.withUnsafeBytes({ compareBytes(k, $0) }) >= 0 { break }
                if let (user, t) = EngineKey.decodeExpiryEntry(k), Int(routing.owners[HashSlot.slot(of: user)]) == shard.id {
                    due.append((user, t, Array(k)))
                }
                try it.next()
            }
            budget -= due.count
            for d in due {
                let slot = HashSlot.slot(of: d.user)
                try keyLocks.withLock(slot: slot) { () throws(KVError) in
                    let old = try rawEntry(d.user, snapshot: nil)
                    if let old, let t = old.expiresAt, t <= now {
                        // Deleting the row also deletes its current expiry entry.
                        var extra: [(key: [UInt8], slot: Int)] = []
                        if t != d.at { extra.append((d.entry, slot)) }
                        try commitRowsLocked([RowWrite(key: d.user, slot: slot, new: nil, old: old, oldKnown: true)], durability: nil, extraDeletes: extra)
                        removed += 1
                        report?(d.user)
                    } else if old?.expiresAt != d.at {
                        // A stale entry: the row was rewritten or deleted since.
                        try commitRowsLocked([], durability: nil, extraDeletes: [(d.entry, slot)])
                    }
                }
            }
        }
        return removed
    }

    /// The compaction filter of a store's shards: drops rows, index entries and expiry entries
    /// whose envelope says they expired (by the wall clock), never metadata. Collection
    /// elements have no envelope: ``orphanFilter(_:_:_:)`` decides for them.
    static func expiryFilter(_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Bool {
        switch EngineKey.kind(key) {
        case .reserved(EngineKey.metaTag), .reserved(EngineKey.elementTag): return false
        default: break
        }
        guard let (_, t) = RowValue.parse(value), let t else { return false }
        return t <= RowValue.wallClockMillis()
    }
}

extension ShardedStore {
    /// The compaction filter of collection elements: drops an element whose collection is
    /// gone — its metadata row absent, expired (wall clock), of another type or of another
    /// version — as of the oldest snapshot (`lookup`); what is dead there stays dead, since
    /// versions are never reused. Consecutive elements of one collection share one lookup
    /// (`last`). A failed lookup keeps the element.
    static func orphanFilter(_ key: UnsafeRawBufferPointer, _ lookup: (UnsafeRawBufferPointer) throws(KVError) -> [UInt8]?,
                             _ last: OrphanVerdict) -> Bool {
        guard EngineKey.kind(key) == .reserved(EngineKey.elementTag),
              let (user, version, kindAt) = CollectionLayout.decodeElement(key) else { return false }
        let prefix = UnsafeRawBufferPointer(rebasing: key[..<kindAt])
        if let known = last.value.withLock({ v -> Bool? in
            guard let v, v.prefix.count == prefix.count, v.prefix.elementsEqual(prefix) else { return nil }
            return v.dead
        }) {
            return known
        }
        let dead: Bool
        do {
            if let raw = try EngineKey.withEncoded(user, { (k) throws(KVError) in try lookup(k) }),
               let (n, t) = raw.withUnsafeBytes({ RowValue.parse($0) }) {
                let type = raw.withUnsafeBytes { RowValue.type($0) }
                if type == .string || RowValue.isExpired(t, now: RowValue.wallClockMillis()) {
                    dead = true
                } else if let meta = try? CollectionMeta.decode(Array(raw[..<n]), type: type, key: user) {
                    dead = meta.version != version
                } else {
                    return false
                }
            } else {
                dead = true
            }
        } catch {
            return false
        }
        last.value.withLock { $0 = (Array(prefix), dead) }
        return dead
    }
}

/// The last verdict of ``ShardedStore/orphanFilter(_:_:_:)``: the element prefix (key and
/// version) it was for and whether that collection is dead.
final class OrphanVerdict: Sendable {
    let value = Mutex<(prefix: [UInt8], dead: Bool)?>(nil)
}
