import KVBase
import KVFileSystem

// Shale table file, format version 1. All integers little-endian; varints are LEB128.
//
//   table        := data_block* filter_block? properties_block metaindex_block index_block footer
//
// Every block is written as its stored bytes followed by a 5-byte trailer:
//
//   block_on_disk := stored_bytes | trailer
//   trailer       := type byte | crc fixed32
//     type  = 0 (none): stored_bytes are the block itself
//           = 1 (lz4):  stored_bytes = uncompressed_length varint32 | lz4_block bytes
//     crc   = masked CRC32C over (stored_bytes | type byte)   (CRC32C.mask, as LevelDB)
//
//   block_handle := offset varint64 | size varint64
//     offset = file offset of stored_bytes; size = count of stored_bytes (trailer excluded)
//
// The footer is the last 48 bytes of the file:
//
//   footer := metaindex_handle | index_handle | zero padding to 32 bytes   (bytes  0..<32)
//             | format_version fixed32 (= 1)                                (bytes 32..<36)
//             | footer_crc fixed32                                          (bytes 36..<40)
//             | magic fixed64 = 0x4C42_5445_4C41_4853                       (bytes 40..<48)
//     footer_crc = masked CRC32C over footer bytes 0..<36
//     magic is the ASCII bytes "SHALETBL" as they appear in the file
//     Each of the four handle varints must encode a value below 2^56 (at most 8 bytes), so
//     the two handles always fit in 32 bytes.
//
// A reader checks, in order: the file holds at least 48 bytes, the magic, the footer CRC,
// then the version (a different version with a valid CRC is `unsupportedFormat`). Later
// versions keep the last 16 bytes' layout: version, CRC of the bytes before it, magic.

/// Table format constants.
enum TableFormat {
    /// The format version written and read.
    static let version: UInt32 = 1
    /// The footer's last 8 bytes: "SHALETBL" in file order.
    static let magic: UInt64 = 0x4C42_5445_4C41_4853
    /// Size of the footer in bytes.
    static let footerSize = 48
    /// Size of the handles area at the start of the footer.
    static let footerHandlesSize = 32
    /// Size of the trailer after every block.
    static let blockTrailerSize = 5
    /// Largest value a handle varint may carry in the footer (8 varint bytes).
    static let maxFooterHandleValue: UInt64 = 1 << 56
}

/// Where a block lives in the file: the offset and size of its stored bytes (the 5-byte
/// trailer follows them and is not counted).
struct BlockHandle: Equatable, Sendable {
    var offset: UInt64
    var size: UInt64

    /// Appends `offset varint64 | size varint64`.
    func encode(into out: inout [UInt8]) {
        out.appendVarint(offset)
        out.appendVarint(size)
    }

    /// The encoded form.
    var encoded: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(20)
        encode(into: &out)
        return out
    }

    /// Decodes a handle at `position`, advancing it; nil when the bytes are truncated or
    /// malformed.
    static func decode(_ bytes: UnsafeRawBufferPointer, at position: inout Int) -> BlockHandle? {
        var p = position
        guard let offset = bytes.varint(at: &p), let size = bytes.varint(at: &p) else { return nil }
        position = p
        return BlockHandle(offset: offset, size: size)
    }

    /// Decodes a handle that must fill `bytes` exactly.
    static func decodeExactly(_ bytes: UnsafeRawBufferPointer) -> BlockHandle? {
        var p = 0
        guard let h = decode(bytes, at: &p), p == bytes.count else { return nil }
        return h
    }
}

/// The fixed-size footer at the end of a table.
struct Footer: Equatable {
    var metaindex: BlockHandle
    var index: BlockHandle

