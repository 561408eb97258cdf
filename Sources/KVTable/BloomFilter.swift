// Filter block (stored raw, trailer type 0), referenced from the metaindex as "filter.bloom":
//
//   filter_block := bits bytes[m] | k byte
//
// One bloom filter over every key of the table; for internal-key tables over the *user*
// keys (each distinct user key once), so a point lookup probes by user key. m = number of
// bytes = ceil(max(n * bits_per_key, 64) / 8); the filter has 8m bits, bit i is bit (i % 8)
// of byte i / 8. k = round(bits_per_key * ln 2) clamped to 1...30 is the probe count.
//
// Probes use double hashing from one 32-bit hash h = bloomHash(key) (the murmur-like hash
// of LevelDB's util/hash.cc with seed 0xbc9f1d34, defined below):
//
//   delta = rotate_right(h, 17)          -- (h >> 17) | (h << 15)
//   repeat k times: set/test bit (h mod 8m); h = h + delta   (32-bit wrapping)
//
// A reader treats a filter shorter than 2 bytes, or with k > 30 (reserved for future
// encodings), as "may contain" for every key.

/// LevelDB's 32-bit hash (a Murmur variant): 4 bytes at a time, little-endian.
///
///   h = seed ^ (n * 0xc6a4a793)
///   for each 4-byte word w: h = (h + w) * m; h ^= h >> 16
///   tail of 1-3 bytes b0 b1 b2: h += b2 << 16; h += b1 << 8; h += b0; h *= m; h ^= h >> 24
@inline(__always)
func bloomHash(_ key: UnsafeRawBufferPointer, seed: UInt32 = 0xBC9F_1D34) -> UInt32 {
    let m: UInt32 = 0xC6A4_A793
    let n = key.count
    var h = seed ^ (UInt32(truncatingIfNeeded: n) &* m)
    guard n > 0, let p = key.baseAddress else { return h }
    var i = 0
    while i + 4 <= n {
        let w = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: i, as: UInt32.self))
        h = (h &+ w) &* m
        h ^= h >> 16
        i += 4
    }
    let rest = n - i
    if rest > 0 {
        if rest == 3 { h &+= UInt32(p.load(fromByteOffset: i + 2, as: UInt8.self)) << 16 }
        if rest >= 2 { h &+= UInt32(p.load(fromByteOffset: i + 1, as: UInt8.self)) << 8 }
        h &+= UInt32(p.load(fromByteOffset: i, as: UInt8.self))
        h = h &* m
        h ^= h >> 24
    }
    return h
}

/// Collects key hashes and writes one bloom filter. Not thread-safe.
struct BloomFilterBuilder {
    let bitsPerKey: Int
    private var hashes: [UInt32] = []

    init(bitsPerKey: Int) {
        precondition(bitsPerKey > 0)
        self.bitsPerKey = bitsPerKey
    }

    /// Probe count for `bitsPerKey`: round(bits * ln 2) in 1...30.
    static func probes(bitsPerKey: Int) -> Int {
        Swift.min(30, Swift.max(1, Int((Double(bitsPerKey) * 0.693_147_180_559_945_3).rounded())))
    }

    /// Number of keys added.
    var count: Int { hashes.count }

    mutating func add(_ key: UnsafeRawBufferPointer) {
        hashes.append(bloomHash(key))
    }

    /// The filter bytes (bits, then k).
    func finish() -> [UInt8] {
        let k = Self.probes(bitsPerKey: bitsPerKey)
        let bits = Swift.max(hashes.count * bitsPerKey, 64)
        let bytes = (bits + 7) / 8
        let totalBits = UInt64(bytes * 8)
        var out = [UInt8](repeating: 0, count: bytes + 1)
        out[bytes] = UInt8(k)
        out.withUnsafeMutableBufferPointer { filter in
            for hash in hashes {
                var h = hash
                let delta = (h >> 17) | (h << 15)
                for _ in 0..<k {
                    let bit = Int(UInt64(h) % totalBits)
                    filter[bit >> 3] |= UInt8(1) << UInt8(bit & 7)
                    h &+= delta
                }
            }
        }
        return out
    }
}

/// A bloom filter read from a table; immutable.
struct BloomFilter: Sendable {
    let bytes: [UInt8]

    /// Whether `key` may have been added. False means it certainly was not.
    func mayContain(_ key: UnsafeRawBufferPointer) -> Bool {
        bytes.withUnsafeBufferPointer { filter in
            let n = filter.count
            guard n >= 2 else { return true }
            let k = Int(filter[n - 1])
            guard k <= 30 else { return true }
            let totalBits = UInt64((n - 1) * 8)
            var h = bloomHash(key)
            let delta = (h >> 17) | (h << 15)
            for _ in 0..<k {
                let bit = Int(UInt64(h) % totalBits)
                if filter[bit >> 3] & (UInt8(1) << UInt8(bit & 7)) == 0 { return false }
                h &+= delta
            }
            return true
        }
    }
}
