import Atomics
import KVBase
import KVTable

/// An immutable snapshot of which table files make up each level.
///
/// Invariants: level 0 files may overlap and are ordered newest first (descending file
/// number, which is also descending age of their data); files of levels 1 and deeper do not
/// overlap and are ordered by smallest key. Readers and iterators hold a `Version` to keep
/// its files from being deleted.
final class Version: Sendable {
    let files: [[FileMetaData]]
    /// Versions with at most this many files keep their files' readers (see `readers`).
    static let pinnedReaderLimit = 128
    /// The reader of each file (levels in order, flattened; `levelStarts[level]` is a level's
    /// first slot), stored on a point read's first probe of the file, so later probes skip
    /// the table cache (a lock, a hash lookup and an LRU move per probe, on lines every event
    /// loop writes). Empty for versions of more than ``pinnedReaderLimit`` files, which go
    /// through the cache only, so `maxOpenFiles` still bounds what big databases keep open.
    /// A version's files are never deleted while it lives, so the readers stay valid.
    ///
    /// Each slot holds a retained `TableReader` as a raw pointer (0 until stored, set once by
    /// compare-and-exchange, released in `deinit`). A probe uses the reader through the
    /// pointer without retaining it (the version, which the caller holds, keeps it alive): a
    /// retain and a release per probed table, on objects both event loops use, moved their
    /// reference counts between the cores on every read.
    nonisolated(unsafe) private let readers: UnsafeMutablePointer<UnsafeAtomic<UInt>.Storage>
    private let readerCount: Int
    private let levelStarts: [Int]

    init(files: [[FileMetaData]]) {
        self.files = files
        var starts: [Int] = []
        var total = 0
        for level in files {
            starts.append(total)
            total += level.count
        }
        levelStarts = starts
        readerCount = total <= Self.pinnedReaderLimit ? total : 0
        readers = .allocate(capacity: max(readerCount, 1))
        readers.initialize(repeating: UnsafeAtomic<UInt>.Storage(0), count: max(readerCount, 1))
    }

    deinit {
        for i in 0..<readerCount {
            let bits = UnsafeAtomic<UInt>(at: readers + i).load(ordering: .acquiring)
            if let p = UnsafeRawPointer(bitPattern: bits) { Unmanaged<TableReader>.fromOpaque(p).release() }
        }
        readers.deinitialize(count: max(readerCount, 1))
        readers.deallocate()
    }

    /// The reader stored in `slot`, unretained; nil before the first probe stored one.
    @inline(__always)
    private func pinnedReader(_ slot: Int) -> Unmanaged<TableReader>? {
        let bits = UnsafeAtomic<UInt>(at: readers + slot).load(ordering: .acquiring)
        guard let p = UnsafeRawPointer(bitPattern: bits) else { return nil }
        return Unmanaged.fromOpaque(p)
    }

    /// Stores `reader` in `slot` unless another thread stored one first; returns the one kept.
    private func pin(_ reader: TableReader, slot: Int) -> Unmanaged<TableReader> {
        let mine = Unmanaged.passRetained(reader)
        let bits = UInt(bitPattern: mine.toOpaque())
        let (exchanged, original) = UnsafeAtomic<UInt>(at: readers + slot)
            .compareExchange(expected: 0, desired: bits, ordering: .acquiringAndReleasing)
        if exchanged { return mine }
        mine.release()
        return Unmanaged.fromOpaque(UnsafeRawPointer(bitPattern: original)!)
    }

    static let empty = Version(files: Array(repeating: [], count: numLevels))

    /// Number of files at `level`.
    func fileCount(_ level: Int) -> Int { files[level].count }

    /// Total bytes at `level`.
    func bytes(_ level: Int) -> UInt64 { files[level].reduce(0) { $0 + $1.size } }

    /// Every file number in this version.
    var allFileNumbers: Set<UInt64> {
        var s = Set<UInt64>()
        for level in files { for f in level { s.insert(f.number) } }
        return s
    }

    /// The result of a point lookup in the tables.
    enum Lookup {
        case notFound
        case deleted
        case found([UInt8])
    }

    /// Looks `userKey` up as of `sequence`: level 0 newest first, then one file per deeper
    /// level. `hash` is the key's ``keyHash64(_:)`` (computed here when nil).
    func get(_ userKey: UnsafeRawBufferPointer, hash: UInt64? = nil, sequence: SequenceNumber, tables: TableCache) throws(KVError) -> Lookup {
        let hash = hash ?? keyHash64(userKey)
        // The lookup key (user key and trailer) in temporary memory (the stack unless long).
        return try withUnsafeTemporaryAllocation(byteCount: userKey.count + 8, alignment: 8) { (buffer) throws(KVError) -> Lookup in
            if let base = userKey.baseAddress, userKey.count > 0 {
                buffer.baseAddress.unsafelyUnwrapped.copyMemory(from: base, byteCount: userKey.count)
            }
            buffer.storeBytes(of: packTrailer(sequence, .value).littleEndian, toByteOffset: userKey.count, as: UInt64.self)
            return try get(userKey, hash: hash, lookup: UnsafeRawBufferPointer(buffer), tables: tables)
        }
    }