    /// The 48 footer bytes.
    func encode() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(TableFormat.footerSize)
        metaindex.encode(into: &out)
        index.encode(into: &out)
        precondition(out.count <= TableFormat.footerHandlesSize, "footer handles exceed 32 bytes")
        out.append(contentsOf: repeatElement(0, count: TableFormat.footerHandlesSize - out.count))
        out.appendFixed32(TableFormat.version)
        let crc = out.withUnsafeBytes { CRC32C.checksum($0) }
        out.appendFixed32(CRC32C.mask(crc))
        out.appendFixed64(TableFormat.magic)
        return out
    }

    /// Parses and checks the 48 footer bytes of `file`, which start at `offset`.
    static func decode(_ bytes: UnsafeRawBufferPointer, file: String, offset: UInt64) throws(KVError) -> Footer {
        precondition(bytes.count == TableFormat.footerSize)
        guard bytes.fixed64(at: 40) == TableFormat.magic else {
            throw .corruption(file: file, offset: offset, reason: "bad table magic number (not a Shale table)")
        }
        let stored = CRC32C.unmask(bytes.fixed32(at: 36))
        let actual = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<36]))
        guard stored == actual else {
            throw .corruption(file: file, offset: offset, reason: "footer checksum mismatch")
        }
        let version = bytes.fixed32(at: 32)
        guard version == TableFormat.version else {
            throw .unsupportedFormat(file: file, version: version)
        }
        let handles = UnsafeRawBufferPointer(rebasing: bytes[0..<TableFormat.footerHandlesSize])
        var p = 0
        guard let metaindex = BlockHandle.decode(handles, at: &p), let index = BlockHandle.decode(handles, at: &p) else {
            throw .corruption(file: file, offset: offset, reason: "malformed block handles in footer")
        }
        return Footer(metaindex: metaindex, index: index)
    }
}

/// The bytes of one block as read from a file, after checksum verification and
/// decompression, in a fresh allocation the caller owns.
struct BlockContents {
    /// Start of the allocation (and of the block's bytes).
    var pointer: UnsafeMutableRawPointer
    /// Number of block bytes.
    var size: Int
    /// Bytes allocated at `pointer` (at least `size`).
    var allocatedSize: Int
    /// Whether the block was stored compressed.
    var wasCompressed: Bool
}

/// Reads the block at `handle` from `file`, checks its trailer CRC and decompresses it.
///
/// - Parameters:
///   - file: The table file.
///   - handle: The block's handle.
///   - limit: File offset that the block and its trailer must end at or before.
/// - Returns: Contents in a fresh allocation owned by the caller (free with
///   `pointer.deallocate()`, or hand it to ``Block/make(owning:file:offset:)``).
/// - Throws: ``KVError/corruption(file:offset:reason:)`` naming `handle.offset` when the
///   handle points outside the file, the read is short, the CRC does not match, the type byte
///   is unknown or the LZ4 payload is malformed; an I/O error from the read.
func readBlockContents(_ file: any ReadableFile, _ handle: BlockHandle, limit: UInt64) throws(KVError) -> BlockContents {
    let total = try checkedBlockExtent(file.path, handle, limit: limit)
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: total, alignment: 16)
    let got: Int
    do {
        got = try file.read(at: handle.offset, into: UnsafeMutableRawBufferPointer(start: buffer, count: total))
    } catch {
        buffer.deallocate()
        throw error
    }
    guard got == total else {
        buffer.deallocate()
        throw .corruption(file: file.path, offset: handle.offset, reason: "truncated block: wanted \(total) bytes, read \(got)")
    }
    return try decodeBlockContents(file.path, handle, buffer, owned: true)
}

/// The number of bytes (block + trailer) `handle` covers, after checking that they lie below
/// `limit`.
func checkedBlockExtent(_ path: String, _ handle: BlockHandle, limit: UInt64) throws(KVError) -> Int {
    let trailer = UInt64(TableFormat.blockTrailerSize)
    guard limit >= trailer, handle.offset <= limit - trailer, handle.size <= limit - trailer - handle.offset else {
        throw .corruption(file: path, offset: handle.offset, reason: "block handle (size \(handle.size)) points past the end of the table's blocks")
    }
    return Int(handle.size) + TableFormat.blockTrailerSize
}

