/// Shale's 64-bit key hash: the memtable point index and the cache-local bloom filter (an
/// on-disk format, so the function is fixed) use it. All arithmetic is modulo 2^64:
///
///     h = 0x9e3779b97f4a7c15 ^ len
///     for each whole 8-byte little-endian word w:  h = (h ^ w) * 0xff51afd7ed558ccd;  h ^= h >> 29
///     tail of 1-7 bytes, as a little-endian word w: h = (h ^ w) * 0xc4ceb9fe1a85ec53;  h ^= h >> 29
///     finish (MurmurHash3's fmix64):  h ^= h >> 33;  h *= 0xff51afd7ed558ccd;  h ^= h >> 33
///                                     h *= 0xc4ceb9fe1a85ec53;  h ^= h >> 33
@inline(__always)
public func keyHash64(_ key: UnsafeRawBufferPointer) -> UInt64 {
    var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(truncatingIfNeeded: key.count)
    if var p = key.baseAddress {
        var n = key.count
        while n >= 8 {
            h = (h ^ UInt64(littleEndian: p.loadUnaligned(as: UInt64.self))) &* 0xFF51_AFD7_ED55_8CCD
            h ^= h >> 29
            p += 8
            n -= 8
        }
        if n > 0 {
            var w: UInt64 = 0
            for i in 0..<n { w |= UInt64(p.load(fromByteOffset: i, as: UInt8.self)) << UInt64(8 * i) }
            h = (h ^ w) &* 0xC4CE_B9FE_1A85_EC53
            h ^= h >> 29
        }
    }
    h ^= h >> 33
    h = h &* 0xFF51_AFD7_ED55_8CCD
    h ^= h >> 33
    h = h &* 0xC4CE_B9FE_1A85_EC53
    h ^= h >> 33
    return h
}
