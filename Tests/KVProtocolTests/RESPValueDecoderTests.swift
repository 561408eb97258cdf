import KVProtocol
import NIOCore
import Testing

/// One reply input with the values it holds, or the error it must raise.
struct ReplyCase: Sendable, CustomTestStringConvertible {
    var name: String
    var input: String
    var expected: [RESPValue]
    var error: RESPProtocolError.Code? = nil
    var testDescription: String { name }
}

extension ReplyCase {
    static let wellFormed: [ReplyCase] = [
        ReplyCase(name: "simple string", input: "+OK\r\n", expected: [.ok]),
        ReplyCase(name: "simple string with lone CR", input: "+a\rb\r\n", expected: [.simpleString("a\rb")]),
        ReplyCase(name: "error", input: "-ERR nope\r\n", expected: [.simpleError("ERR nope")]),
        ReplyCase(
            name: "integers", input: ":0\r\n:-12\r\n:+5\r\n", expected: [.integer(0), .integer(-12), .integer(5)]),
        ReplyCase(name: "bulk string", input: "$5\r\nhel\r\n\r\n", expected: [RESPValue(bulk: "hel\r\n")]),
        ReplyCase(name: "empty bulk string", input: "$0\r\n\r\n", expected: [RESPValue(bulk: "")]),
        ReplyCase(name: "null bulk string", input: "$-1\r\n", expected: [.bulkString(nil)]),
        ReplyCase(name: "null array", input: "*-1\r\n", expected: [.array(nil)]),
        ReplyCase(name: "empty array", input: "*0\r\n", expected: [.array([])]),
        ReplyCase(
            name: "nested arrays", input: "*2\r\n*1\r\n:1\r\n*0\r\n",
            expected: [.array([.array([.integer(1)]), .array([])])]),
        ReplyCase(name: "null", input: "_\r\n", expected: [.null]),
        ReplyCase(name: "booleans", input: "#t\r\n#f\r\n", expected: [.boolean(true), .boolean(false)]),
        ReplyCase(
            name: "doubles", input: ",1.5\r\n,-0\r\n,inf\r\n,-inf\r\n,1e-7\r\n,10\r\n",
            expected: [
                .double(1.5), .double(-0.0), .double(.infinity), .double(-.infinity), .double(1e-7), .double(10),
            ]),
        ReplyCase(
            name: "big number", input: "(-123456789012345678901234567890\r\n",
            expected: [.bigNumber("-123456789012345678901234567890")]),
        ReplyCase(
            name: "bulk error", input: "!21\r\nSYNTAX invalid syntax\r\n",
            expected: [.bulkError(ByteBuffer(string: "SYNTAX invalid syntax"))]),
        ReplyCase(
            name: "verbatim string", input: "=15\r\ntxt:Some string\r\n",
            expected: [.verbatimString(format: "txt", ByteBuffer(string: "Some string"))]),
        ReplyCase(
            name: "map", input: "%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n",
            expected: [
                .map([
                    .init(key: .simpleString("first"), value: .integer(1)),
                    .init(key: .simpleString("second"), value: .integer(2)),
                ])
            ]),
        ReplyCase(name: "empty map and set", input: "%0\r\n~0\r\n", expected: [.map([]), .set([])]),
        ReplyCase(name: "set", input: "~2\r\n+a\r\n:1\r\n", expected: [.set([.simpleString("a"), .integer(1)])]),
        ReplyCase(
            name: "attribute", input: "|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.1923\r\n*1\r\n:2039123\r\n",
            expected: [
                .attribute(
                    [
                        .init(
                            key: .simpleString("key-popularity"),
                            value: .map([.init(key: RESPValue(bulk: "a"), value: .double(0.1923))]))
                    ],
                    .array([.integer(2_039_123)]))
            ]),
        ReplyCase(
            name: "attribute inside an array", input: "*2\r\n:1\r\n|0\r\n:2\r\n",
            expected: [.array([.integer(1), .attribute([], .integer(2))])]),
        ReplyCase(
            name: "push", input: ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
            expected: [.push([RESPValue(bulk: "message"), RESPValue(bulk: "ch"), RESPValue(bulk: "hi")])]),
        ReplyCase(name: "partial value waits", input: "*2\r\n:1\r\n", expected: []),
        ReplyCase(name: "partial bulk waits", input: "$10\r\nabc", expected: []),
    ]

    static let malformed: [ReplyCase] = [
        ReplyCase(name: "unknown type byte", input: "?x\r\n", expected: [], error: .invalidReply),
        ReplyCase(name: "bad integer", input: ":12a\r\n", expected: [], error: .invalidReply),
        ReplyCase(name: "integer overflow", input: ":99999999999999999999\r\n", expected: [], error: .invalidReply),
        ReplyCase(name: "bad boolean", input: "#x\r\n", expected: [], error: .invalidReply),
        ReplyCase(name: "bad null", input: "_x\r\n", expected: [], error: .invalidReply),
        ReplyCase(name: "bad double", input: ",abc\r\n", expected: [], error: .invalidReply),
        ReplyCase(name: "bad big number", input: "(12a\r\n", expected: [], error: .invalidReply),
        ReplyCase(name: "negative bulk length", input: "$-2\r\n", expected: [], error: .invalidReply),
        ReplyCase(name: "null bulk error", input: "!-1\r\n", expected: [], error: .invalidReply),
        ReplyCase(name: "payload without CRLF", input: "$3\r\nabcXY", expected: [], error: .invalidReply),
        ReplyCase(name: "short verbatim", input: "=3\r\ntxt\r\n", expected: [], error: .invalidReply),
        ReplyCase(name: "verbatim without colon", input: "=5\r\ntxt-x\r\n", expected: [], error: .invalidReply),
        ReplyCase(name: "negative aggregate", input: "*-2\r\n", expected: [], error: .invalidReply),
        ReplyCase(name: "null map", input: "%-1\r\n", expected: [], error: .invalidReply),
        ReplyCase(name: "streamed aggregate", input: "*?\r\n", expected: [], error: .invalidReply),
        ReplyCase(
            name: "error after values", input: ":1\r\n+OK\r\n:x\r\n", expected: [.integer(1), .ok],
            error: .invalidReply),
    ]
}

