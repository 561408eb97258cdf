import KVProtocol
import NIOCore
import Testing

/// A value with its exact encodings in RESP2 and RESP3.
struct EncodingCase: Sendable, CustomTestStringConvertible {
    var name: String
    var value: RESPValue
    var resp2: String
    var resp3: String
    var testDescription: String { name }
}

func encode(_ value: RESPValue, _ version: RESPVersion) -> String {
    var out = ByteBuffer()
    RESPEncoder(version: version).write(value, into: &out)
    return String(decoding: out.readableBytesView, as: UTF8.self)
}

func encoded(_ version: RESPVersion, _ body: (RESPEncoder, inout ByteBuffer) -> Void) -> String {
    var out = ByteBuffer()
    body(RESPEncoder(version: version), &out)
    return String(decoding: out.readableBytesView, as: UTF8.self)
}

extension EncodingCase {
    static let all: [EncodingCase] = [
        EncodingCase(name: "simple string", value: .ok, resp2: "+OK\r\n", resp3: "+OK\r\n"),
        EncodingCase(
            name: "simple string with CRLF", value: .simpleString("a\r\nb"), resp2: "+a  b\r\n", resp3: "+a  b\r\n"),
        EncodingCase(
            name: "simple error", value: .simpleError("ERR bad"), resp2: "-ERR bad\r\n", resp3: "-ERR bad\r\n"),
        EncodingCase(name: "integer zero", value: .integer(0), resp2: ":0\r\n", resp3: ":0\r\n"),
        EncodingCase(name: "negative integer", value: .integer(-42), resp2: ":-42\r\n", resp3: ":-42\r\n"),
        EncodingCase(
            name: "Int64.min", value: .integer(.min), resp2: ":-9223372036854775808\r\n",
            resp3: ":-9223372036854775808\r\n"),
        EncodingCase(
            name: "Int64.max", value: .integer(.max), resp2: ":9223372036854775807\r\n",
            resp3: ":9223372036854775807\r\n"),
        EncodingCase(
            name: "bulk string", value: RESPValue(bulk: "hello"), resp2: "$5\r\nhello\r\n", resp3: "$5\r\nhello\r\n"),
        EncodingCase(name: "empty bulk string", value: RESPValue(bulk: ""), resp2: "$0\r\n\r\n", resp3: "$0\r\n\r\n"),
        EncodingCase(
            name: "binary bulk string", value: RESPValue(bulk: "a\r\n\u{0}b"), resp2: "$5\r\na\r\n\u{0}b\r\n",
            resp3: "$5\r\na\r\n\u{0}b\r\n"),
        EncodingCase(name: "null bulk string", value: .bulkString(nil), resp2: "$-1\r\n", resp3: "_\r\n"),
        EncodingCase(name: "null array", value: .array(nil), resp2: "*-1\r\n", resp3: "_\r\n"),
        EncodingCase(name: "null", value: .null, resp2: "$-1\r\n", resp3: "_\r\n"),
        EncodingCase(name: "empty array", value: .array([]), resp2: "*0\r\n", resp3: "*0\r\n"),
        EncodingCase(
            name: "array", value: .array([.integer(1), RESPValue(bulk: "two"), .null]),
            resp2: "*3\r\n:1\r\n$3\r\ntwo\r\n$-1\r\n", resp3: "*3\r\n:1\r\n$3\r\ntwo\r\n_\r\n"),
        EncodingCase(name: "true", value: .boolean(true), resp2: ":1\r\n", resp3: "#t\r\n"),
        EncodingCase(name: "false", value: .boolean(false), resp2: ":0\r\n", resp3: "#f\r\n"),
        EncodingCase(name: "double", value: .double(3.14), resp2: "$18\r\n3.1400000000000001\r\n", resp3: ",3.1400000000000001\r\n"),
        EncodingCase(name: "integral double", value: .double(10), resp2: "$2\r\n10\r\n", resp3: ",10\r\n"),
        EncodingCase(name: "negative zero", value: .double(-0.0), resp2: "$2\r\n-0\r\n", resp3: ",-0\r\n"),
        EncodingCase(name: "infinity", value: .double(.infinity), resp2: "$3\r\ninf\r\n", resp3: ",inf\r\n"),
        EncodingCase(name: "minus infinity", value: .double(-.infinity), resp2: "$4\r\n-inf\r\n", resp3: ",-inf\r\n"),
        EncodingCase(name: "nan", value: .double(.nan), resp2: "$3\r\nnan\r\n", resp3: ",nan\r\n"),
        EncodingCase(name: "small double", value: .double(1e-7), resp2: "$22\r\n9.9999999999999995e-08\r\n", resp3: ",9.9999999999999995e-08\r\n"),
        EncodingCase(
            name: "big number", value: .bigNumber("3492890328409238509324850943850943825024385"),
            resp2: "$43\r\n3492890328409238509324850943850943825024385\r\n",
            resp3: "(3492890328409238509324850943850943825024385\r\n"),
        EncodingCase(
            name: "bulk error", value: .bulkError(ByteBuffer(string: "SYNTAX invalid\r\nsyntax")),
            resp2: "-SYNTAX invalid  syntax\r\n", resp3: "!22\r\nSYNTAX invalid\r\nsyntax\r\n"),
        EncodingCase(
            name: "verbatim string", value: .verbatimString(format: "txt", ByteBuffer(string: "Some string")),
            resp2: "$11\r\nSome string\r\n", resp3: "=15\r\ntxt:Some string\r\n"),
        EncodingCase(
            name: "verbatim string with short format", value: .verbatimString(format: "md", ByteBuffer(string: "x")),
            resp2: "$1\r\nx\r\n", resp3: "=5\r\nmd :x\r\n"),
        EncodingCase(
            name: "map",
            value: .map([
                .init(key: .simpleString("first"), value: .integer(1)),
                .init(key: RESPValue(bulk: "second"), value: .boolean(true)),
            ]),
            resp2: "*4\r\n+first\r\n:1\r\n$6\r\nsecond\r\n:1\r\n",
            resp3: "%2\r\n+first\r\n:1\r\n$6\r\nsecond\r\n#t\r\n"),
        EncodingCase(name: "empty map", value: .map([]), resp2: "*0\r\n", resp3: "%0\r\n"),
        EncodingCase(
            name: "set", value: .set([.integer(1), RESPValue(bulk: "a")]),
            resp2: "*2\r\n:1\r\n$1\r\na\r\n", resp3: "~2\r\n:1\r\n$1\r\na\r\n"),
        EncodingCase(
            name: "attribute",
            value: .attribute(
                [.init(key: .simpleString("ttl"), value: .integer(3600))],
                .array([.integer(2_039_123), .integer(9_543_892)])),
            resp2: "*2\r\n:2039123\r\n:9543892\r\n",
            resp3: "|1\r\n+ttl\r\n:3600\r\n*2\r\n:2039123\r\n:9543892\r\n"),
        EncodingCase(
            name: "push", value: .push([RESPValue(bulk: "message"), RESPValue(bulk: "ch"), RESPValue(bulk: "hi")]),
            resp2: "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
            resp3: ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"),
        EncodingCase(
            name: "nested downgrade",
            value: .array([.map([.init(key: .null, value: .set([.double(1.5)]))]), .array(nil)]),
            resp2: "*2\r\n*2\r\n$-1\r\n*1\r\n$3\r\n1.5\r\n*-1\r\n",
            resp3: "*2\r\n%1\r\n_\r\n~1\r\n,1.5\r\n_\r\n"),
    ]
}

@Suite("RESPEncoder")
struct RESPEncoderTests {
    @Test("exact bytes in RESP2 and RESP3", arguments: EncodingCase.all)
    func exactBytes(_ testCase: EncodingCase) {
        #expect(encode(testCase.value, .resp2) == testCase.resp2)
        #expect(encode(testCase.value, .resp3) == testCase.resp3)
    }

