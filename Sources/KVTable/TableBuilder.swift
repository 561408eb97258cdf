import KVBase
import KVFileSystem

// Writes the table layout described in TableFormat.swift, in file order:
//
//   data_block*        block format (BlockBuilder.swift), restart interval from options,
//                      compressed per options, cut once a block reaches options.blockSize
//   filter_block?      bloom filter (BloomFilter.swift), raw; absent when bloomBitsPerKey = 0
//   properties_block   TableProperties.swift, raw
//   metaindex_block    block format, bytewise keys, restart interval 1, raw:
//                        "filter.bloom" -> filter block handle   (when there is a filter)
//                        "properties"   -> properties block handle
//   index_block        block format, the table's key order, restart interval 1, compressed
//                      per options: one entry per data block,
//                        separator key (KeyShortening.swift) -> data block handle
//   footer             48 bytes (TableFormat.swift)
//
// Each block is followed by its 5-byte trailer (type byte, masked CRC32C).

/// Writes one SSTable from entries added in strictly increasing key order.
///
/// Usage: ``add(_:_:)`` every entry, then ``finish()`` (which syncs
/// and closes the file) or ``abandon()``. A failed write latches: every later call throws the
/// same error, and the caller should abandon the builder and remove the file.
///
/// Not thread-safe: one thread builds a table.
public final class TableBuilder {
    private let file: any WritableFile
    private let options: TableOptions
    // Unchecked exclusivity on the mutable fields: a builder has one owner thread and no
    // method re-enters another, so the dynamic checks (several per entry) would only cost time.
    @exclusivity(unchecked) private var dataBlock: BlockBuilder
    @exclusivity(unchecked) private var indexBlock: BlockBuilder
    @exclusivity(unchecked) private var filter: BloomFilterBuilder?
    @exclusivity(unchecked) private var lastKey: [UInt8] = []
    /// Handle of the last data block written, whose index entry waits for the next key.
    @exclusivity(unchecked) private var pendingHandle: BlockHandle?
    @exclusivity(unchecked) private var offset: UInt64 = 0
    @exclusivity(unchecked) private var properties = TableProperties()
    @exclusivity(unchecked) private var scratch: UnsafeMutableRawPointer?
    @exclusivity(unchecked) private var scratchCapacity = 0
    @exclusivity(unchecked) private var latchedError: KVError?
    @exclusivity(unchecked) private var done = false

    /// Starts a table.
    ///
    /// - Parameters:
    ///   - file: A new, empty file. The builder owns it: ``finish()`` syncs and closes it,
    ///     ``abandon()`` closes it.
    ///   - options: Validated options (an invalid value is a programming error and traps).
    public init(file: any WritableFile, options: TableOptions) {
        do {
            try options.validate()
        } catch {
            preconditionFailure("invalid TableOptions: \(error)")
        }
        self.file = file
        self.options = options
        self.dataBlock = BlockBuilder(restartInterval: options.restartInterval)
        self.indexBlock = BlockBuilder(restartInterval: 1)
        self.filter = options.bloomBitsPerKey > 0 ? BloomFilterBuilder(bitsPerKey: options.bloomBitsPerKey) : nil
        properties.compression = options.compression
        properties.keyOrder = options.keyOrder
        properties.bloomBitsPerKey = options.bloomBitsPerKey
    }

    deinit { scratch?.deallocate() }

    /// Number of entries added so far.
    public var entries: UInt64 { properties.entries }

    /// Bytes written so far plus the data block being built: an estimate of the finished
    /// file's size (the filter, index and footer are not counted).
    public var estimatedFileSize: UInt64 { offset + UInt64(dataBlock.estimatedSize) }

