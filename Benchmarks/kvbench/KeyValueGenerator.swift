/// LevelDB's `Random`: the Park–Miller "minimal standard" generator (seed * 16807 mod
/// 2^31 - 1). kvbench uses it wherever db_bench does, so that with the same seeds it
/// produces the same values and the same key sequence as LevelDB's db_bench.
struct LevelDBRandom {
    private var seed: UInt32

    /// A generator seeded like LevelDB's: the low 31 bits of `seed`, with 0 and 2^31 - 1
    /// (the two fixed points) replaced by 1.
    init(seed: UInt32) {
        var s = seed & 0x7fff_ffff
        if s == 0 || s == 2_147_483_647 { s = 1 }
        self.seed = s
    }

    /// The next value in [1, 2^31 - 2].
    @inline(__always)
    mutating func next() -> UInt32 {
        let m: UInt64 = 2_147_483_647
        let product = UInt64(seed) &* 16807
        var s = (product >> 31) &+ (product & m)
        if s > m { s -= m }
        seed = UInt32(truncatingIfNeeded: s)
        return seed
    }

    /// A value in [0, n), `n > 0`: `next() % n`, as LevelDB's `Uniform`.
    @inline(__always)
    mutating func uniform(_ n: Int) -> Int {
        Int(next()) % n
    }
}

/// SplitMix64: a fast 64-bit generator for the YCSB distributions, which need uniform
/// doubles and more than 31 bits.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    @inline(__always)
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A double uniform in [0, 1).
    @inline(__always)
    mutating func nextDouble() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// A value uniform in [0, n), `n > 0`.
    @inline(__always)
    mutating func uniform(_ n: Int) -> Int {
        Int(truncatingIfNeeded: next() % UInt64(n))
    }
}

/// The value source of db_bench's `RandomGenerator`: a pool of at least 1 MiB built from
/// 100-byte pieces, each made by `CompressibleString` — `Int(100 * ratio)` (at least 1)
/// random printable bytes (`' ' + uniform(95)`) repeated to fill the piece — from a
/// `LevelDBRandom` seeded with 301. Values are consecutive slices of the pool, wrapping to
/// the start when the next slice would run past the end, so with `compression_ratio` 0.5
/// each value compresses to about half its size, exactly as db_bench's values do.
///
/// The pool is immutable after creation and shared by every thread; each thread keeps its
/// own position (``Cursor``).
// @unchecked Sendable: the buffer is written only in `init` and freed in `deinit`; every
// other access is a read.
final class ValuePool: @unchecked Sendable {
    private let storage: UnsafeMutableRawBufferPointer
    /// Pool size in bytes.
    var count: Int { storage.count }

    /// Builds the pool for values of up to `maxValueSize` bytes.
    init(compressionRatio: Double, maxValueSize: Int) {
        var rnd = LevelDBRandom(seed: 301)
        var data: [UInt8] = []
        let target = max(1_048_576, maxValueSize + 1)
        data.reserveCapacity(target + 100)
        var raw: [UInt8] = []
        while data.count < target {
            let rawLength = max(1, Int(100 * compressionRatio))
            raw.removeAll(keepingCapacity: true)
            for _ in 0..<rawLength { raw.append(UInt8(32 + rnd.uniform(95))) }
            var piece = 0
            while piece < 100 {
                let n = min(raw.count, 100 - piece)
                data.append(contentsOf: raw[0..<n])
                piece += n
            }
        }
        storage = .allocate(byteCount: data.count, alignment: 16)
        data.withUnsafeBytes { storage.copyMemory(from: $0) }
    }

    deinit { storage.deallocate() }

    /// One thread's position in the pool.
    struct Cursor {
        var position = 0
    }

    /// The next `length` bytes for `cursor` (db_bench's `Generate(len)`). Valid while the
    /// pool lives.
    @inline(__always)
    func next(_ length: Int, _ cursor: inout Cursor) -> UnsafeRawBufferPointer {
        if cursor.position + length > storage.count { cursor.position = 0 }
        let start = cursor.position
        cursor.position += length
        return UnsafeRawBufferPointer(rebasing: storage[start..<start + length])
    }
}

/// A reusable key buffer holding a key number as zero-padded decimal, the format of
/// LevelDB's db_bench (`%016d` for 16-byte keys). Keys of any `key_size` are the number
/// padded with leading zeros to exactly `key_size` digits, so byte order is numeric order.
struct KeyBuffer {
    /// The key bytes; updated in place by ``set(_:)`` (no allocation once created).
    private(set) var bytes: [UInt8]

    init(size: Int) {
        bytes = [UInt8](repeating: UInt8(ascii: "0"), count: size)
    }

    /// The largest key number that fits in `size` digits.
    static func maxNumber(size: Int) -> Int {
        if size >= 19 { return Int.max }
        var n = 1
        for _ in 0..<size { n *= 10 }
        return n - 1
    }

    /// Formats `number` (non-negative, at most ``maxNumber(size:)``) into the buffer.
    @inline(__always)
    mutating func set(_ number: Int) {
        bytes.withUnsafeMutableBufferPointer { buf in
            var v = UInt64(number)
            var i = buf.count - 1
            while i >= 0 {
                buf[i] = UInt8(truncatingIfNeeded: v % 10) &+ 48
                v /= 10
                i -= 1
            }
        }
    }
}
