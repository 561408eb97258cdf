import KVBase
import KVEngine
import KVLayout
import KVStore

/// The rows of some slots, copied from another node's records into a store through the
/// store's own write path (a cluster slot move, DESIGN.md "Slot moves"), so the store's index
/// entries, expiry entries and followers follow them. Only user rows are taken: the source's
/// index and expiry entries (and its metadata) are its own. Collections come as their
/// metadata row (written through the row path, typed) and their element records (written as
/// they are: their keys carry the collection's version).
///
/// Plain rows and deletions are written in batches of up to 1,000; a row with an expiry time
/// is written on its own (the batch before it first), so the order of the source holds.
public struct SlotRows {
    /// The store written.
    public let store: ShardedStore
    /// 16,384 flags: the slots whose rows are taken.
    public let slots: [Bool]
    private var batch = WriteBatch()
    private var elements = RoutedBatch()
    private var written = 0

    /// Copies rows of `slots` (a table of 16,384 flags) into `store`.
    public init(store: ShardedStore, slots: [Bool]) {
        precondition(slots.count == HashSlot.count, "SlotRows needs one flag per slot")
        self.store = store
        self.slots = slots
    }

    /// Writes the rows of the slots among snapshot records (engine key, engine value).
    /// Returns how many rows were written.
    public mutating func applySnapshot(_ records: [(key: [UInt8], value: [UInt8])]) throws -> Int {
        for (k, v) in records {
            try k.withUnsafeBytes { key in try v.withUnsafeBytes { value in try put(key, value) } }
        }
        try flush()
        return written
    }

    /// Applies the row puts and deletions of the slots in one encoded write group of the
    /// source (`from` names it in errors). Returns how many rows were written or deleted.
    ///
    /// A collection's change comes as its metadata row and element records in one group; they
    /// are written together through the store's update path (the elements staged with the
    /// row), so the target's hash indexes see the new fields and the old ones.
    public mutating func applyGroup(_ group: [UInt8], from: String) throws -> Int {
        guard group.count >= WriteBatch.headerSize else { throw KVError.invalidArgument("write group from \(from) too short") }
        var records: [(isPut: Bool, key: [UInt8], value: [UInt8])] = []
        try group.withUnsafeBytes { p in
            try WriteBatch.decode(p, file: "write group from \(from)", offset: 0) { (kind, key, value) throws(KVError) in
                records.append((kind == .value, Array(key), Array(value)))
            }
        }
        // Element records by the user key they belong to, for keys whose typed row is here.
        var typedRows = Set<[UInt8]>()
        for r in records where r.isPut && r.key.withUnsafeBytes({ EngineKey.kind($0) }) == .row {
            if r.value.withUnsafeBytes({ RowValue.type($0) }) != .string { typedRows.insert(r.key.withUnsafeBytes { EngineKey.decodeRow($0) }) }
        }
        var elementsOf: [[UInt8]: [(isPut: Bool, key: [UInt8], value: [UInt8])]] = [:]
        if !typedRows.isEmpty {
            for r in records {
                guard let (user, _, _) = r.key.withUnsafeBytes({ CollectionLayout.decodeElement($0) }), typedRows.contains(user) else { continue }
                elementsOf[user, default: []].append(r)
            }
        }
        for r in records {
            try r.key.withUnsafeBytes { key in
                try r.value.withUnsafeBytes { value in
                    if EngineKey.kind(key) == .reserved(EngineKey.elementTag), let (user, _, _) = CollectionLayout.decodeElement(key),
                       typedRows.contains(user) {
                        return  // written with its row
                    }
                    if r.isPut, EngineKey.kind(key) == .row, RowValue.type(value) != .string {
                        try putCollection(key, value, elements: elementsOf[EngineKey.decodeRow(key)] ?? [])
                    } else if r.isPut {
                        try put(key, value)
                    } else {
                        try delete(key)
                    }
                }
            }
        }
        try flush()
        return written
    }

