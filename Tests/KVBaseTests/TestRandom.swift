#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A deterministic SplitMix64 generator so randomized tests replay from a printed seed.
struct TestRandom: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E9B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &self) }
    }
}

/// The seed of a randomized test: `SHALE_TEST_SEED` when set, a fresh random one otherwise.
/// Always printed so a failure can be replayed.
func testSeed(_ testName: String) -> UInt64 {
    let seed: UInt64
    if let raw = getenv("SHALE_TEST_SEED"), let fixed = UInt64(String(cString: raw)) {
        seed = fixed
    } else {
        seed = UInt64.random(in: 0...UInt64.max)
    }
    print("[seed] \(testName): \(seed) (replay with SHALE_TEST_SEED=\(seed))")
    return seed
}