    /// Adds an entry.
    ///
    /// - Parameters:
    ///   - key: Must sort strictly after the previous key under the options' key order (a
    ///     violation traps); for ``KeyOrder/internalKey`` it must be an internal key (at least
    ///     8 bytes).
    ///   - value: Any bytes.
    /// - Throws: ``KVError/invalidArgument(_:)`` when key and value together exceed 2 GiB; an
    ///   I/O error when writing a finished data block fails (latched).
    public func add(_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws(KVError) {
        precondition(!done, "add on a finished or abandoned TableBuilder")
        if let latchedError { throw latchedError }
        let order = options.keyOrder
        if order == .internalKey {
            precondition(key.count >= internalKeyTrailerSize, "internal keys carry an 8-byte trailer")
        }
        guard key.count + value.count <= 1 << 31 else {
            throw .invalidArgument("table entry of \(key.count + value.count) bytes exceeds 2 GiB")
        }
        let isFirst = properties.entries == 0
        if !isFirst {
            let c = lastKey.withUnsafeBytes { compareKeys(order, key, $0) }
            precondition(c > 0, "TableBuilder keys must be strictly increasing")
        } else {
            properties.smallestKey = Array(key)
        }
        if let handle = pendingHandle {
            let separator = lastKey.withUnsafeBytes { indexSeparator(order, $0, key) }
            indexBlock.add(separator, handle.encoded)
            pendingHandle = nil
        }
        if filter != nil {
            let userKey = order == .internalKey ? InternalKey.userKey(key) : key
            let repeated =
                !isFirst && order == .internalKey
                && lastKey.withUnsafeBytes { compareBytes(InternalKey.userKey($0), userKey) == 0 }
            if !repeated { filter!.add(userKey) }
        }
        lastKey.removeAll(keepingCapacity: true)
        lastKey.append(contentsOf: key)
        properties.entries += 1
        properties.rawKeyBytes += UInt64(key.count)
        properties.rawValueBytes += UInt64(value.count)
        dataBlock.add(key, value)
        if dataBlock.estimatedSize >= options.blockSize {
            try latching { () throws(KVError) in try flushDataBlock() }
        }
    }

    /// Adds an entry held in arrays; see the raw-buffer overload.
    public func add(_ key: [UInt8], _ value: [UInt8]) throws(KVError) {
        try withBytes(key) { (k) throws(KVError) in
            try withBytes(value) { (v) throws(KVError) in try add(k, v) }
        }
    }

    /// Writes the last data block, the filter, properties, metaindex and index blocks and the
    /// footer, then syncs and closes the file.
    ///
    /// - Returns: The table's properties, with its final size.
    /// - Throws: An I/O error from a write, the sync or the close (latched).
    @discardableResult
    public func finish() throws(KVError) -> TableProperties {
        precondition(!done, "finish on a finished or abandoned TableBuilder")
        if let latchedError { throw latchedError }
        try latching { () throws(KVError) in
            try flushDataBlock()
            var filterHandle: BlockHandle?
            if let filter {
                filterHandle = try writeBlock(filter.finish(), compression: .none)
            }
            properties.largestKey = lastKey
            let propertiesHandle = try writeBlock(properties.encodeBlock(), compression: .none)
            var meta = BlockBuilder(restartInterval: 1)
            if let filterHandle { meta.add(Array(MetaIndex.filter.utf8), filterHandle.encoded) }
            meta.add(Array(MetaIndex.properties.utf8), propertiesHandle.encoded)
            meta.finish()
            let metaHandle = try writeBlock(meta.buffer, compression: .none)
            if let handle = pendingHandle {
                let successor = lastKey.withUnsafeBytes { indexSuccessor(options.keyOrder, $0) }
                indexBlock.add(successor, handle.encoded)
                pendingHandle = nil
            }
            indexBlock.finish()
            let indexHandle = try writeBlock(indexBlock.buffer, compression: options.compression)
            guard metaHandle.offset < TableFormat.maxFooterHandleValue, indexHandle.offset < TableFormat.maxFooterHandleValue,
                indexHandle.size < TableFormat.maxFooterHandleValue
            else {
                throw .invalidArgument("table too large for the footer's block handles")
            }
            try file.append(Footer(metaindex: metaHandle, index: indexHandle).encode())
            offset += UInt64(TableFormat.footerSize)
            try file.sync()
            try file.close()
        }
        done = true
        properties.fileSize = offset
        return properties
    }

    /// Gives up on the table: closes the file without finishing it. The caller removes the
    /// file. Errors from the close are ignored.
    public func abandon() {
        guard !done else { return }
        done = true
        try? file.close()
    }

    // MARK: writing blocks

    private func latching(_ body: () throws(KVError) -> Void) throws(KVError) {
        do {
            try body()
        } catch {
            latchedError = error
            throw error
        }
    }

    private func flushDataBlock() throws(KVError) {
        guard !dataBlock.isEmpty else { return }
        dataBlock.finish()
        let (handle, compressed) = try withBytes(dataBlock.buffer) { (raw) throws(KVError) in
            try writeBlock(raw, compression: options.compression)
        }
        dataBlock.reset()
        pendingHandle = handle
        properties.dataBlocks += 1
        if compressed { properties.compressedDataBlocks += 1 }
    }

    private func writeBlock(_ raw: [UInt8], compression: CompressionType) throws(KVError) -> BlockHandle {
        try withBytes(raw) { (p) throws(KVError) in try writeBlock(p, compression: compression).0 }
    }

    /// Compresses `raw` if asked and worth it, then appends it and its trailer.
    private func writeBlock(_ raw: UnsafeRawBufferPointer, compression: CompressionType) throws(KVError) -> (BlockHandle, Bool) {
        var stored = raw
        var type = CompressionType.none
        if compression == .lz4 && raw.count > 0 && raw.count <= LZ4.maxInputSize {
            let needed = LZ4.compressBound(raw.count) + 5
            if needed > scratchCapacity {
                scratch?.deallocate()
                scratch = UnsafeMutableRawPointer.allocate(byteCount: needed, alignment: 16)
                scratchCapacity = needed
            }
            let out = scratch!
            var prefix = 0
            var length = UInt32(raw.count)
            while length >= 0x80 {
                out.storeBytes(of: UInt8(truncatingIfNeeded: length) | 0x80, toByteOffset: prefix, as: UInt8.self)
                length >>= 7
                prefix += 1
            }
            out.storeBytes(of: UInt8(length), toByteOffset: prefix, as: UInt8.self)
            prefix += 1
            let n = LZ4.compress(raw, into: UnsafeMutableRawBufferPointer(start: out + prefix, count: scratchCapacity - prefix))
            if n > 0 && prefix + n < raw.count - raw.count / 8 {
                stored = UnsafeRawBufferPointer(start: out, count: prefix + n)
                type = .lz4
            }
        }
        var crc = CRC32C.checksum(stored)
        crc = withUnsafeBytes(of: type.rawValue) { CRC32C.update(crc, $0) }
        // trailer := type byte | masked crc fixed32: the low 5 bytes of this little-endian word.
        let trailer = (UInt64(type.rawValue) | UInt64(CRC32C.mask(crc)) << 8).littleEndian
        try file.append(stored)
        try withUnsafeBytes(of: trailer) { (t) throws(KVError) in
            try file.append(UnsafeRawBufferPointer(rebasing: t[0..<TableFormat.blockTrailerSize]))
        }
        let handle = BlockHandle(offset: offset, size: UInt64(stored.count))
        offset += UInt64(stored.count + TableFormat.blockTrailerSize)
        return (handle, type == .lz4)
    }
}

/// Names in the metaindex block.
enum MetaIndex {
    static let filter = "filter.bloom"
    static let properties = "properties"
}
