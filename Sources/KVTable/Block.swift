import KVBase

/// One parsed, decompressed block in a single owned allocation (the unit the block cache
/// holds).
///
/// A `Block` is immutable once made, and its restart array has been validated: at least one
/// restart, the first at offset 0, offsets strictly increasing and inside the entry area.
/// Entries themselves are checked as iterators decode them. Iterators point into the
/// block's memory and keep the `Block` alive while they do.
// @unchecked Sendable: every stored property is a `let`, and the bytes behind `base` are
// written once before the block is made and never again; concurrent readers only read.
public final class Block: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    /// Number of block bytes (entries and restart array).
    public let size: Int
    let allocatedSize: Int
    /// Offset of the restart array: entries occupy bytes `0..<restartsOffset`.
    let restartsOffset: Int
    /// Number of restart points (at least 1).
    let numRestarts: Int
    /// The file the block came from, for error messages.
    let file: String
    /// The block's offset in that file, for error messages and cache keys.
    let offset: UInt64

    private init(base: UnsafeMutableRawPointer, size: Int, allocatedSize: Int, restartsOffset: Int, numRestarts: Int, file: String, offset: UInt64) {
        self.base = base
        self.size = size
        self.allocatedSize = allocatedSize
        self.restartsOffset = restartsOffset
        self.numRestarts = numRestarts
        self.file = file
        self.offset = offset
    }

    deinit { base.deallocate() }

    /// Bytes this block holds in memory: its charge in a block cache.
    public var charge: Int { allocatedSize }

    /// Takes ownership of `contents` (freed on failure too) and validates its restart array.
    static func make(owning contents: BlockContents, file: String, offset: UInt64) throws(KVError) -> Block {
        let bytes = UnsafeRawBufferPointer(start: contents.pointer, count: contents.size)
        let restartsOffset: Int
        let numRestarts: Int
        do {
            (restartsOffset, numRestarts) = try validateRestarts(bytes, file: file, offset: offset)
        } catch {
            contents.pointer.deallocate()
            throw error
        }
        return Block(
            base: contents.pointer, size: contents.size, allocatedSize: contents.allocatedSize,
            restartsOffset: restartsOffset, numRestarts: numRestarts, file: file, offset: offset)
    }

    /// A block over a copy of `bytes` (a finished ``BlockBuilder`` buffer, in tests).
    static func make(copying bytes: [UInt8], file: String = "<memory>", offset: UInt64 = 0) throws(KVError) -> Block {
        let n = bytes.count
        let p = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(n, 1), alignment: 16)
        bytes.withUnsafeBytes { src in
            if n > 0 { p.copyMemory(from: src.baseAddress!, byteCount: n) }
        }
        return try make(owning: BlockContents(pointer: p, size: n, allocatedSize: Swift.max(n, 1), wasCompressed: false), file: file, offset: offset)
    }

    private static func validateRestarts(_ bytes: UnsafeRawBufferPointer, file: String, offset: UInt64) throws(KVError) -> (Int, Int) {
        guard bytes.count >= 4 else {
            throw .corruption(file: file, offset: offset, reason: "block of \(bytes.count) bytes is too short")
        }
        let n = Int(bytes.fixed32(at: bytes.count - 4))
        guard n >= 1, n <= (bytes.count - 4) / 4 else {
            throw .corruption(file: file, offset: offset, reason: "bad restart count \(n) in a block of \(bytes.count) bytes")
        }
        let restartsOffset = bytes.count - 4 - 4 * n
        var previous = 0
        for i in 0..<n {
            let r = Int(bytes.fixed32(at: restartsOffset + 4 * i))
            let ok = i == 0 ? r == 0 : (r > previous && r < restartsOffset)
            guard ok else {
                throw .corruption(file: file, offset: offset, reason: "malformed restart array (restart \(i) at \(r))")
            }
            previous = r
        }
        return (restartsOffset, n)
    }

    /// Offset of restart point `i`.
    @inline(__always)
    func restartPoint(_ i: Int) -> Int {
        Int(UInt32(littleEndian: UnsafeRawPointer(base).loadUnaligned(fromByteOffset: restartsOffset + 4 * i, as: UInt32.self)))
    }

    /// An iterator over this block's entries, ordered by `order`.
    func makeIterator(order: KeyOrder) -> BlockIterator {
        BlockIterator(block: self, order: order)
    }
}