/// Checks the trailer CRC of the stored block (with trailer) at `buffer` and decompresses it.
/// With `owned`, `buffer` was allocated for this block and is either returned as the
/// contents or freed; otherwise it belongs to the caller and the contents are a copy.
func decodeBlockContents(_ path: String, _ handle: BlockHandle, _ buffer: UnsafeMutableRawPointer, owned: Bool) throws(KVError) -> BlockContents {
    let size = Int(handle.size)
    let total = size + TableFormat.blockTrailerSize
    let raw = UnsafeRawBufferPointer(start: buffer, count: total)
    let stored = CRC32C.unmask(raw.fixed32(at: size + 1))
    let actual = CRC32C.checksum(UnsafeRawBufferPointer(start: buffer, count: size + 1))
    guard stored == actual else {
        if owned { buffer.deallocate() }
        throw .corruption(file: path, offset: handle.offset, reason: "block checksum mismatch")
    }
    let type = raw[size]
    switch type {
    case CompressionType.none.rawValue:
        if owned { return BlockContents(pointer: buffer, size: size, allocatedSize: total, wasCompressed: false) }
        let copy = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(size, 1), alignment: 16)
        copy.copyMemory(from: buffer, byteCount: size)
        return BlockContents(pointer: copy, size: size, allocatedSize: Swift.max(size, 1), wasCompressed: false)
    case CompressionType.lz4.rawValue:
        defer { if owned { buffer.deallocate() } }
        let payload = UnsafeRawBufferPointer(start: buffer, count: size)
        var p = 0
        guard let length = payload.varint32(at: &p) else {
            throw .corruption(file: path, offset: handle.offset, reason: "malformed LZ4 block length")
        }
        let compressed = UnsafeRawBufferPointer(rebasing: payload[p...])
        // LZ4 expands at most about 255:1; anything larger is corrupt and must not drive
        // the allocation below.
        let uncompressed = Int(length)
        guard uncompressed <= compressed.count * 255 + 16, uncompressed <= Int(Int32.max) else {
            throw .corruption(file: path, offset: handle.offset, reason: "implausible LZ4 uncompressed length \(uncompressed)")
        }
        let allocated = Swift.max(uncompressed, 1)
        let out = UnsafeMutableRawPointer.allocate(byteCount: allocated, alignment: 16)
        let produced = LZ4.decompress(compressed, into: out, capacity: uncompressed)
        guard produced == uncompressed else {
            out.deallocate()
            throw .corruption(file: path, offset: handle.offset, reason: "malformed LZ4 block payload")
        }
        return BlockContents(pointer: out, size: uncompressed, allocatedSize: allocated, wasCompressed: true)
    default:
        if owned { buffer.deallocate() }
        throw .corruption(file: path, offset: handle.offset, reason: "unknown block compression type \(type)")
    }
}

/// Reads ahead for one iterator walking a table: after two data blocks read back to back,
/// misses are served from one larger read (8 KiB, doubling up to 256 KiB) instead of one
/// read per block, as RocksDB's iterator readahead does. Not thread-safe: one per iterator.
final class Readahead {
    static let initialSize = 8 << 10
    static let maxSize = 256 << 10

    private var buffer: UnsafeMutableRawPointer?
    private var capacity = 0
    /// File range held in `buffer`.
    private var start: UInt64 = 0
    private var length = 0
    /// End of the last block read, and how many reads in a row started there.
    private var lastEnd: UInt64 = .max
    private var sequential = 0
    private var size = Readahead.initialSize

    deinit { buffer?.deallocate() }

    /// The stored block at `handle` (with trailer), from the buffer, refilled if needed; nil
    /// when reads are not sequential yet (the caller reads the block by itself).
    func block(_ file: any ReadableFile, _ handle: BlockHandle, total: Int, limit: UInt64) throws(KVError) -> UnsafeMutableRawPointer? {
        defer { lastEnd = handle.offset + UInt64(total) }
        if handle.offset != lastEnd {
            sequential = 0
            size = Self.initialSize
            return nil
        }
        sequential += 1
        if sequential < 2 { return nil }
        if let buffer, handle.offset >= start, handle.offset + UInt64(total) <= start + UInt64(length) {
            return buffer + Int(handle.offset - start)
        }
        let want = Int(Swift.min(UInt64(Swift.max(size, total)), limit - handle.offset))
        if want > capacity {
            buffer?.deallocate()
            buffer = .allocate(byteCount: want, alignment: 16)
            capacity = want
        }
        length = 0
        let got = try file.read(at: handle.offset, into: UnsafeMutableRawBufferPointer(start: buffer, count: want))
        guard got >= total else {
            throw .corruption(file: file.path, offset: handle.offset, reason: "truncated block: wanted \(total) bytes, read \(got)")
        }
        start = handle.offset
        length = got
        size = Swift.min(size * 2, Self.maxSize)
        return buffer
    }
}