    /// Starts loading the bloom-filter lines a ``get(_:hash:sequence:tables:)`` of
    /// `userKey` would probe, in every table that may hold the key and whose reader this
    /// version already keeps, so that the probes (after the memtables') find them in cache
    /// instead of waiting for memory one after the other. Opens nothing and reads no file.
    func prefetchFilters(_ userKey: UnsafeRawBufferPointer, hash: UInt64) {
        guard readerCount > 0 else { return }
        for (i, f) in files[0].enumerated() where Self.userRangeContains(f, userKey) {
            pinnedReader(i)?._withUnsafeGuaranteedRef { $0.prefetchFilter(hash: hash) }
        }
        for levelNumber in 1..<numLevels {
            let level = files[levelNumber]
            if level.isEmpty { continue }
            let lo = Self.firstFile(in: level, largestIsBefore: { l in compareBytes(InternalKey.userKey(l), userKey) < 0 })
            guard lo < level.count else { continue }
            pinnedReader(levelStarts[levelNumber] + lo)?._withUnsafeGuaranteedRef { $0.prefetchFilter(hash: hash) }
        }
    }

    private func get(_ userKey: UnsafeRawBufferPointer, hash: UInt64, lookup: UnsafeRawBufferPointer, tables: TableCache) throws(KVError) -> Lookup {
        for (i, f) in files[0].enumerated() where Self.userRangeContains(f, userKey) {
            let r = try probe(f, slot: i, userKey, hash, lookup, tables)
            if case .notFound = r { continue }
            return r
        }
        for levelNumber in 1..<numLevels {
            let level = files[levelNumber]
            if level.isEmpty { continue }
            let lo = Self.firstFile(in: level, largestIsBefore: { l in InternalKey.compare(l, lookup) < 0 })
            guard lo < level.count else { continue }
            let f = level[lo]
            guard f.smallest.withUnsafeBytes({ compareBytes(InternalKey.userKey($0), userKey) }) <= 0 else { continue }
            let r = try probe(f, slot: levelStarts[levelNumber] + lo, userKey, hash, lookup, tables)
            if case .notFound = r { continue }
            return r
        }
        return .notFound
    }

    /// Probes `f`, the file in `slot` of ``readers``: through the pinned reader, unretained,
    /// when the version keeps one (storing it on the first probe), else through the table cache.
    private func probe(_ f: FileMetaData, slot: Int, _ userKey: UnsafeRawBufferPointer, _ hash: UInt64,
                       _ lookup: UnsafeRawBufferPointer, _ tables: TableCache) throws(KVError) -> Lookup {
        guard slot < readerCount else {
            return try probe(reader: try tables.reader(f.number), userKey, hash, lookup, tables)
        }
        let pinned: Unmanaged<TableReader>
        if let p = pinnedReader(slot) {
            pinned = p
        } else {
            pinned = pin(try tables.reader(f.number), slot: slot)
        }
        return try pinned._withUnsafeGuaranteedRef { reader in
            Result { () throws(KVError) in try probe(reader: reader, userKey, hash, lookup, tables) }
        }.get()
    }

    @inline(__always)
    private func probe(reader: TableReader, _ userKey: UnsafeRawBufferPointer, _ hash: UInt64,
                       _ lookup: UnsafeRawBufferPointer, _ tables: TableCache) throws(KVError) -> Lookup {
        tables.bloomChecked.add()
        if !reader.mayContain(userKey: userKey, hash: hash) {
            tables.bloomUseful.add()
            return .notFound
        }
        // Only the value of a matching entry is copied; the filter was asked above.
        let r = try reader.get(lookup, filterChecked: true) { k, v -> Lookup in
            guard k.count >= 8, compareBytes(InternalKey.userKey(k), userKey) == 0 else { return .notFound }
            return InternalKey.kind(k) == .value ? .found(Array(v)) : .deleted
        }
        return r ?? .notFound
    }

