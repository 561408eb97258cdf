import KVProtocol
import NIOCore
import Testing

/// One request-decoder input with what Redis makes of it.
struct RequestCase: Sendable, CustomTestStringConvertible {
    var name: String
    var input: [UInt8]
    var expected: [[[UInt8]]]
    var error: String?
    var limits = RESPLimits.default
    var authenticationRequired = false

    var testDescription: String { name }

    static func ok(_ name: String, _ input: String, _ expected: [[String]]) -> RequestCase {
        RequestCase(name: name, input: bytes(input), expected: expected.map { $0.map(bytes) }, error: nil)
    }

    static func fails(
        _ name: String, _ input: String, _ error: String, after expected: [[String]] = []
    ) -> RequestCase {
        RequestCase(name: name, input: bytes(input), expected: expected.map { $0.map(bytes) }, error: error)
    }
}

let invalidMultibulk = "ERR Protocol error: invalid multibulk length"
let invalidBulk = "ERR Protocol error: invalid bulk length"
let unbalanced = "ERR Protocol error: unbalanced quotes in request"

extension RequestCase {
    static let wellFormed: [RequestCase] = [
        .ok("single command", "*1\r\n$4\r\nPING\r\n", [["PING"]]),
        .ok("set", "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n", [["SET", "key", "value"]]),
        .ok("empty bulk $0", "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", [["ECHO", ""]]),
        .ok("*0, *-1 and *-10 are skipped", "*0\r\n*-1\r\n*-10\r\n*1\r\n$4\r\nPING\r\n", [["PING"]]),
        .ok("empty inline lines are skipped", "\r\n\n \t \r\nPING\r\n", [["PING"]]),
        .ok("inline with CRLF", "SET key value\r\n", [["SET", "key", "value"]]),
        .ok("inline with LF and extra blanks", "  GET \t  key  \n", [["GET", "key"]]),
        .ok("inline stray CR separates", "GET a\rb\r\n", [["GET", "a", "b"]]),
        .ok("inline quotes", "SET \"hello world\" 'it\\'s'\r\n", [["SET", "hello world", "it's"]]),
        .ok("inline quote inside a word", "ECHO foo\"bar baz\"\r\n", [["ECHO", "foobar baz"]]),
        .ok("inline empty quoted arguments", "ECHO \"\" '' x\r\n", [["ECHO", "", "", "x"]]),
        .ok("inline invalid hex escape is literal", "ECHO \"\\xZZ\" \"\\x4\"\r\n", [["ECHO", "xZZ", "x4"]]),
        .ok("inline single quotes keep backslashes", "ECHO 'a\\nb\\\\c'\r\n", [["ECHO", "a\\nb\\\\c"]]),
        .ok("inline backslash before closing quote", "ECHO \"abc\\\\\"\r\n", [["ECHO", "abc\\"]]),
        .ok("inline quote followed by vertical tab", "ECHO \"a\"\u{0B}b\r\n", [["ECHO", "a", "b"]]),
        .ok("inline vertical tab inside a word", "\u{0B}ECHO a\u{0B}b\r\n", [["ECHO", "a\u{0B}b"]]),
        .ok("inline dollar-prefixed line is inline", "$3\r\n", [["$3"]]),
        .ok(
            "pipeline mixing multibulk and inline",
            "*1\r\n$4\r\nPING\r\nECHO hi\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n\r\nQUIT\n",
            [["PING"], ["ECHO", "hi"], ["GET", "k"], ["QUIT"]]),
        // Redis skips the byte after a header CR and the two bytes after a payload unchecked.
        .ok("header CR followed by any byte", "*1\rX$4\rYPING\r\n", [["PING"]]),
        .ok("payload followed by any two bytes", "*2\r\n$3\r\nfooXY$3\r\nbar\r\n", [["foo", "bar"]]),
        .ok("multibulk with only LF waits for a CR", "*1\n$4\nPING\n", []),
        .ok("NUL hides the inline newline", "\u{0}PING\r\n", []),
        .ok("NUL hides the header CR", "*\u{0}1\r\n$4\r\nPING\r\n", []),
        .ok("bulk at proto-max-bulk-len waits for its bytes", "*1\r\n$536870912\r\nabc", []),
        .ok("count at the multibulk limit waits for its elements", "*1048576\r\n$1\r\na\r\n", []),
        .ok("incomplete trailing request waits", "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\n", [["PING"]]),
    ]

