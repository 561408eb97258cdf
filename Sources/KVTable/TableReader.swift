import KVBase
import KVCache
import KVFileSystem
import Synchronization

/// Identifies a data block in a block cache: the table's file number and the block's offset.
public struct BlockCacheKey: Hashable, Sendable {
    /// The table file's number (unique per database for the file's lifetime).
    public var fileNumber: UInt64
    /// Offset of the block in the file.
    public var blockOffset: UInt64

    /// The key of the block at `blockOffset` in table file `fileNumber`.
    public init(fileNumber: UInt64, blockOffset: UInt64) {
        self.fileNumber = fileNumber
        self.blockOffset = blockOffset
    }

    /// Feeds one mixed word to the hasher (half the hashing work of two fields).
    @inlinable
    public func hash(into hasher: inout Hasher) {
        hasher.combine(fileNumber &* 0x9E37_79B9_7F4A_7C15 ^ blockOffset)
    }
}

/// Counters of one ``TableReader``.
public struct TableReaderStatistics: Sendable, Equatable {
    /// ``TableReader/get(_:_:)`` calls that consulted the bloom filter.
    public var bloomChecks: Int = 0
    /// Of those, the calls the filter answered "absent" without reading any data block.
    public var bloomUseful: Int = 0
    /// Data blocks read from the file (block cache misses, or every read without a cache).
    public var blockReads: Int = 0

    /// Statistics with the given values (all zero by default).
    public init(bloomChecks: Int = 0, bloomUseful: Int = 0, blockReads: Int = 0) {
        self.bloomChecks = bloomChecks
        self.bloomUseful = bloomUseful
        self.blockReads = blockReads
    }
}

/// Reads an SSTable written by ``TableBuilder``.
///
/// Opening reads and checks the footer, the metaindex, the properties, the bloom filter and
/// the index block, and keeps the last three in memory; data blocks are read on demand,
/// through the block cache when one is given. Every block read checks the block's CRC, and
/// any malformed byte surfaces as ``KVError/corruption(file:offset:reason:)`` naming the file
/// and the block's offset, never as wrong data or a crash.
///
/// Thread safety: immutable after ``open(file:fileNumber:options:blockCache:)``; every method
/// may be called from many threads at once (iterators themselves are single-threaded).
/// Iterators keep the reader alive.
public final class TableReader: Sendable {
    /// The number the table's blocks are cached under.
    public let fileNumber: UInt64
    /// What the table holds.
    public let properties: TableProperties
    let file: any ReadableFile
    let keyOrder: KeyOrder
    let blockCache: ShardedLRUCache<BlockCacheKey, Block>?
    let indexBlock: Block
    /// The index keys as numbers for point lookups (nil: binary search of the block).
    let indexSearch: IndexSearch?
    let filter: BloomFilter?
    let metaindexHandle: BlockHandle
    /// End of the data blocks (start of the first metadata block).
    let dataEnd: UInt64
    /// End of all blocks (start of the footer).
    let blocksEnd: UInt64
    private let bloomChecks = StripedCounter()
    private let bloomUseful = StripedCounter()
    private let blockReads = StripedCounter()

    private init(
        fileNumber: UInt64, properties: TableProperties, file: any ReadableFile, keyOrder: KeyOrder,
        blockCache: ShardedLRUCache<BlockCacheKey, Block>?, indexBlock: Block, indexSearch: IndexSearch?,
        filter: BloomFilter?, metaindexHandle: BlockHandle, dataEnd: UInt64, blocksEnd: UInt64
    ) {
        self.fileNumber = fileNumber
        self.properties = properties
        self.file = file
        self.keyOrder = keyOrder
        self.blockCache = blockCache
        self.indexBlock = indexBlock
        self.indexSearch = indexSearch
        self.filter = filter
        self.metaindexHandle = metaindexHandle
        self.dataEnd = dataEnd
        self.blocksEnd = blocksEnd
    }

