import CLZ4

// LZ4-compressed block payload (trailer type 1):
//
//   compressed_block := uncompressed_length varint32 | lz4_block bytes
//
// `lz4_block` is the LZ4 *block* format (not the frame format) as produced by
// LZ4_compress_default over the whole uncompressed block. A block is stored compressed only
// when the whole payload (length prefix included) is smaller than raw - raw/8, i.e. when it
// saves at least 12.5%; otherwise it is stored raw with trailer type 0.

/// Thin wrappers over liblz4's block API.
enum LZ4 {
    /// The largest input LZ4 accepts (LZ4_MAX_INPUT_SIZE).
    static let maxInputSize = 0x7E00_0000

    /// Upper bound of the compressed size of `count` input bytes (LZ4_compressBound).
    @inline(__always)
    static func compressBound(_ count: Int) -> Int {
        Int(LZ4_compressBound(Int32(count)))
    }

    /// Compresses `source` into `destination` with LZ4_compress_default. Returns the number of
    /// bytes written, or 0 when `destination` is too small or the input too large.
    @inline(__always)
    static func compress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> Int {
        guard source.count <= maxInputSize, destination.count <= Int(Int32.max),
            let src = source.baseAddress, let dst = destination.baseAddress
        else { return 0 }
        return Int(
            LZ4_compress_default(
                src.assumingMemoryBound(to: CChar.self),
                dst.assumingMemoryBound(to: CChar.self),
                Int32(source.count),
                Int32(destination.count)))
    }

    /// Decompresses `source` into `destination` with LZ4_decompress_safe, which never reads or
    /// writes out of bounds whatever the input. Returns the number of bytes produced, or a
    /// negative number when the input is malformed or does not fit.
    @inline(__always)
    static func decompress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawPointer, capacity: Int) -> Int {
        guard source.count <= Int(Int32.max), capacity <= Int(Int32.max), let src = source.baseAddress else { return -1 }
        return Int(
            LZ4_decompress_safe(
                src.assumingMemoryBound(to: CChar.self),
                destination.assumingMemoryBound(to: CChar.self),
                Int32(source.count),
                Int32(capacity)))
    }
}