@Suite("RESPValueDecoder")
struct RESPValueDecoderTests {
    @Test("replies decode identically under every split", arguments: ReplyCase.wellFormed)
    func wellFormed(_ testCase: ReplyCase) {
        var rng = SeededGenerator(seed: testSeed("reply \(testCase.name)"))
        let (outcome, mismatches) = decodeValuesEverySplit(bytes(testCase.input), rng: &rng)
        #expect(mismatches.isEmpty, "chunkings disagree: \(mismatches)")
        #expect(outcome.error == nil)
        #expect(outcome.messages == testCase.expected)
    }

    @Test("malformed replies fail under every split", arguments: ReplyCase.malformed)
    func malformed(_ testCase: ReplyCase) {
        var rng = SeededGenerator(seed: testSeed("bad reply \(testCase.name)"))
        let (outcome, mismatches) = decodeValuesEverySplit(bytes(testCase.input), rng: &rng)
        #expect(mismatches.isEmpty, "chunkings disagree: \(mismatches)")
        #expect(outcome.error?.code == testCase.error)
        #expect(outcome.messages == testCase.expected)
    }

    @Test func nanDecodes() throws {
        var decoder = RESPValueDecoder()
        var input = ByteBuffer(string: ",nan\r\n")
        guard case .double(let value)? = try decoder.decode(buffer: &input) else {
            Issue.record("not a double")
            return
        }
        #expect(value.isNaN)
    }

    @Test func nestingDepthIsCapped() {
        var rng = SeededGenerator(seed: testSeed("nestingDepthIsCapped"))
        let limits = RESPLimits(maxNestingDepth: 8)
        let atLimit = String(repeating: "*1\r\n", count: 8) + ":1\r\n"
        let (ok, okMismatches) = decodeValuesEverySplit(bytes(atLimit), limits: limits, rng: &rng)
        #expect(okMismatches.isEmpty)
        #expect(ok.error == nil)
        #expect(ok.messages.count == 1)

        let tooDeep = String(repeating: "*1\r\n", count: 9) + ":1\r\n"
        let (deep, deepMismatches) = decodeValuesEverySplit(bytes(tooDeep), limits: limits, rng: &rng)
        #expect(deepMismatches.isEmpty)
        #expect(deep.error?.code == .nestingTooDeep)
    }

    @Test func hugeNestingFailsWithoutRecursion() throws {
        var decoder = RESPValueDecoder()
        var input = ByteBuffer(string: String(repeating: "*1\r\n", count: 200_000))
        #expect(throws: RESPProtocolError.self) { try decoder.decode(buffer: &input) }
    }

    @Test func linesAreLimited() {
        var rng = SeededGenerator(seed: testSeed("linesAreLimited"))
        let limits = RESPLimits(maxBulkLength: 10, maxInlineLength: 5)
        let cases: [(String, Bool)] = [
            ("+0123456789\r\n", true), ("+0123456789a\r\n", false),
            (":12345\r\n", true), (":123456\r\n", false),
            ("$10\r\n0123456789\r\n", true), ("$11\r\n", false),
        ]
        for (input, succeeds) in cases {
            let (outcome, mismatches) = decodeValuesEverySplit(bytes(input), limits: limits, rng: &rng)
            #expect(mismatches.isEmpty, "\(input.debugDescription)")
            #expect((outcome.error == nil) == succeeds, "\(input.debugDescription)")
        }
    }

    @Test func errorsAreLatched() {
        var decoder = RESPValueDecoder()
        var bad = ByteBuffer(string: "?\r\n")
        #expect(throws: RESPProtocolError.self) { try decoder.decode(buffer: &bad) }
        var good = ByteBuffer(string: "+OK\r\n")
        #expect(throws: RESPProtocolError.self) { try decoder.decode(buffer: &good) }
    }

    @Test func largeArrayArrivingInPieces() throws {
        var encoded = ByteBuffer()
        let encoder = RESPEncoder(version: .resp3)
        encoder.writeArrayHeader(count: 20_000, into: &encoded)
        for index in 0..<20_000 { encoder.writeBulkString("member:\(index)", into: &encoded) }
        let input = Array(encoded.readableBytesView)
        var decoder = RESPValueDecoder()
        var pending = ByteBuffer()
        var result: RESPValue? = nil
        var position = 0
        while position < input.count {
            let end = min(input.count, position + 1000)
            pending.writeBytes(input[position..<end])
            position = end
            if let value = try decoder.decode(buffer: &pending) { result = value }
        }
        guard case .array(let elements?)? = result else {
            Issue.record("no array decoded")
            return
        }
        #expect(elements.count == 20_000)
        #expect(elements.last == RESPValue(bulk: "member:19999"))
        #expect(pending.readableBytes == 0)
    }

    @Test func valueDecoderPlugsIntoNIO() {
        _ = ByteToMessageHandler(RESPValueDecoder())
    }
}
