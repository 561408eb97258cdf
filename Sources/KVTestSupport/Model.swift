import KVBase
import KVFileSystem

#if canImport(Glibc)
import Glibc
#endif

/// The reference the randomized tests compare the engine with: a plain dictionary plus a
/// sorted view.
public struct ModelStore: Equatable, Sendable {
    public var map: [[UInt8]: [UInt8]] = [:]

    public init() {}

    public mutating func put(_ k: [UInt8], _ v: [UInt8]) { map[k] = v }
    public mutating func delete(_ k: [UInt8]) { map[k] = nil }
    public func get(_ k: [UInt8]) -> [UInt8]? { map[k] }
    public var count: Int { map.count }

    /// Entries with lower <= key < upper, ascending (or descending with `reverse`).
    public func range(_ lower: [UInt8]?, _ upper: [UInt8]?, reverse: Bool = false) -> [([UInt8], [UInt8])] {
        var out = map.filter { (k, _) in
            (lower.map { compareBytes(k, $0) >= 0 } ?? true) && (upper.map { compareBytes(k, $0) < 0 } ?? true)
        }.map { ($0.key, $0.value) }
        out.sort { compareBytes($0.0, $1.0) < 0 }
        if reverse { out.reverse() }
        return out
    }
}

/// A seed for a randomized test: `SHALE_SEED` from the environment when set (to replay a
/// failure), otherwise a fresh random one. Printed either way.
public func testSeed(_ name: String) -> UInt64 {
    let seed: UInt64
    if let s = getenv("SHALE_SEED"), let v = UInt64(String(cString: s)) {
        seed = v
    } else {
        seed = UInt64.random(in: 1...UInt64.max)
    }
    print("[\(name)] seed \(seed) (replay with SHALE_SEED=\(seed))")
    return seed
}

/// Whether long soak variants should run (`SHALE_SOAK=1`).
public var soakEnabled: Bool {
    if let s = getenv("SHALE_SOAK") { return String(cString: s) == "1" }
    return false
}

/// Seeded generator of keys and values for tests.
public struct TestRandom {
    public var rng: SplitMix64

    public init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    public mutating func next(_ bound: Int) -> Int { Int(rng.next() % UInt64(bound)) }

    public mutating func chance(_ percent: Int) -> Bool { next(100) < percent }

    /// A key from a space of `space` keys, sometimes sharing long prefixes.
    public mutating func key(space: Int) -> [UInt8] {
        let n = next(space)
        switch n % 4 {
        case 0: return Array("k\(n)".utf8)
        case 1: return Array("user:profile:\(n)".utf8)
        case 2: return [UInt8(n & 0xFF), 0, UInt8((n >> 8) & 0xFF)]
        default: return Array(String(repeating: "p", count: 40).utf8) + Array("\(n)".utf8)
        }
    }

    /// A value of up to `maxLength` random bytes (empty values included).
    public mutating func value(maxLength: Int) -> [UInt8] {
        let n = next(maxLength + 1)
        var v = [UInt8](repeating: 0, count: n)
        for i in 0..<n { v[i] = UInt8(truncatingIfNeeded: rng.next()) }
        return v
    }
}