    /// Opens a table.
    ///
    /// - Parameters:
    ///   - file: The table file.
    ///   - fileNumber: The number data blocks are cached under; unique among the tables that
    ///     share `blockCache`.
    ///   - options: Only ``TableOptions/keyOrder`` matters; it must match the order the table
    ///     was written with.
    ///   - blockCache: Where data blocks are cached, or nil to read them from the file each
    ///     time.
    /// - Throws: ``KVError/corruption(file:offset:reason:)`` for a short file, a bad magic
    ///   number, a footer or block checksum mismatch or any malformed metadata;
    ///   ``KVError/unsupportedFormat(file:version:)`` for another format version;
    ///   ``KVError/invalidArgument(_:)`` when the key order differs; I/O errors from reads.
    public static func open(
        file: any ReadableFile, fileNumber: UInt64, options: TableOptions,
        blockCache: ShardedLRUCache<BlockCacheKey, Block>?
    ) throws(KVError) -> TableReader {
        let path = file.path
        let size = file.size
        let footerSize = UInt64(TableFormat.footerSize)
        guard size >= footerSize else {
            throw .corruption(file: path, offset: 0, reason: "file of \(size) bytes is too short to be a table")
        }
        let blocksEnd = size - footerSize
        let footerBytes = try file.readExactly(at: blocksEnd, count: TableFormat.footerSize)
        let footer = try withBytes(footerBytes) { (b) throws(KVError) in
            try Footer.decode(b, file: path, offset: blocksEnd)
        }
        func read(_ handle: BlockHandle) throws(KVError) -> Block {
            try Block.make(owning: readBlockContents(file, handle, limit: blocksEnd), file: path, offset: handle.offset)
        }
        // Metaindex: name -> handle.
        let meta = try read(footer.metaindex)
        var filterHandle: BlockHandle?
        var propertiesHandle: BlockHandle?
        var cursor = BlockCursor(block: meta, order: .bytewise)
        try cursor.seekToFirst()
        while cursor.isValid {
            let name = String(decoding: cursor.key, as: UTF8.self)
            if name == MetaIndex.filter || name == MetaIndex.properties {
                guard let handle = BlockHandle.decodeExactly(cursor.value) else {
                    throw .corruption(file: path, offset: footer.metaindex.offset, reason: "malformed handle for \(name) in metaindex")
                }
                if name == MetaIndex.filter { filterHandle = handle } else { propertiesHandle = handle }
            }
            try cursor.next()
        }
        guard let propertiesHandle else {
            throw .corruption(file: path, offset: footer.metaindex.offset, reason: "metaindex has no properties entry")
        }
        let properties = try TableProperties.decode(read(propertiesHandle), fileSize: size)
        guard properties.keyOrder == options.keyOrder else {
            throw .invalidArgument("table \(path) was written with \(properties.keyOrder) key order, opened with \(options.keyOrder)")
        }
        var filter: BloomFilter?
        if let filterHandle {
            let contents = try readBlockContents(file, filterHandle, limit: blocksEnd)
            filter = BloomFilter(bytes: Array(UnsafeRawBufferPointer(start: contents.pointer, count: contents.size)))
            contents.pointer.deallocate()
        }
        let index = try read(footer.index)
        return TableReader(
            fileNumber: fileNumber, properties: properties, file: file, keyOrder: options.keyOrder,
            blockCache: blockCache, indexBlock: index, indexSearch: try IndexSearch(index: index, order: options.keyOrder),
            filter: filter, metaindexHandle: footer.metaindex,
            dataEnd: filterHandle?.offset ?? propertiesHandle.offset, blocksEnd: blocksEnd)
    }

    /// The table file's path.
    public var path: String { file.path }
    /// First key of the table (empty for an empty table).
    public var smallestKey: [UInt8] { properties.smallestKey }
    /// Last key of the table (empty for an empty table).
    public var largestKey: [UInt8] { properties.largestKey }

    /// Bloom and block-read counters since open.
    public var statistics: TableReaderStatistics {
        TableReaderStatistics(
            bloomChecks: bloomChecks.value,
            bloomUseful: bloomUseful.value,
            blockReads: blockReads.value)
    }

    // MARK: blocks