    static let malformed: [RequestCase] = [
        .fails("count not a number", "*abc\r\n", invalidMultibulk),
        .fails("count empty", "*\r\n", invalidMultibulk),
        .fails("count with leading zero", "*01\r\n", invalidMultibulk),
        .fails("count with plus sign", "*+1\r\n", invalidMultibulk),
        .fails("count with space", "* 1\r\n", invalidMultibulk),
        .fails("count -0", "*-0\r\n", invalidMultibulk),
        .fails("count above 1024*1024", "*1048577\r\n", invalidMultibulk),
        .fails("count out of range (Redis test)", "*20000000\r\n", invalidMultibulk),
        .fails("count overflow", "*99999999999999999999\r\n", invalidMultibulk),
        .fails("negative count overflow", "*-99999999999999999999\r\n", invalidMultibulk),
        .fails("count above Int64", "*9223372036854775808\r\n", invalidMultibulk),
        .fails("bulk length not a number (Redis test)", "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n", invalidBulk),
        .fails("negative bulk length (Redis test)", "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n", invalidBulk),
        .fails("null bulk $-1 in a request", "*1\r\n$-1\r\n", invalidBulk),
        .fails("bulk length empty", "*1\r\n$\r\n", invalidBulk),
        .fails("bulk length with leading zero", "*1\r\n$03\r\nfoo\r\n", invalidBulk),
        .fails("bulk length out of range (Redis test)", "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n", invalidBulk),
        .fails("bulk length above proto-max-bulk-len", "*1\r\n$536870913\r\n", invalidBulk),
        .fails("bulk length overflow", "*1\r\n$99999999999999999999\r\n", invalidBulk),
        .fails(
            "non-$ element (Redis test)", "*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n",
            "ERR Protocol error: expected '$', got 'f'"),
        .fails(
            "multibulk not followed by bulks (Redis test)", "*1\r\nfoo\r\n",
            "ERR Protocol error: expected '$', got 'f'"),
        .fails("integer where a bulk is expected", "*1\r\n:1\r\n", "ERR Protocol error: expected '$', got ':'"),
        .fails("empty element line", "*1\r\n\r\n", "ERR Protocol error: expected '$', got ' '"),
        .fails(
            "payload longer than its length", "*2\r\n$3\r\nfoobar\r\n",
            "ERR Protocol error: expected '$', got 'r'"),
        .fails("unterminated double quote", "ECHO \"abc\r\n", unbalanced),
        .fails("unterminated single quote", "ECHO 'abc\r\n", unbalanced),
        .fails("closing quote followed by a letter", "ECHO \"abc\"def\r\n", unbalanced),
        .fails("closing single quote followed by a letter", "ECHO 'abc'def\r\n", unbalanced),
        .fails("escaped single quote leaves quote open", "ECHO 'a\\\\'\r\n", unbalanced),
        .fails("backslash at end of quoted line", "ECHO \"abc\\\r\n", unbalanced),
        .fails(
            "error after complete requests", "*1\r\n$4\r\nPING\r\nPING\r\n*x\r\n", invalidMultibulk,
            after: [["PING"], ["PING"]]),
    ]
}

@Suite("RESPRequestDecoder")
struct RESPRequestDecoderTests {
    @Test("well-formed input decodes identically under every split", arguments: RequestCase.wellFormed)
    func wellFormed(_ testCase: RequestCase) {
        var rng = SeededGenerator(seed: testSeed("wellFormed \(testCase.name)"))
        let (outcome, mismatches) = decodeRequestsEverySplit(testCase.input, rng: &rng)
        #expect(mismatches.isEmpty, "chunkings disagree: \(mismatches)")
        #expect(outcome.error == nil)
        #expect(outcome.messages.map(\.byteArguments) == testCase.expected)
    }

    @Test("malformed input fails with Redis's error text under every split", arguments: RequestCase.malformed)
    func malformed(_ testCase: RequestCase) {
        var rng = SeededGenerator(seed: testSeed("malformed \(testCase.name)"))
        let (outcome, mismatches) = decodeRequestsEverySplit(testCase.input, rng: &rng)
        #expect(mismatches.isEmpty, "chunkings disagree: \(mismatches)")
        #expect(outcome.error?.message == testCase.error)
        #expect(outcome.messages.map(\.byteArguments) == testCase.expected)
    }

    @Test func binarySafeBulkStrings() {
        var rng = SeededGenerator(seed: testSeed("binarySafeBulkStrings"))
        let value: [UInt8] = [UInt8(ascii: "a"), 0x0D, 0x0A, 0x00, 0xFF, 0x0A, 0x0D]
        let input = bytes("*3\r\n$3\r\nSET\r\n$2\r\n\r\n\r\n$7\r\n") + value + bytes("\r\n")
        let (outcome, mismatches) = decodeRequestsEverySplit(input, rng: &rng)
        #expect(mismatches.isEmpty)
        #expect(outcome.error == nil)
        #expect(outcome.messages.map(\.byteArguments) == [[bytes("SET"), [0x0D, 0x0A], value]])
    }

