import CShaleSupport
import KVBase

// Filter block (stored raw, trailer type 0), referenced from the metaindex as "filter.bloom".
// One bloom filter over every key of the table; for internal-key tables over the *user*
// keys (each distinct user key once), so a point lookup probes by user key. Two encodings,
// told apart by the last byte:
//
//   local_filter  := lines bytes[64 * L] | k byte | 0x81      (written by this version)
//   legacy_filter := bits bytes[m] | k byte                   (k in 1...30; read only)
//
// Local (cache-local, as RocksDB's FastLocalBloom): every key sets and tests k bits of one
// 64-byte line, so a probe touches one cache line. With n keys and b bits per key,
// L = max(1, ceil(n * b / 512)) lines; k from b by the table in `localProbes(bitsPerKey:)`
// (6 at 10 bits per key). For the key's hash h = keyHash64(key) (KVBase/KeyHash.swift):
//
//   line = (uint64(h >> 32) * L) >> 32                  -- the high half picks the line
//   x = uint32(h)                                       -- the low half picks the bits
//   repeat k times: bit (x >> 23) of the line is set/tested;  x = x * 0x9e3779b9  (mod 2^32)
//
// (bit i of a line is bit i % 8 of its byte i / 8.) A local filter whose size is not
// 64 * L + 2 with L >= 1, or whose k is outside 1...24, answers "may contain".
//
// Legacy (LevelDB's): m = ceil(max(n * bits_per_key, 64) / 8) bytes; the filter has 8m
// bits, bit i is bit (i % 8) of byte i / 8; k = round(bits_per_key * ln 2) clamped to
// 1...30. Probes use double hashing from one 32-bit hash h = bloomHash(key) (LevelDB's
// util/hash.cc with seed 0xbc9f1d34, defined below):
//
//   delta = rotate_right(h, 17)          -- (h >> 17) | (h << 15)
//   repeat k times: set/test bit (h mod 8m); h = h + delta   (32-bit wrapping)
//
// Any other last byte (0, 31...0x80, 0x82...) and a filter shorter than 2 bytes answer "may
// contain" for every key, so an older reader treats a local filter as no filter.

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

/// Collects key hashes and writes one cache-local bloom filter. Not thread-safe.
struct BloomFilterBuilder {
    let bitsPerKey: Int
    private var hashes: [UInt64] = []

    init(bitsPerKey: Int) {
        precondition(bitsPerKey > 0)
        self.bitsPerKey = bitsPerKey
    }

    /// Probe count of a local filter for `bitsPerKey` (RocksDB's FastLocalBloom choice, which
    /// minimizes the false-positive rate for a 512-bit line): 1...12 by bits per key, then
    /// growing to 24.
    static func localProbes(bitsPerKey: Int) -> Int {
        let millibits = bitsPerKey * 1000
        let thresholds = [2080, 3580, 5100, 6640, 8300, 10070, 11720, 14001, 16050, 18300, 22001, 25501]
        if let i = thresholds.firstIndex(where: { millibits <= $0 }) { return i + 1 }
        return Swift.min(24, 12 + (millibits - 25501) / 4000 + 1)
    }

    /// Number of keys added.
    var count: Int { hashes.count }

    mutating func add(_ key: UnsafeRawBufferPointer) {
        hashes.append(keyHash64(key))
    }

    /// The filter bytes (lines, k, the local marker).
    func finish() -> [UInt8] {
        let k = Self.localProbes(bitsPerKey: bitsPerKey)
        let lines = Swift.max(1, (hashes.count * bitsPerKey + 511) / 512)
        var out = [UInt8](repeating: 0, count: lines * 64 + 2)
        out[lines * 64] = UInt8(k)
        out[lines * 64 + 1] = BloomFilter.localMarker
        out.withUnsafeMutableBufferPointer { filter in
            for h in hashes {
                let line = BloomFilter.line(of: h, lines: lines) * 64
                var x = UInt32(truncatingIfNeeded: h)
                for _ in 0..<k {
                    let bit = Int(x >> 23)
                    filter[line + bit >> 3] |= UInt8(1) << UInt8(bit & 7)
                    x = x &* 0x9E37_79B9
                }
            }
        }
        return out
    }
}