    /// The data block at `handle`: from the cache, or read from the file (and cached when
    /// `fillCache`).
    func dataBlock(_ handle: BlockHandle, fillCache: Bool, readahead: Readahead? = nil) throws(KVError) -> Block {
        let cacheKey = BlockCacheKey(fileNumber: fileNumber, blockOffset: handle.offset)
        if let blockCache, let block = blockCache.get(cacheKey) { return block }
        blockReads.add()
        let contents: BlockContents
        if let readahead,
           let stored = try readahead.block(file, handle, total: checkedBlockExtent(file.path, handle, limit: dataEnd), limit: dataEnd) {
            contents = try decodeBlockContents(file.path, handle, stored, owned: false)
        } else {
            contents = try readBlockContents(file, handle, limit: dataEnd)
        }
        let block = try Block.make(owning: contents, file: file.path, offset: handle.offset)
        if fillCache, let blockCache { blockCache.insert(cacheKey, block, charge: block.charge) }
        return block
    }

    /// Decodes the data block handle that is the value of an index entry.
    @inline(__always)
    func dataHandle(_ value: UnsafeRawBufferPointer) throws(KVError) -> BlockHandle {
        guard let handle = BlockHandle.decodeExactly(value) else {
            throw .corruption(file: file.path, offset: indexBlock.offset, reason: "malformed data block handle in index")
        }
        return handle
    }

    // MARK: reads

    /// An iterator over every entry, in key order; forward, backward and seek.
    ///
    /// - Parameter fillCache: Whether data blocks read by the iterator are added to the block
    ///   cache (pass false for one-off scans such as compaction inputs).
    public func makeIterator(fillCache: Bool = true) -> any InternalIterator {
        makeTableIterator(fillCache: fillCache)
    }

    /// ``makeIterator(fillCache:)`` with its concrete type, for callers on hot paths.
    package func makeTableIterator(fillCache: Bool = true) -> TwoLevelIterator {
        TwoLevelIterator(table: self, fillCache: fillCache)
    }

    /// Whether the table may hold an entry for `userKey` (the user key for internal-key
    /// tables, the whole key for bytewise tables). False means it certainly does not. True
    /// when the table has no filter.
    public func mayContain(userKey: UnsafeRawBufferPointer) -> Bool {
        filter?.mayContain(userKey) ?? true
    }

    /// ``mayContain(userKey:)`` for a key whose ``keyHash64(_:)`` the caller has computed.
    @inline(__always)
    public func mayContain(userKey: UnsafeRawBufferPointer, hash: UInt64) -> Bool {
        filter?.mayContain(userKey, hash: hash) ?? true
    }

    /// Starts loading the part of the bloom filter that ``mayContain(userKey:hash:)`` reads
    /// for `hash` (``keyHash64(_:)``), so that a probe soon after does not wait for memory.
    @inline(__always)
    public func prefetchFilter(hash: UInt64) {
        filter?.prefetch(hash: hash)
    }

    /// Whether the table may hold an entry for `userKey`; see the raw-buffer overload.
    public func mayContain(userKey: [UInt8]) -> Bool {
        userKey.withUnsafeBytes { mayContain(userKey: $0) }
    }

    /// Finds the first entry at or after `lookupKey` and passes it to `body` without copying.
    ///
    /// When the table has a bloom filter and it rules out the lookup key's user key (for a
    /// bytewise table, the whole key), returns nil without reading any data block.
    ///
    /// - Parameters:
    ///   - lookupKey: An internal key (for internal-key tables) or a plain key.
    ///   - filterChecked: The caller has already asked ``mayContain(userKey:)`` and got true,
    ///     so the filter is not probed (or counted) again.
    ///   - body: Receives the entry's key and value, valid only during the call.
    /// - Returns: `body`'s result, or nil when no entry is at or after `lookupKey` or the
    ///   filter excluded it.
    /// - Throws: ``KVError/corruption(file:offset:reason:)`` or an I/O error.
    @inlinable
    public func get<R>(
        _ lookupKey: UnsafeRawBufferPointer, filterChecked: Bool = false,
        _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> R
    ) throws(KVError) -> R? {
        var result: R?
        guard try find(lookupKey, filterChecked: filterChecked, { key, value in result = body(key, value) }) else { return nil }
        return result
    }