    @Test func inlineEscapes() {
        var rng = SeededGenerator(seed: testSeed("inlineEscapes"))
        let input = bytes(#"ECHO "\x41\x6a\x6A\n\r\t\b\a\\\"\q\x00" 'x\'y'"# + "\r\n")
        let (outcome, mismatches) = decodeRequestsEverySplit(input, rng: &rng)
        #expect(mismatches.isEmpty)
        let expected: [UInt8] =
            [0x41, 0x6A, 0x6A, 0x0A, 0x0D, 0x09, 0x08, 0x07, 0x5C, 0x22, UInt8(ascii: "q"), 0x00]
        #expect(outcome.messages.map(\.byteArguments) == [[bytes("ECHO"), expected, bytes("x'y")]])
    }

    @Test func pipelineOfManyCommands() {
        var rng = SeededGenerator(seed: testSeed("pipelineOfManyCommands"))
        var input: [UInt8] = []
        var expected: [[[UInt8]]] = []
        var encoded = ByteBuffer()
        let encoder = RESPEncoder()
        for index in 0..<600 {
            let key = "key:\(index)"
            let value = [UInt8](repeating: UInt8(truncatingIfNeeded: index), count: index % 200)
            if index % 10 == 9 {
                encoded.writeString("GET \(key)\r\n")
                expected.append([bytes("GET"), bytes(key)])
            } else {
                encoder.writeCommand(
                    [ByteBuffer(string: "SET"), ByteBuffer(string: key), ByteBuffer(bytes: value)], into: &encoded)
                expected.append([bytes("SET"), bytes(key), value])
            }
        }
        input = Array(encoded.readableBytesView)
        let (outcome, mismatches) = decodeRequestsEverySplit(input, rng: &rng, randomCount: 4)
        #expect(mismatches.isEmpty)
        #expect(outcome.error == nil)
        #expect(outcome.leftover == 0)
        #expect(outcome.messages.map(\.byteArguments) == expected)
    }

    @Test func inlineLineAtTheLimitIsAccepted() {
        var rng = SeededGenerator(seed: testSeed("inlineLineAtTheLimitIsAccepted"))
        // 65,536 bytes before the LF (the CR counts: Redis sees it before the LF arrives).
        let word = [UInt8](repeating: UInt8(ascii: "a"), count: 65_535 - 5)
        let input = bytes("ECHO ") + word + bytes("\r\n")
        let (outcome, mismatches) = decodeRequestsEverySplit(input, rng: &rng, randomCount: 2)
        #expect(mismatches.isEmpty)
        #expect(outcome.error == nil)
        #expect(outcome.messages.map(\.byteArguments) == [[bytes("ECHO"), word]])

        let tooLong = bytes("ECHO a") + word + bytes("\r\n")
        let (failed, failedMismatches) = decodeRequestsEverySplit(tooLong, rng: &rng, randomCount: 2)
        #expect(failedMismatches.isEmpty)
        #expect(failed.error?.message == "ERR Protocol error: too big inline request")
    }

    @Test func headerLinesAreLimited() {
        var rng = SeededGenerator(seed: testSeed("headerLinesAreLimited"))
        let digits = [UInt8](repeating: UInt8(ascii: "1"), count: 70_000)
        let count = bytes("*") + digits
        let (countOutcome, countMismatches) = decodeRequestsEverySplit(count, rng: &rng, randomCount: 2)
        #expect(countMismatches.isEmpty)
        #expect(countOutcome.error?.message == "ERR Protocol error: too big mbulk count string")

        let bulk = bytes("*1\r\n$") + digits + bytes("\r\n")
        let (bulkOutcome, bulkMismatches) = decodeRequestsEverySplit(bulk, rng: &rng, randomCount: 2)
        #expect(bulkMismatches.isEmpty)
        #expect(bulkOutcome.error?.message == "ERR Protocol error: too big bulk count string")
    }

    /// Redis's "protocol desync regression" inputs: each must end in a protocol error
    /// once enough bytes without a usable terminator arrive.
    @Test(arguments: [("\u{0}", "inline request"), ("*\u{0}", "mbulk count string"), ("$\u{0}", "inline request")])
    func desyncRegression(_ prefix: String, _ kind: String) throws {
        var decoder = RESPRequestDecoder()
        var pending = ByteBuffer(string: prefix)
        let payload = String(repeating: "A", count: 1024) + "\n"
        var fed = 0
        var thrown: RESPProtocolError? = nil
        while thrown == nil && fed < 1_000_000 {
            pending.writeString(payload)
            fed += payload.utf8.count
            do throws(RESPProtocolError) {
                _ = try decoder.decode(buffer: &pending)
            } catch {
                thrown = error
            }
        }
        #expect(thrown?.message == "ERR Protocol error: too big \(kind)")
        #expect(fed <= 65_536 + 2 * payload.utf8.count)
    }

    @Test func hundredMegabytesWithoutNewlineFailsAfterSixtyFourKilobytes() {
        var decoder = RESPRequestDecoder()
        var pending = ByteBuffer()
        let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 16 * 1024)
        var fed = 0
        var thrown: RESPProtocolError? = nil
        while fed < 100 * 1024 * 1024 {
            pending.writeBytes(chunk)
            fed += chunk.count
            do throws(RESPProtocolError) {
                #expect(try decoder.decode(buffer: &pending) == nil)
            } catch {
                thrown = error
                break
            }
        }
        #expect(thrown?.message == "ERR Protocol error: too big inline request")
        #expect(thrown?.code == .tooBigInlineRequest)
        #expect(fed <= 64 * 1024 + chunk.count)
        #expect(pending.readableBytes <= 64 * 1024 + chunk.count)
    }

