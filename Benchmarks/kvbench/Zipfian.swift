#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// YCSB's `ZipfianGenerator`: integers in [0, items) where item `i` has probability
/// proportional to `1 / (i + 1)^theta`, drawn in O(1) with the method of Gray et al.,
/// "Quickly Generating Billion-Record Synthetic Databases" (SIGMOD 1994).
///
/// The item count may grow between draws (``next(items:using:)``); ζ(n) is then extended
/// incrementally from the previous count, as YCSB does for its "latest" distribution.
struct ZipfianGenerator {
    /// YCSB's default skew.
    static let defaultTheta = 0.99

    let theta: Double
    private let alpha: Double
    private let zeta2theta: Double
    /// 1 + 0.5^theta: below it (times ζ(n)) the draw is item 1.
    private let secondThreshold: Double
    private var zetan: Double
    private var eta: Double
    private(set) var items: Int

    /// A generator over [0, items), computing ζ(items) (O(items)) unless `zetan` is given.
    init(items: Int, theta: Double = defaultTheta, zetan: Double? = nil) {
        precondition(items > 0, "a zipfian distribution needs at least one item")
        self.theta = theta
        self.items = items
        alpha = 1 / (1 - theta)
        zeta2theta = Self.zeta(from: 0, to: 2, theta: theta, initial: 0)
        secondThreshold = 1 + pow(0.5, theta)
        let z = zetan ?? Self.zeta(from: 0, to: items, theta: theta, initial: 0)
        self.zetan = z
        eta = Self.eta(items: items, theta: theta, zeta2theta: zeta2theta, zetan: z)
    }

    /// ζ(to) given ζ(from) = `initial`: `initial + Σ_{i=from+1}^{to} 1 / i^theta`.
    static func zeta(from: Int, to: Int, theta: Double, initial: Double) -> Double {
        var sum = initial
        var i = from
        while i < to {
            sum += 1 / pow(Double(i + 1), theta)
            i += 1
        }
        return sum
    }

    private static func eta(items: Int, theta: Double, zeta2theta: Double, zetan: Double) -> Double {
        (1 - pow(2 / Double(items), 1 - theta)) / (1 - zeta2theta / zetan)
    }

    /// The next item in [0, items).
    @inline(__always)
    mutating func next(using rng: inout SplitMix64) -> Int {
        draw(rng.nextDouble())
    }

    /// The next item in [0, newItems), first growing the distribution to `newItems` items if
    /// that is more than before (counts never shrink).
    mutating func next(items newItems: Int, using rng: inout SplitMix64) -> Int {
        if newItems > items {
            zetan = Self.zeta(from: items, to: newItems, theta: theta, initial: zetan)
            items = newItems
            eta = Self.eta(items: items, theta: theta, zeta2theta: zeta2theta, zetan: zetan)
        }
        return draw(rng.nextDouble())
    }

    @inline(__always)
    private func draw(_ u: Double) -> Int {
        let uz = u * zetan
        if uz < 1 { return 0 }
        if uz < secondThreshold { return min(1, items - 1) }
        let v = Int(Double(items) * pow(eta * u - eta + 1, alpha))
        return min(v, items - 1)
    }
}

/// YCSB's `ScrambledZipfianGenerator`: zipfian popularity, but the popular items are spread
/// over the key space by hashing (FNV-1a 64) a draw from a zipfian over 10^10 items, whose
/// ζ is precomputed, so creating one costs O(1) whatever the item count.
struct ScrambledZipfianGenerator {
    private static let itemCount = 10_000_000_000
    /// ζ(10^10) for theta 0.99, YCSB's constant.
    private static let zetan = 26.46902820178302

    private var zipfian: ZipfianGenerator
    /// Number of keys the result is reduced to.
    let items: Int

    init(items: Int) {
        precondition(items > 0, "a zipfian distribution needs at least one item")
        self.items = items
        zipfian = ZipfianGenerator(items: Self.itemCount, theta: ZipfianGenerator.defaultTheta, zetan: Self.zetan)
    }

    /// The next key number in [0, items).
    @inline(__always)
    mutating func next(using rng: inout SplitMix64) -> Int {
        let v = zipfian.next(using: &rng)
        return Int(Self.fnv64(UInt64(v)) % UInt64(items))
    }

    /// YCSB's `fnvhash64`: FNV-1a over the 8 bytes of `value`, low byte first, then the
    /// absolute value as a signed 64-bit number.
    static func fnv64(_ value: UInt64) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        var v = value
        for _ in 0..<8 {
            hash ^= v & 0xFF
            hash = hash &* 1_099_511_628_211
            v >>= 8
        }
        return Int64(bitPattern: hash).magnitude
    }
}

/// YCSB's `SkewedLatestGenerator`: the most recently inserted keys are the most popular.
/// Returns `latest - zipfian(latest + 1)`, where `latest` is the highest key number
/// inserted so far.
struct SkewedLatestGenerator {
    private var zipfian: ZipfianGenerator

    /// A generator for a key space that currently ends at `latest` (inclusive).
    init(latest: Int) {
        zipfian = ZipfianGenerator(items: max(1, latest + 1))
    }

    /// The next key number in [0, latest].
    @inline(__always)
    mutating func next(latest: Int, using rng: inout SplitMix64) -> Int {
        latest - zipfian.next(items: latest + 1, using: &rng)
    }
}
