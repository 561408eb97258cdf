import Atomics
import KVBase

/// The memtables, version and last sequence as of one moment, published for lock-free reads
/// (``Database/readState``). Immutable.
final class ReadState: AtomicReference, Sendable {
    let mem: MemTable
    let imm: [MemTable]
    let version: Version
    let lastSequence: SequenceNumber
    let closed: Bool

    init(_ s: borrowing Database.State) {
        mem = s.mem
        imm = s.imm
        version = s.version
        lastSequence = s.lastSequence
        closed = s.closed
    }
}

extension Database {
    /// What a read pins: the memtables (and, with tables, the version) at one sequence.
    struct ReadView {
        let mem: MemTable
        let imm: [MemTable]
        let version: Version
        let sequence: SequenceNumber
    }

    func readView(_ snapshot: Snapshot?) throws(KVError) -> ReadView {
        let r = readState.load(ordering: .acquiring)
        if r.closed { throw .closed }
        return ReadView(mem: r.mem, imm: r.imm, version: r.version, sequence: snapshot?.sequence ?? r.lastSequence)
    }

    /// The value stored under `key`, or nil if there is none.
    ///
    /// - Parameter snapshot: read as of this snapshot instead of the latest state.
    public func get(_ key: [UInt8], snapshot: Snapshot? = nil) throws(KVError) -> [UInt8]? {
        try withBytes(key) { (k) throws(KVError) in try get(k, snapshot: snapshot) }
    }

    /// The value stored under a UTF-8 string key, or nil.
    public func get(_ key: String, snapshot: Snapshot? = nil) throws(KVError) -> [UInt8]? {
        try get(Array(key.utf8), snapshot: snapshot)
    }

    /// Point lookup of the key in `key`'s bytes: memtable, immutable memtables newest first,
    /// then the tables.
    package func get(_ key: UnsafeRawBufferPointer, snapshot: Snapshot? = nil) throws(KVError) -> [UInt8]? {
        let view = try readView(snapshot)
        // Start every first memory access of the lookup at once (the memtables' index slots,
        // the tables' filter lines), so their cache misses overlap instead of queueing.
        let hash = keyHash64(key)
        view.mem.prefetch(hash: hash)
        for m in view.imm { m.prefetch(hash: hash) }
        view.version.prefetchFilters(key, hash: hash)
        switch view.mem.get(key, hash: hash, snapshot: view.sequence) {
        case .found(let v): return Array(v)
        case .deleted: return nil
        case .notFound: break
        }
        for m in view.imm.reversed() {
            switch m.get(key, hash: hash, snapshot: view.sequence) {
            case .found(let v): return Array(v)
            case .deleted: return nil
            case .notFound: break
            }
        }
        // The row cache serves reads of the latest state only.
        let rowCache = snapshot == nil ? self.rowCache : nil
        var generation: UInt64 = 0
        if let rowCache {
            generation = rowCache.generation(of: key)
            if let v = rowCache.get(key) { return v }
        }
        switch try view.version.get(key, hash: hash, sequence: view.sequence, tables: tables) {
        case .found(let v):
            rowCache?.insert(key, v, ifGeneration: generation)
            return v
        case .deleted, .notFound: return nil
        }
    }

    /// Whether `key` has a value.
    public func contains(_ key: [UInt8], snapshot: Snapshot? = nil) throws -> Bool {
        try get(key, snapshot: snapshot) != nil
    }

    /// A cursor over the database as of `snapshot` (or now). Position it with a seek first.
    public func makeIterator(snapshot: Snapshot? = nil) throws(KVError) -> DBIterator {
        let view = try readView(snapshot)
        var children: [any InternalIterator] = [view.mem.makeIterator()]
        for m in view.imm.reversed() { children.append(m.makeIterator()) }
        children.append(contentsOf: try view.version.iterators(tables))
        return DBIterator(MergingIterator(children), sequence: view.sequence, snapshot: snapshot, pinned: view.version)
    }

    /// Streams the entries with `from <= key < to` in ascending order (descending with
    /// `reverse`). `nil` bounds are open. Entries are read lazily: the range is never
    /// materialised.
    ///
    /// Iteration errors (a corrupt block, a failed read) end the sequence early and are kept in
    /// ``Scan/error``; call ``Scan/check()`` after the loop, or use ``Scan/nextEntry()``,
    /// which throws.
    public func scan(from: [UInt8]? = nil, to: [UInt8]? = nil, reverse: Bool = false, snapshot: Snapshot? = nil) throws -> Scan {
        Scan(iterator: try makeIterator(snapshot: snapshot), lower: from, upper: to, reverse: reverse)
    }

    /// Streams the entries whose key starts with `prefix`, in order (or reversed).
    public func scan(prefix: [UInt8], reverse: Bool = false, snapshot: Snapshot? = nil) throws -> Scan {
        try scan(from: prefix, to: prefixSuccessor(prefix), reverse: reverse, snapshot: snapshot)
    }
}

/// The smallest key greater than every key starting with `prefix`, or nil if there is none
/// (the prefix is empty or all 0xFF).
public func prefixSuccessor(_ prefix: [UInt8]) -> [UInt8]? {
    var p = prefix
    while let last = p.last {
        if last < 0xFF {
            p[p.count - 1] = last + 1
            return p
        }
        p.removeLast()
    }
    return nil
}

/// A lazily evaluated range of a database; see ``Database/scan(from:to:reverse:snapshot:)``.
public final class Scan: Sequence, IteratorProtocol {
    private let iterator: DBIterator
    private let lower: [UInt8]?
    private let upper: [UInt8]?
    /// The inclusive lower bound (nil: open).
    public var lowerBound: [UInt8]? { lower }
    /// The exclusive upper bound (nil: open).
    public var upperBound: [UInt8]? { upper }
    private let reverse: Bool
    private var started = false
    private var finished = false
    /// The error that ended iteration early, if any.
    public private(set) var error: KVError?

    init(iterator: DBIterator, lower: [UInt8]?, upper: [UInt8]?, reverse: Bool) {
        self.iterator = iterator
        self.lower = lower
        self.upper = upper
        self.reverse = reverse
    }

    /// The next entry, or nil at the end of the range; throws what went wrong.
    public func nextEntry() throws -> (key: [UInt8], value: [UInt8])? {
        try advance()
    }

    func advance() throws(KVError) -> (key: [UInt8], value: [UInt8])? {
        if finished { return nil }
        if !started {
            started = true
            if reverse {
                if let upper { try iterator.seekBefore(upper) } else { try iterator.seekToLast() }
            } else {
                if let lower { try iterator.seek(lower) } else { try iterator.seekToFirst() }
            }
        } else if iterator.isValid {
            if reverse { try iterator.prev() } else { try iterator.next() }
        }
        guard iterator.isValid else {
            finished = true
            return nil
        }
        let k = iterator.keyView
        if reverse, let lower, lower.withUnsafeBytes({ compareBytes(k, $0) }) < 0 {
            finished = true
            return nil
        }
        if !reverse, let upper, upper.withUnsafeBytes({ compareBytes(k, $0) }) >= 0 {
            finished = true
            return nil
        }
        return (Array(k), Array(iterator.valueView))
    }

    /// `Sequence` conformance: ends early on error and records it in ``error``.
    public func next() -> (key: [UInt8], value: [UInt8])? {
        do {
            return try advance()
        } catch {
            self.error = error
            finished = true
            return nil
        }
    }

    /// Throws the error that ended iteration early, if any.
    public func check() throws {
        if let error { throw error }
    }
}