/// A bloom filter read from a table (either encoding of the grammar above); immutable.
///
/// The bytes are copied into 64-byte-aligned memory, so each line of a local filter is one
/// cache line.
struct BloomFilter: Sendable {
    /// The last byte of a local filter.
    static let localMarker: UInt8 = 0x81

    private enum Kind {
        /// Matches everything (malformed, or an unknown encoding).
        case everything
        case local(lines: Int, probes: Int)
        case legacy(bits: UInt64, probes: Int)
    }

    private final class Storage: @unchecked Sendable {
        // @unchecked Sendable: written once in init, read-only afterwards.
        let pointer: UnsafeMutableRawPointer
        let count: Int

        init(_ bytes: UnsafeRawBufferPointer) {
            count = bytes.count
            pointer = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(count, 1), alignment: 64)
            if let base = bytes.baseAddress { pointer.copyMemory(from: base, byteCount: count) }
        }

        deinit { pointer.deallocate() }
    }

    private let storage: Storage
    private let kind: Kind

    init(bytes: [UInt8]) {
        storage = bytes.withUnsafeBytes { Storage($0) }
        let n = bytes.count
        if n < 2 {
            kind = .everything
        } else if bytes[n - 1] == Self.localMarker {
            let k = Int(bytes[n - 2])
            if n >= 66, (n - 2) % 64 == 0, (1...24).contains(k) {
                kind = .local(lines: (n - 2) / 64, probes: k)
            } else {
                kind = .everything
            }
        } else if (1...30).contains(Int(bytes[n - 1])) {
            kind = .legacy(bits: UInt64((n - 1) * 8), probes: Int(bytes[n - 1]))
        } else {
            kind = .everything
        }
    }

    /// Size of the filter block in bytes.
    var size: Int { storage.count }

    /// The line a key of hash `h` uses in a local filter of `lines` lines.
    @inline(__always)
    static func line(of h: UInt64, lines: Int) -> Int {
        Int(((h >> 32) &* UInt64(lines)) >> 32)
    }

    /// Whether `key` may have been added. False means it certainly was not.
    @inline(__always)
    func mayContain(_ key: UnsafeRawBufferPointer) -> Bool {
        mayContain(key, hash: keyHash64(key))
    }

    /// ``mayContain(_:)`` for a key whose ``keyHash64(_:)`` the caller has computed.
    @inline(__always)
    func mayContain(_ key: UnsafeRawBufferPointer, hash h: UInt64) -> Bool {
        let base = UnsafeRawPointer(storage.pointer)
        switch kind {
        case .local(let lines, let k):
            let line = base + Self.line(of: h, lines: lines) * 64
            var x = UInt32(truncatingIfNeeded: h)
            for _ in 0..<k {
                let bit = Int(x >> 23)
                if line.load(fromByteOffset: bit >> 3, as: UInt8.self) & (UInt8(1) << UInt8(bit & 7)) == 0 { return false }
                x = x &* 0x9E37_79B9
            }
            return true
        case .legacy(let totalBits, let k):
            var g = bloomHash(key)
            let delta = (g >> 17) | (g << 15)
            for _ in 0..<k {
                let bit = Int(UInt64(g) % totalBits)
                if base.load(fromByteOffset: bit >> 3, as: UInt8.self) & (UInt8(1) << UInt8(bit & 7)) == 0 { return false }
                g &+= delta
            }
            return true
        case .everything:
            return true
        }
    }

    /// Starts loading the line a ``mayContain(_:hash:)`` of hash `h` reads (local filters;
    /// nothing for the others).
    @inline(__always)
    func prefetch(hash h: UInt64) {
        if case .local(let lines, _) = kind {
            shale_prefetch(storage.pointer + Self.line(of: h, lines: lines) * 64)
        }
    }
}
