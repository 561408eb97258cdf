import KVProtocol
import NIOCore
import Testing

/// Random values for round trips: every RESP type, nested up to `depth`.
struct ValueGenerator {
    var rng: SeededGenerator

    mutating func bytes(maxCount: Int = 24) -> [UInt8] {
        let count = Int.random(in: 0...maxCount, using: &rng)
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }

    /// Text without CR or LF, as simple strings must be.
    mutating func line() -> String {
        let count = Int.random(in: 0...16, using: &rng)
        let scalars = (0..<count).map { _ in Unicode.Scalar(UInt8.random(in: 0x20...0x7E, using: &rng)) }
        return String(String.UnicodeScalarView(scalars))
    }

    mutating func double() -> Double {
        switch Int.random(in: 0..<6, using: &rng) {
        case 0: return [Double.infinity, -.infinity, 0, -0.0, 1, -1].randomElement(using: &rng)!
        case 1: return Double(Int.random(in: -1_000_000...1_000_000, using: &rng))
        case 2: return Double.random(in: -1000...1000, using: &rng)
        default:
            while true {
                let value = Double(bitPattern: rng.next())
                if value.isFinite { return value }
            }
        }
    }

    mutating func value(depth: Int) -> RESPValue {
        let scalarKinds = 13
        let kinds = depth > 0 ? scalarKinds + 5 : scalarKinds
        switch Int.random(in: 0..<kinds, using: &rng) {
        case 0: return .simpleString(line())
        case 1: return .simpleError("ERR " + line())
        case 2: return .integer(Int64.random(in: .min ... .max, using: &rng))
        case 3: return .bulkString(ByteBuffer(bytes: bytes()))
        case 4: return .bulkString(nil)
        case 5: return .array(nil)
        case 6: return .null
        case 7: return .boolean(Bool.random(using: &rng))
        case 8: return .double(double())
        case 9:
            let digits =
                String(UInt64.random(in: 0 ... .max, using: &rng)) + String(UInt64.random(in: 0 ... .max, using: &rng))
            return .bigNumber(Bool.random(using: &rng) ? "-" + digits : digits)
        case 10: return .bulkError(ByteBuffer(string: "ERR " + line()))
        case 11: return .verbatimString(format: ["txt", "mkd"].randomElement(using: &rng)!, ByteBuffer(bytes: bytes()))
        case 12: return .bulkString(ByteBuffer(bytes: [0x0D, 0x0A, 0x00]))
        case 13: return .array(elements(depth: depth))
        case 14: return .set(elements(depth: depth))
        case 15: return .push(elements(depth: depth))
        case 16: return .map(entries(depth: depth))
        default: return .attribute(entries(depth: depth), value(depth: depth - 1))
        }
    }

    mutating func elements(depth: Int) -> [RESPValue] {
        (0..<Int.random(in: 0...4, using: &rng)).map { _ in value(depth: depth - 1) }
    }

    mutating func entries(depth: Int) -> [RESPValue.Entry] {
        (0..<Int.random(in: 0...3, using: &rng)).map { _ in
            RESPValue.Entry(key: value(depth: depth - 1), value: value(depth: depth - 1))
        }
    }
}

/// What a client reads back after `value` is written in `version`: the downgrade rules.
func expectedReadBack(_ value: RESPValue, _ version: RESPVersion) -> RESPValue {
    func flat(_ entries: [RESPValue.Entry]) -> [RESPValue] {
        entries.flatMap { [expectedReadBack($0.key, version), expectedReadBack($0.value, version)] }
    }
    func entries(_ entries: [RESPValue.Entry]) -> [RESPValue.Entry] {
        entries.map { .init(key: expectedReadBack($0.key, version), value: expectedReadBack($0.value, version)) }
    }
    switch (version, value) {
    case (.resp3, .bulkString(nil)), (.resp3, .array(nil)): return .null
    case (_, .array(let elements?)): return .array(elements.map { expectedReadBack($0, version) })
    case (.resp3, .set(let elements)): return .set(elements.map { expectedReadBack($0, version) })
    case (.resp3, .push(let elements)): return .push(elements.map { expectedReadBack($0, version) })
    case (.resp3, .map(let pairs)): return .map(entries(pairs))
    case (.resp3, .attribute(let pairs, let inner)): return .attribute(entries(pairs), expectedReadBack(inner, version))
    case (.resp3, _): return value
    case (.resp2, .null): return .bulkString(nil)
    case (.resp2, .boolean(let flag)): return .integer(flag ? 1 : 0)
    case (.resp2, .double(let number)): return RESPValue(bulk: RESPEncoder.formatDouble(number))
    case (.resp2, .bigNumber(let digits)): return RESPValue(bulk: digits)
    case (.resp2, .bulkError(let text)): return .simpleError(String(buffer: text))
    case (.resp2, .verbatimString(_, let text)): return .bulkString(text)
    case (.resp2, .map(let pairs)): return .array(flat(pairs))
    case (.resp2, .set(let elements)), (.resp2, .push(let elements)):
        return .array(elements.map { expectedReadBack($0, version) })
    case (.resp2, .attribute(_, let inner)): return expectedReadBack(inner, version)
    case (.resp2, _): return value
    }
}

@Suite("Round trip")
struct RESPRoundTripTests {
    @Test(arguments: [RESPVersion.resp2, .resp3])
    func randomNestedValues(_ version: RESPVersion) throws {
        var generator = ValueGenerator(rng: SeededGenerator(seed: testSeed("randomNestedValues \(version)")))
        let encoder = RESPEncoder(version: version)
        var values: [RESPValue] = []
        var stream = ByteBuffer()
        for _ in 0..<400 {
            let value = generator.value(depth: 4)
            values.append(value)
            encoder.write(value, into: &stream)
        }
        let expected = values.map { expectedReadBack($0, version) }
        let (outcome, mismatches) = decodeValuesEverySplit(
            Array(stream.readableBytesView), rng: &generator.rng, randomCount: 3)
        #expect(mismatches.isEmpty)
        #expect(outcome.error == nil)
        #expect(outcome.leftover == 0)
        #expect(outcome.messages.count == expected.count)
        for (index, (got, want)) in zip(outcome.messages, expected).enumerated() where got != want {
            Issue.record("value \(index): wrote \(values[index]), read \(got), expected \(want)")
            break
        }
    }

    @Test func commandsRoundTripThroughTheRequestDecoder() throws {
        var generator = ValueGenerator(rng: SeededGenerator(seed: testSeed("commandsRoundTrip")))
        var stream = ByteBuffer()
        var expected: [[[UInt8]]] = []
        for _ in 0..<500 {
            let count = Int.random(in: 1...6, using: &generator.rng)
            let arguments = (0..<count).map { _ in generator.bytes(maxCount: 64) }
            expected.append(arguments)
            RESPEncoder().writeCommand(arguments.map { ByteBuffer(bytes: $0) }, into: &stream)
        }
        let (outcome, mismatches) = decodeRequestsEverySplit(
            Array(stream.readableBytesView), rng: &generator.rng, randomCount: 3)
        #expect(mismatches.isEmpty)
        #expect(outcome.error == nil)
        #expect(outcome.messages.map(\.byteArguments) == expected)
    }
}