    /// Index of the first file of a sorted, non-overlapping level whose largest key is not
    /// before the target (`isBefore` gets a file's largest internal key); `level.count` when
    /// there is none.
    @inline(__always)
    static func firstFile(in level: [FileMetaData], largestIsBefore isBefore: (UnsafeRawBufferPointer) -> Bool) -> Int {
        var lo = 0
        var hi = level.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if level[mid].largest.withUnsafeBytes(isBefore) {
                lo = mid + 1
            } else {
                hi = mid
            }
        }
        return lo
    }

    static func userRangeContains(_ f: FileMetaData, _ userKey: UnsafeRawBufferPointer) -> Bool {
        f.smallest.withUnsafeBytes { s in f.largest.withUnsafeBytes { l in
            compareBytes(InternalKey.userKey(s), userKey) <= 0 && compareBytes(userKey, InternalKey.userKey(l)) <= 0
        } }
    }

    /// Iterators over every table: one per level-0 file, one concatenating iterator per
    /// deeper level.
    func iterators(_ tables: TableCache) throws(KVError) -> [any InternalIterator] {
        var out: [any InternalIterator] = []
        for f in files[0] { out.append(try tables.reader(f.number).makeIterator()) }
        for level in 1..<numLevels where !files[level].isEmpty {
            out.append(LevelIterator(files: files[level], tables: tables))
        }
        return out
    }

    /// Files of `level` whose user-key range intersects [smallest, largest] (user keys; nil = open).
    func overlapping(_ level: Int, _ smallest: [UInt8]?, _ largest: [UInt8]?) -> [FileMetaData] {
        files[level].filter { f in
            let fs = f.smallest.withUnsafeBytes { Array(InternalKey.userKey($0)) }
            let fl = f.largest.withUnsafeBytes { Array(InternalKey.userKey($0)) }
            if let smallest, compareBytes(fl, smallest) < 0 { return false }
            if let largest, compareBytes(fs, largest) > 0 { return false }
            return true
        }
    }
}

/// Concatenates the tables of one sorted, non-overlapping level, opening each lazily.
final class LevelIterator: InternalIterator {
    private let files: [FileMetaData]
    private let tables: TableCache
    private let fillCache: Bool
    // Unchecked exclusivity: one thread uses an iterator at a time and no method re-enters.
    @exclusivity(unchecked)
    private var index = -1
    /// Owns the current table's iterator; `current` is nil or refers to that same object
    /// unretained, so the calls on every step do not retain and release it.
    private var currentOwner: TwoLevelIterator?
    @exclusivity(unchecked)
    private var current: Unmanaged<TwoLevelIterator>?

    /// - Parameter fillCache: whether blocks read are added to the block cache (compaction
    ///   passes false so one pass over the data does not evict the working set).
    init(files: [FileMetaData], tables: TableCache, fillCache: Bool = true) {
        self.files = files
        self.tables = tables
        self.fillCache = fillCache
    }

    var isValid: Bool { current?._withUnsafeGuaranteedRef { $0.isValid } ?? false }
    var key: UnsafeRawBufferPointer { current!._withUnsafeGuaranteedRef { $0.key } }
    var value: UnsafeRawBufferPointer { current!._withUnsafeGuaranteedRef { $0.value } }

    /// Runs `body` on the current table's iterator (which must exist) without retaining it.
    @inline(__always)
    private func onCurrent(_ body: (TwoLevelIterator) throws(KVError) -> Void) throws(KVError) {
        try current!._withUnsafeGuaranteedRef { c in Result { () throws(KVError) in try body(c) } }.get()
    }

    private func open(_ i: Int) throws(KVError) {
        if i == index, current != nil { return }
        index = i
        if i < 0 || i >= files.count {
            currentOwner = nil
            current = nil
            return
        }
        let it = try tables.reader(files[i].number).makeTableIterator(fillCache: fillCache)
        currentOwner = it
        current = Unmanaged.passUnretained(it)
    }

    func seekToFirst() throws(KVError) {
        try open(0)
        if current != nil { try onCurrent { c throws(KVError) in try c.seekToFirst() } }
        try skipForward()
    }

    func seekToLast() throws(KVError) {
        try open(files.count - 1)
        if current != nil { try onCurrent { c throws(KVError) in try c.seekToLast() } }
        try skipBackward()
    }

    func seek(_ target: UnsafeRawBufferPointer) throws(KVError) {
        var lo = 0
        var hi = files.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if files[mid].largest.withUnsafeBytes({ InternalKey.compare($0, target) }) < 0 {
                lo = mid + 1
            } else {
                hi = mid
            }
        }
        try open(lo)
        if current != nil { try onCurrent { c throws(KVError) in try c.seek(target) } }
        try skipForward()
    }

    func next() throws(KVError) {
        try onCurrent { c throws(KVError) in try c.next() }
        try skipForward()
    }

    func prev() throws(KVError) {
        try onCurrent { c throws(KVError) in try c.prev() }
        try skipBackward()
    }

    private func skipForward() throws(KVError) {
        while current != nil && !isValid {
            if index + 1 >= files.count {
                current = nil
                index = files.count
                return
            }
            try open(index + 1)
            try onCurrent { c throws(KVError) in try c.seekToFirst() }
        }
    }

    private func skipBackward() throws(KVError) {
        while current != nil && !isValid {
            if index - 1 < 0 {
                current = nil
                index = -1
                return
            }
            try open(index - 1)
            try onCurrent { c throws(KVError) in try c.seekToLast() }
        }
    }
}
