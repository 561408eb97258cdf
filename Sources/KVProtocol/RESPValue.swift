import NIOCore

/// A value of the Redis serialization protocol, RESP2 or RESP3.
///
/// Payloads of bulk types are `ByteBuffer`s: values decoded by ``RESPValueDecoder`` are
/// slices of the input buffer (no copy), and values built by a server can wrap any buffer.
/// Short, line-delimited types (simple strings, simple errors, big numbers) are `String`s.
///
/// RESP2 has two distinct nulls, the null bulk string (`$-1`) and the null array (`*-1`);
/// they are `.bulkString(nil)` and `.array(nil)`. RESP3 has a single null (`_`), ``null``.
/// ``RESPEncoder`` writes each of the three as the other protocol's form when needed, the
/// way Redis does (`.null` becomes `$-1` in RESP2; both RESP2 nulls become `_` in RESP3).
///
/// Equality is structural; as with `Double`, a `.double(.nan)` is not equal to itself.
public enum RESPValue: Sendable, Hashable {
    /// `+<text>\r\n`. The text must not contain CR or LF; the encoder replaces them with spaces.
    case simpleString(String)
    /// `-<text>\r\n`, for example `ERR unknown command`. The text starts with the error code.
    case simpleError(String)
    /// `:<n>\r\n`.
    case integer(Int64)
    /// `$<length>\r\n<bytes>\r\n`; `nil` is the RESP2 null bulk string `$-1\r\n`.
    case bulkString(ByteBuffer?)
    /// `*<count>\r\n<elements>`; `nil` is the RESP2 null array `*-1\r\n`.
    case array([RESPValue]?)
    /// RESP3 `_\r\n`.
    case null
    /// RESP3 `#t\r\n` or `#f\r\n`.
    case boolean(Bool)
    /// RESP3 `,<double>\r\n`, including `inf`, `-inf` and `nan`.
    case double(Double)
    /// RESP3 `(<digits>\r\n`: an integer of any size, as its decimal text (optional sign).
    case bigNumber(String)
    /// RESP3 `!<length>\r\n<bytes>\r\n`: an error whose text may be long or binary.
    case bulkError(ByteBuffer)
    /// RESP3 `=<length>\r\n<fmt>:<bytes>\r\n`; `format` is three characters such as `txt` or `mkd`.
    case verbatimString(format: String, ByteBuffer)
    /// RESP3 `%<pairs>\r\n<key><value>...`, in wire order.
    case map([Entry])
    /// RESP3 `~<count>\r\n<elements>`.
    case set([RESPValue])
    /// RESP3 `|<pairs>\r\n<key><value>...` followed by the value the attributes describe.
    indirect case attribute([Entry], RESPValue)
    /// RESP3 `><count>\r\n<elements>`: out-of-band data such as pub/sub messages.
    case push([RESPValue])

    /// One key/value pair of a ``map(_:)`` or an ``attribute(_:_:)``.
    public struct Entry: Sendable, Hashable {
        /// The key.
        public var key: RESPValue
        /// The value.
        public var value: RESPValue

        /// Creates a pair.
        public init(key: RESPValue, value: RESPValue) {
            self.key = key
            self.value = value
        }
    }
}

extension RESPValue {
    /// `+OK\r\n`.
    public static let ok: RESPValue = .simpleString("OK")

    /// A bulk string holding the UTF-8 bytes of `string`.
    public init(bulk string: String) {
        self = .bulkString(ByteBuffer(string: string))
    }

    /// A bulk string holding `bytes`.
    public init(bulk bytes: some Sequence<UInt8>) {
        self = .bulkString(ByteBuffer(bytes: bytes))
    }

    /// Whether this is one of the three nulls (`.null`, `.bulkString(nil)`, `.array(nil)`).
    public var isNull: Bool {
        switch self {
        case .null, .bulkString(nil), .array(nil): return true
        default: return false
        }
    }
}

extension RESPValue: CustomStringConvertible {
    /// A readable rendering for logs and test failures, similar to `redis-cli` output.
    public var description: String {
        switch self {
        case .simpleString(let s): return "+\(s)"
        case .simpleError(let s): return "-\(s)"
        case .integer(let n): return "(integer) \(n)"
        case .bulkString(nil), .array(nil), .null: return "(nil)"
        case .bulkString(let b?): return Self.quote(b)
        case .array(let a?): return "[" + a.map(\.description).joined(separator: ", ") + "]"
        case .boolean(let b): return b ? "(true)" : "(false)"
        case .double(let d): return "(double) \(RESPEncoder.formatDouble(d))"
        case .bigNumber(let s): return "(big number) \(s)"
        case .bulkError(let b): return "(error) " + Self.quote(b)
        case .verbatimString(let format, let b): return "(\(format)) " + Self.quote(b)
        case .map(let entries): return "{" + Self.render(entries) + "}"
        case .set(let a): return "~[" + a.map(\.description).joined(separator: ", ") + "]"
        case .attribute(let entries, let v): return "|{" + Self.render(entries) + "} " + v.description
        case .push(let a): return ">[" + a.map(\.description).joined(separator: ", ") + "]"
        }
    }

    private static func render(_ entries: [Entry]) -> String {
        entries.map { "\($0.key.description): \($0.value.description)" }.joined(separator: ", ")
    }

    private static func quote(_ buffer: ByteBuffer) -> String {
        var out = "\""
        for byte in buffer.readableBytesView {
            switch byte {
            case UInt8(ascii: "\""): out += "\\\""
            case UInt8(ascii: "\\"): out += "\\\\"
            case 0x20..<0x7F: out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: "\n"): out += "\\n"
            case UInt8(ascii: "\r"): out += "\\r"
            case UInt8(ascii: "\t"): out += "\\t"
            default:
                let hex = String(byte, radix: 16)
                out += "\\x" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return out + "\""
    }
}