    @Test func fastPaths() {
        for version in [RESPVersion.resp2, .resp3] {
            #expect(encoded(version) { $0.writeOK(into: &$1) } == "+OK\r\n")
            #expect(encoded(version) { $0.writeInteger(1234 as Int, into: &$1) } == ":1234\r\n")
            #expect(encoded(version) { $0.writeInteger(Int64(-7), into: &$1) } == ":-7\r\n")
            #expect(encoded(version) { $0.writeBulkString("héllo", into: &$1) } == "$6\r\nhéllo\r\n")
            #expect(encoded(version) { $0.writeBulkString([1, 2], into: &$1) } == "$2\r\n\u{1}\u{2}\r\n")
            #expect(encoded(version) { $0.writeBulkString(ByteBuffer(string: "ab"), into: &$1) } == "$2\r\nab\r\n")
            #expect(
                encoded(version) { encoder, out in
                    [UInt8](repeating: 120, count: 3).withUnsafeBytes { encoder.writeBulkString($0, into: &out) }
                } == "$3\r\nxxx\r\n")
            #expect(encoded(version) { $0.writeArrayHeader(count: 12, into: &$1) } == "*12\r\n")
            #expect(encoded(version) { $0.writeError("ERR no\nway", into: &$1) } == "-ERR no way\r\n")
            #expect(
                encoded(version) { $0.writeCommand(["SET", "k", "v"], into: &$1) }
                    == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")
        }
        #expect(encoded(.resp2) { $0.writeNull(into: &$1) } == "$-1\r\n")
        #expect(encoded(.resp3) { $0.writeNull(into: &$1) } == "_\r\n")
        #expect(encoded(.resp2) { $0.writeNullArray(into: &$1) } == "*-1\r\n")
        #expect(encoded(.resp3) { $0.writeNullArray(into: &$1) } == "_\r\n")
        #expect(encoded(.resp2) { $0.writeMapHeader(count: 3, into: &$1) } == "*6\r\n")
        #expect(encoded(.resp3) { $0.writeMapHeader(count: 3, into: &$1) } == "%3\r\n")
        #expect(encoded(.resp2) { $0.writeSetHeader(count: 3, into: &$1) } == "*3\r\n")
        #expect(encoded(.resp3) { $0.writeSetHeader(count: 3, into: &$1) } == "~3\r\n")
        #expect(encoded(.resp2) { $0.writePushHeader(count: 3, into: &$1) } == "*3\r\n")
        #expect(encoded(.resp3) { $0.writePushHeader(count: 3, into: &$1) } == ">3\r\n")
        #expect(encoded(.resp2) { $0.writeBoolean(true, into: &$1) } == ":1\r\n")
        #expect(encoded(.resp3) { $0.writeBoolean(false, into: &$1) } == "#f\r\n")
        #expect(encoded(.resp2) { $0.writeDouble(0.5, into: &$1) } == "$3\r\n0.5\r\n")
        #expect(encoded(.resp3) { $0.writeDouble(0.5, into: &$1) } == ",0.5\r\n")
    }

