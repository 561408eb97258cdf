/// Malformed or over-limit protocol input.
///
/// For requests, ``message`` is the exact text Redis replies with (without the leading `-`
/// and trailing CRLF), for example `ERR Protocol error: invalid bulk length`. Like Redis,
/// a server sends it as an error reply and then closes the connection: after a protocol
/// error the byte stream cannot be resynchronized, so the decoders latch the error and
/// throw it again on every later call.
public struct RESPProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The class of error.
    public enum Code: Sendable, Hashable {
        /// `*<n>` is not a number, overflows, or is above ``RESPLimits/maxMultibulkLength``.
        case invalidMultibulkLength
        /// `$<n>` is not a number, is negative, overflows, or is above ``RESPLimits/maxBulkLength``.
        case invalidBulkLength
        /// An element of a multibulk request does not start with `$`.
        case expectedDollar
        /// An inline request line is longer than ``RESPLimits/maxInlineLength``.
        case tooBigInlineRequest
        /// A `*<n>` line is longer than ``RESPLimits/maxInlineLength``.
        case tooBigMultibulkCountString
        /// A `$<n>` line is longer than ``RESPLimits/maxInlineLength``.
        case tooBigBulkCountString
        /// An inline request has an unterminated quote, or a closing quote not followed by a space.
        case unbalancedQuotes
        /// A client that must authenticate sent more than 10 arguments.
        case unauthenticatedMultibulkLength
        /// A client that must authenticate sent an argument longer than 16,384 bytes.
        case unauthenticatedBulkLength
        /// A reply (``RESPValueDecoder``) is malformed.
        case invalidReply
        /// A reply (``RESPValueDecoder``) nests deeper than ``RESPLimits/maxNestingDepth``.
        case nestingTooDeep
    }

    /// The class of error.
    public let code: Code
    /// The error reply text, starting with the error code `ERR`.
    public let message: String

    /// Creates an error; `message` should start with an error code such as `ERR`.
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// Same as ``message``.
    public var description: String { message }
}

extension RESPProtocolError {
    static let invalidMultibulkLength = RESPProtocolError(
        code: .invalidMultibulkLength, message: "ERR Protocol error: invalid multibulk length")
    static let invalidBulkLength = RESPProtocolError(
        code: .invalidBulkLength, message: "ERR Protocol error: invalid bulk length")
    static let tooBigInlineRequest = RESPProtocolError(
        code: .tooBigInlineRequest, message: "ERR Protocol error: too big inline request")
    static let tooBigMultibulkCountString = RESPProtocolError(
        code: .tooBigMultibulkCountString, message: "ERR Protocol error: too big mbulk count string")
    static let tooBigBulkCountString = RESPProtocolError(
        code: .tooBigBulkCountString, message: "ERR Protocol error: too big bulk count string")
    static let unbalancedQuotes = RESPProtocolError(
        code: .unbalancedQuotes, message: "ERR Protocol error: unbalanced quotes in request")
    static let unauthenticatedMultibulkLength = RESPProtocolError(
        code: .unauthenticatedMultibulkLength, message: "ERR Protocol error: unauthenticated multibulk length")
    static let unauthenticatedBulkLength = RESPProtocolError(
        code: .unauthenticatedBulkLength, message: "ERR Protocol error: unauthenticated bulk length")

    /// Redis formats this one with `%c` and then replaces CR and LF with spaces. Bytes
    /// above 0x7F are rendered as the Unicode scalar of the same value.
    static func expectedDollar(got byte: UInt8) -> RESPProtocolError {
        let shown: Unicode.Scalar =
            byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n") ? " " : Unicode.Scalar(byte)
        return RESPProtocolError(
            code: .expectedDollar, message: "ERR Protocol error: expected '$', got '\(Character(shown))'")
    }

    static func invalidReply(_ detail: String) -> RESPProtocolError {
        RESPProtocolError(code: .invalidReply, message: "ERR Protocol error: \(detail)")
    }

    static let nestingTooDeep = RESPProtocolError(
        code: .nestingTooDeep, message: "ERR Protocol error: reply nesting too deep")
}