    private mutating func put(_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws {
        if EngineKey.kind(key) == .reserved(EngineKey.elementTag) {
            guard let slot = EngineKey.slot(of: key), slots[slot] else { return }
            try flushRows()
            elements.put(key, value, slot: slot)
            written += 1
            if elements.count >= 1000 { try flush() }
            return
        }
        guard EngineKey.kind(key) == .row, slots[EngineKey.slot(ofRow: key)] else { return }
        let user = EngineKey.decodeRow(key)
        guard let parsed = RowValue.parse(value) else {
            throw KVError.corruption(file: "slot move", offset: 0, reason: "bad row value for key \(printable(user))")
        }
        let payload = Array(value[0..<parsed.payload])
        written += 1
        let type = RowValue.type(value)
        if type != .string {
            try flush()
            try store.update([user]) { u in u.setRow(0, StoredEntry(value: payload, expiresAt: parsed.expiresAt, type: type)) }
            return
        }
        try flushElements()
        if let expiresAt = parsed.expiresAt {
            try flush()
            try store.put(user, payload, expiresAt: expiresAt)
        } else {
            batch.put(user, payload)
            if batch.count >= 1000 { try flush() }
        }
    }

    /// Writes a collection's metadata row with its element records in one update.
    private mutating func putCollection(_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer,
                                        elements: [(isPut: Bool, key: [UInt8], value: [UInt8])]) throws {
        guard slots[EngineKey.slot(ofRow: key)] else { return }
        let user = EngineKey.decodeRow(key)
        guard let parsed = RowValue.parse(value) else {
            throw KVError.corruption(file: "slot move", offset: 0, reason: "bad row value for key \(printable(user))")
        }
        let row = StoredEntry(value: Array(value[0..<parsed.payload]), expiresAt: parsed.expiresAt, type: RowValue.type(value))
        try flush()
        try store.update([user]) { u in
            u.setRow(0, row)
            for e in elements {
                if e.isPut { u.putRecord(0, engineKey: e.key, value: e.value) } else { u.deleteRecord(0, engineKey: e.key) }
            }
        }
        written += 1 + elements.count
    }

    /// Writes the index entries of the hashes the snapshot brought (their rows came before
    /// their elements); call once every snapshot chunk is applied.
    public func finishSnapshot() throws {
        try store.indexCollections(inSlots: slots)
    }

    private mutating func delete(_ key: UnsafeRawBufferPointer) throws {
        if EngineKey.kind(key) == .reserved(EngineKey.elementTag) {
            guard let slot = EngineKey.slot(of: key), slots[slot] else { return }
            try flushRows()
            elements.delete(key, slot: slot)
            written += 1
            if elements.count >= 1000 { try flush() }
            return
        }
        guard EngineKey.kind(key) == .row, slots[EngineKey.slot(ofRow: key)] else { return }
        try flushElements()
        batch.delete(EngineKey.decodeRow(key))
        written += 1
        if batch.count >= 1000 { try flush() }
    }

    private mutating func flush() throws {
        try flushRows()
        try flushElements()
    }

    private mutating func flushRows() throws {
        guard !batch.isEmpty else { return }
        try store.write(batch)
        batch = WriteBatch()
    }

    private mutating func flushElements() throws {
        guard !elements.isEmpty else { return }
        try store.applyElementRecords(elements)
        elements = RoutedBatch()
    }

    /// Deletes every row of `slots` (16,384 flags) in `store`, in batches of 1,000; returns
    /// how many.
    public static func deleteRows(of slots: [Bool], in store: ShardedStore) throws -> Int {
        guard slots.contains(true) else { return 0 }
        let scan = try store.scan()
        var batch = WriteBatch()
        var deleted = 0
        while let (key, _) = try scan.nextEntry() {
            guard slots[HashSlot.slot(of: key)] else { continue }
            batch.delete(key)
            deleted += 1
            if batch.count >= 1000 {
                try store.write(batch)
                batch = WriteBatch()
            }
        }
        if !batch.isEmpty { try store.write(batch) }
        // The collections' elements too: a collection moved back later returns with the same
        // version, and left-over elements would come back with it.
        try store.deleteElementRecords(ofSlots: slots)
        return deleted
    }
}