    /// Expected texts are Redis 7.0's `addReplyDouble`: `%.17g`, infinities spelled out.
    @Test(
        "doubles are formatted like Redis 7.0's addReplyDouble",
        arguments: [
            (3.14, "3.1400000000000001"), (1.5, "1.5"), (0.1, "0.10000000000000001"), (-2.5, "-2.5"), (1.0, "1"),
            (-1.0, "-1"), (100.0, "100"), (1e15, "1000000000000000"), (0.0, "0"), (-0.0, "-0"),
            (1e-6, "9.9999999999999995e-07"), (1e-7, "9.9999999999999995e-08"), (0.30000000000000004, "0.30000000000000004"),
            (1e20, "1e+20"), (1.7976931348623157e308, "1.7976931348623157e+308"), (Double.leastNonzeroMagnitude, "4.9406564584124654e-324"),
            (4611686018427387904.0, "4.6116860184273879e+18"), (1.5e22, "1.5e+22"), (123.456, "123.456"),
            (.infinity, "inf"), (-.infinity, "-inf"), (.nan, "nan"),
        ])
    func formatDouble(_ value: Double, _ expected: String) {
        #expect(RESPEncoder.formatDouble(value) == expected)
    }

    @Test func formattedDoublesReadBack() {
        var rng = SeededGenerator(seed: testSeed("formattedDoublesReadBack"))
        for _ in 0..<20_000 {
            let value = Double(bitPattern: rng.next())
            guard value.isFinite else { continue }
            let text = RESPEncoder.formatDouble(value)
            #expect(Double(text) == value, "\(value) formatted as \(text)")
        }
    }

    @Test func messageToByteEncoder() {
        var out = ByteBuffer()
        RESPEncoder(version: .resp3).encode(data: .boolean(true), out: &out)
        #expect(String(buffer: out) == "#t\r\n")
    }
}