    @Test func largeBulkHeaderAllocatesNothingUpFront() throws {
        var decoder = RESPRequestDecoder()
        var pending = ByteBuffer(string: "*2\r\n$3\r\nSET\r\n$536870912\r\nabc")
        let capacity = pending.capacity
        #expect(try decoder.decode(buffer: &pending) == nil)
        #expect(pending.capacity == capacity)
        #expect(pending.readableBytes == "$536870912\r\nabc".utf8.count)
    }

    @Test func errorsAreLatched() throws {
        var decoder = RESPRequestDecoder()
        var pending = ByteBuffer(string: "*x\r\n")
        #expect(throws: RESPProtocolError.invalidMultibulkLengthForTests) { try decoder.decode(buffer: &pending) }
        var valid = ByteBuffer(string: "*1\r\n$4\r\nPING\r\n")
        #expect(throws: RESPProtocolError.invalidMultibulkLengthForTests) { try decoder.decode(buffer: &valid) }
    }

    @Test func configuredLimits() {
        var rng = SeededGenerator(seed: testSeed("configuredLimits"))
        let limits = RESPLimits(maxBulkLength: 5, maxMultibulkLength: 3, maxInlineLength: 16)
        let cases: [(String, String?)] = [
            ("*3\r\n$5\r\nhello\r\n$1\r\na\r\n$0\r\n\r\n", nil),
            ("*4\r\n", invalidMultibulk),
            ("*1\r\n$6\r\n", invalidBulk),
            // The CR counts towards the inline limit: Redis sees it before the LF arrives.
            ("0123456789abcde\r\n", nil),
            ("0123456789abcdef\n", nil),
            ("0123456789abcdef\r\n", "ERR Protocol error: too big inline request"),
        ]
        for (input, error) in cases {
            let (outcome, mismatches) = decodeRequestsEverySplit(bytes(input), limits: limits, rng: &rng)
            #expect(mismatches.isEmpty, "\(input.debugDescription)")
            #expect(outcome.error?.message == error, "\(input.debugDescription)")
        }
    }

    @Test func unauthenticatedClientsGetTighterBounds() {
        var rng = SeededGenerator(seed: testSeed("unauthenticatedClientsGetTighterBounds"))
        let big = String(repeating: "v", count: 16_385)
        let cases: [(String, String?)] = [
            ("*10\r\n" + String(repeating: "$1\r\na\r\n", count: 10), nil),
            ("*11\r\n", "ERR Protocol error: unauthenticated multibulk length"),
            ("*2\r\n$4\r\nAUTH\r\n$16384\r\n" + String(big.dropFirst()) + "\r\n", nil),
            ("*2\r\n$4\r\nAUTH\r\n$16385\r\n" + big + "\r\n", "ERR Protocol error: unauthenticated bulk length"),
        ]
        for (input, error) in cases {
            let (outcome, mismatches) = decodeRequestsEverySplit(
                bytes(input), authenticationRequired: true, rng: &rng, randomCount: 2)
            #expect(mismatches.isEmpty)
            #expect(outcome.error?.message == error)
            #expect(outcome.error != nil || outcome.messages.count == 1)
        }
    }

    @Test func limitsValidate() {
        #expect(throws: Never.self) { try RESPLimits().validate() }
        #expect(throws: RESPLimits.ValidationError.self) { try RESPLimits(maxBulkLength: 0).validate() }
        #expect(throws: RESPLimits.ValidationError.self) { try RESPLimits(maxNestingDepth: -1).validate() }
    }

    @Test func decoderPlugsIntoNIO() {
        let handler = ByteToMessageHandler(RESPRequestDecoder())
        let encoder = MessageToByteHandler(RESPEncoder(version: .resp3))
        _ = (handler, encoder)
    }
}

extension RESPProtocolError {
    static let invalidMultibulkLengthForTests = RESPProtocolError(
        code: .invalidMultibulkLength, message: "ERR Protocol error: invalid multibulk length")
}
