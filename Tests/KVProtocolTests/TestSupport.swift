import KVProtocol
import NIOCore

#if canImport(Darwin)
    import Darwin
#elseif canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// SplitMix64: small, fast and fully determined by its seed, so failures replay.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The seed for randomized tests: `KVPROTOCOL_TEST_SEED` when set, otherwise random.
/// Printed so that a failing run can be replayed.
func testSeed(_ test: String) -> UInt64 {
    let seed: UInt64
    if let text = getenv("KVPROTOCOL_TEST_SEED"), let fixed = UInt64(String(cString: text)) {
        seed = fixed
    } else {
        seed = UInt64.random(in: 0...UInt64.max)
    }
    print("\(test): seed \(seed) (replay with KVPROTOCOL_TEST_SEED=\(seed))")
    return seed
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

func buffer(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

/// The chunkings every drip-fed input goes through: whole, one byte at a time, and
/// `randomCount` random partitions drawn from `rng`.
func chunkings(of count: Int, randomCount: Int = 8, rng: inout SeededGenerator) -> [(String, [Int])] {
    var result: [(String, [Int])] = [("whole", [count]), ("byte-by-byte", Array(repeating: 1, count: count))]
    for round in 0..<randomCount {
        var sizes: [Int] = []
        var left = count
        let maxChunk = max(1, Int.random(in: 1...max(1, min(count, 4096)), using: &rng))
        while left > 0 {
            let size = min(left, Int.random(in: 1...maxChunk, using: &rng))
            sizes.append(size)
            left -= size
        }
        result.append(("random #\(round)", sizes))
    }
    return result
}

/// What a decoder produced from a whole stream.
struct Outcome<Message: Equatable>: Equatable {
    var messages: [Message] = []
    var error: RESPProtocolError? = nil
    /// Bytes left unconsumed at the end (only compared when there is no error).
    var leftover = 0
}

/// Feeds `input` in chunks of `sizes`, draining messages after each chunk the way NIO's
/// `ByteToMessageHandler` does, and now and then discarding read bytes as it does.
func feed<Message>(
    _ input: [UInt8], sizes: [Int], decode: (inout ByteBuffer) throws(RESPProtocolError) -> Message?
) -> Outcome<Message> {
    var outcome = Outcome<Message>()
    var pending = ByteBuffer()
    var position = 0
    for (index, size) in sizes.enumerated() {
        pending.writeBytes(input[position..<(position + size)])
        position += size
        do throws(RESPProtocolError) {
            while let message = try decode(&pending) {
                outcome.messages.append(message)
            }
        } catch {
            outcome.error = error
            return outcome
        }
        if index % 7 == 0 { pending.discardReadBytes() }
    }
    outcome.leftover = pending.readableBytes
    return outcome
}

/// Decodes requests from `input` under every chunking and returns the outcome, recording
/// an issue if any chunking disagrees with decoding the input whole.
func decodeRequestsEverySplit(
    _ input: [UInt8], limits: RESPLimits = .default, authenticationRequired: Bool = false,
    rng: inout SeededGenerator, randomCount: Int = 8
) -> (whole: Outcome<RESPRequest>, mismatches: [String]) {
    var whole: Outcome<RESPRequest>? = nil
    var mismatches: [String] = []
    for (name, sizes) in chunkings(of: input.count, randomCount: randomCount, rng: &rng) {
        var decoder = RESPRequestDecoder(limits: limits, authenticationRequired: authenticationRequired)
        var outcome = feed(input, sizes: sizes) { (buffer: inout ByteBuffer) throws(RESPProtocolError) in
            try decoder.decode(buffer: &buffer)
        }
        if outcome.error != nil { outcome.leftover = 0 }
        if let whole {
            if outcome != whole { mismatches.append("\(name) \(sizes.prefix(20))") }
        } else {
            whole = outcome
        }
    }
    return (whole ?? Outcome(), mismatches)
}

/// Decodes replies from `input` under every chunking, like ``decodeRequestsEverySplit``.
func decodeValuesEverySplit(
    _ input: [UInt8], limits: RESPLimits = .default, rng: inout SeededGenerator, randomCount: Int = 8
) -> (whole: Outcome<RESPValue>, mismatches: [String]) {
    var whole: Outcome<RESPValue>? = nil
    var mismatches: [String] = []
    for (name, sizes) in chunkings(of: input.count, randomCount: randomCount, rng: &rng) {
        var decoder = RESPValueDecoder(limits: limits)
        var outcome = feed(input, sizes: sizes) { (buffer: inout ByteBuffer) throws(RESPProtocolError) in
            try decoder.decode(buffer: &buffer)
        }
        if outcome.error != nil { outcome.leftover = 0 }
        if let whole {
            if outcome != whole { mismatches.append("\(name) \(sizes.prefix(20))") }
        } else {
            whole = outcome
        }
    }
    return (whole ?? Outcome(), mismatches)
}

extension RESPRequest {
    /// The arguments as byte arrays, for readable expectations.
    var byteArguments: [[UInt8]] { arguments.map { Array($0.readableBytesView) } }
}