    /// The non-generic body of ``get(_:filterChecked:_:)``: calls `body` with the first
    /// entry at or after `lookupKey` and returns true, or returns false.
    @usableFromInline
    func find(
        _ lookupKey: UnsafeRawBufferPointer, filterChecked: Bool = false,
        _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void
    ) throws(KVError) -> Bool {
        if keyOrder == .internalKey {
            precondition(lookupKey.count >= internalKeyTrailerSize, "lookup keys of internal-key tables are internal keys")
        }
        if !filterChecked, let filter {
            bloomChecks.add()
            let userKey = keyOrder == .internalKey ? InternalKey.userKey(lookupKey) : lookupKey
            if !filter.mayContain(userKey) {
                bloomUseful.add()
                return false
            }
        }
        // Both cursors rebuild keys in stack memory unless a key exceeds 256 bytes.
        return try withUnsafeTemporaryAllocation(byteCount: 512, alignment: 16) { (scratch) throws(KVError) -> Bool in
            let half = scratch.count / 2
            var index = BlockCursor(block: indexBlock, order: keyOrder, scratch: UnsafeMutableRawBufferPointer(rebasing: scratch[..<half]))
            var data = BlockCursor(block: nil, order: keyOrder, scratch: UnsafeMutableRawBufferPointer(rebasing: scratch[half...]))
            try seekIndex(&index, lookupKey)
            while index.isValid {
                try data.reset(dataBlock(dataHandle(index.value), fillCache: true))
                try data.seek(lookupKey)
                if data.isValid {
                    body(data.key, data.value)
                    return true
                }
                // The key falls between this block's last key and its separator: the answer
                // is the first entry of the next block.
                try index.next()
            }
            return false
        }
    }

    /// Positions `index` at the first index entry at or after `lookupKey`: through
    /// ``IndexSearch`` when the table has one, comparing in full only the entries whose
    /// prefixes tie; else by binary search of the block.
    @inline(__always)
    func seekIndex(_ index: inout BlockCursor, _ lookupKey: UnsafeRawBufferPointer) throws(KVError) {
        guard let indexSearch else { return try index.seek(lookupKey) }
        var (lo, hi) = indexSearch.candidates(IndexSearch.userKey(lookupKey, keyOrder))
        while lo < hi {
            let mid = (lo + hi) >> 1
            try index.seek(toRestart: mid)
            if compareKeys(keyOrder, index.key, lookupKey) < 0 { lo = mid + 1 } else { hi = mid }
        }
        try index.seek(toRestart: lo)
    }

    /// The first entry at or after `lookupKey`, copied; nil when there is none or the bloom
    /// filter excluded the key. See ``get(_:_:)``.
    public func get(_ lookupKey: UnsafeRawBufferPointer) throws(KVError) -> (key: [UInt8], value: [UInt8])? {
        try get(lookupKey) { k, v in (key: Array(k), value: Array(v)) }
    }

    /// The first entry at or after `lookupKey`, copied. See ``get(_:_:)``.
    public func get(_ lookupKey: [UInt8]) throws(KVError) -> (key: [UInt8], value: [UInt8])? {
        try withBytes(lookupKey) { (k) throws(KVError) in try get(k) }
    }

    /// Approximate file offset where the data for `key` begins: the offset of the data block
    /// that would hold it, or the end of the data blocks for keys past the last one.
    public func approximateOffset(of key: UnsafeRawBufferPointer) -> UInt64 {
        var index = BlockCursor(block: indexBlock, order: keyOrder)
        do {
            try index.seek(key)
            if index.isValid { return try dataHandle(index.value).offset }
        } catch {}
        return dataEnd
    }

    /// Approximate file offset where the data for `key` begins; see the raw-buffer overload.
    public func approximateOffset(of key: [UInt8]) -> UInt64 {
        key.withUnsafeBytes { approximateOffset(of: $0) }
    }

    /// Loads the data blocks that start at `offsets` into the block cache (cache warming).
    /// Offsets that are not data blocks of this table are ignored.
    ///
    /// - Returns: The number of blocks read from the file.
    @discardableResult
    public func warmBlockCache(offsets: Set<UInt64>) throws(KVError) -> Int {
        guard let blockCache, !offsets.isEmpty else { return 0 }
        var loaded = 0
        var index = BlockCursor(block: indexBlock, order: keyOrder)
        try index.seekToFirst()
        while index.isValid {
            let handle = try dataHandle(index.value)
            if offsets.contains(handle.offset),
                blockCache.get(BlockCacheKey(fileNumber: fileNumber, blockOffset: handle.offset)) == nil
            {
                _ = try dataBlock(handle, fillCache: true)
                loaded += 1
            }
            try index.next()
        }
        return loaded
    }
}
