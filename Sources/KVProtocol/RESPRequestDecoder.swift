import NIOCore

// Request grammar (what a Redis server accepts; Redis `processInputBuffer`,
// `processMultibulkBuffer` and `processInlineBuffer` in networking.c):
//
//   request    = multibulk | inline
//   multibulk  = "*" count CR any-byte *( bulk )      ; first byte "*"; count elements
//   bulk       = "$" length CR any-byte payload 2any-byte
//   inline     = *( byte except LF ) LF                ; first byte anything but "*"
//   count      = string2ll digits: optional "-", no "+", no leading zero, no overflow
//   length     = string2ll digits, 0 ... maxBulkLength
//
// - A header line ends at its first CR; the byte after the CR and the two bytes after a
//   bulk payload are skipped without being checked, exactly as Redis does.
// - `*0`, and any negative count such as `*-1`, are skipped, as are empty and
//   all-whitespace inline lines; none of them produces a request or a reply.
// - `$-1` (the RESP2 null bulk) is not valid inside a request: invalid bulk length.
// - Header and inline lines are searched like Redis's `strchr`: a NUL byte before the
//   terminator hides it, and the line grows until it is too big.
// - Line-length limits are applied to the bytes before the terminator, so the outcome
//   does not depend on how the stream is split into reads. (Redis checks only the bytes
//   buffered so far, so a long line that arrives in a single read can slip through there.)

/// One command: its arguments, the first being the command name.
public struct RESPRequest: Sendable, Hashable {
    /// The arguments.
    public var arguments: [ByteBuffer]

    /// Creates a request from arguments.
    public init(arguments: [ByteBuffer]) {
        self.arguments = arguments
    }

    /// Creates a request from UTF-8 arguments.
    public init(_ arguments: [String]) {
        self.arguments = arguments.map { ByteBuffer(string: $0) }
    }
}

/// Decodes client requests, multibulk (`*3\r\n$3\r\nSET\r\n...`) or inline (`SET k v\r\n`),
/// with Redis's rules, limits and error texts.
///
/// Feed it bytes as they arrive: ``decodeArguments(buffer:)`` (or ``decode(buffer:)``)
/// consumes one request from the front of the buffer, or returns `nil` and waits for more
/// bytes; call it again until it returns `nil` to drain pipelined requests. Each argument
/// is copied out of the buffer once, into an array of its own. A partially received request is kept across
/// calls (arguments already complete are held, the rest stays in the buffer), so the
/// result does not depend on how the stream is split. Nothing is allocated from a length
/// header before its bytes arrive.
///
/// It is also a NIO `NIOSingleStepByteToMessageDecoder`, so
/// `ByteToMessageHandler(RESPRequestDecoder())` can sit in a channel pipeline.
///
/// After a ``RESPProtocolError`` the decoder is failed: every later call throws the same
/// error. A server sends ``RESPProtocolError/message`` as an error reply and closes the
/// connection, as Redis does.
public struct RESPRequestDecoder: Sendable {
    /// The limits enforced.
    public var limits: RESPLimits
    /// Whether the client has yet to authenticate. While set, Redis's tighter bounds apply:
    /// at most 10 arguments and 16,384 bytes per argument.
    public var authenticationRequired: Bool

    /// Elements still expected by the multibulk request being decoded; 0 between requests.
    private var remaining = 0
    /// Elements of the multibulk request being decoded, complete so far.
    private var arguments: [[UInt8]] = []
    /// Bytes of ``arguments`` (the request in progress) that the decoder holds; a server adds
    /// the unconsumed input to bound what one client's unfinished request costs.
    public private(set) var heldArgumentBytes = 0
    /// Bytes after the reader index already known to hold no terminator for the current line.
    private var scanned = 0
    /// A NUL byte hides the current line's terminator (see the grammar above).
    private var blocked = false
    /// The error latched by the first failure.
    private var failure: RESPProtocolError?

    /// Creates a decoder.
    ///
    /// - Parameters:
    ///   - limits: The limits to enforce.
    ///   - authenticationRequired: See ``authenticationRequired``.
    public init(limits: RESPLimits = .default, authenticationRequired: Bool = false) {
        self.limits = limits
        self.authenticationRequired = authenticationRequired
    }

    /// Decodes the next request from the front of `buffer`.
    ///
    /// Empty requests (`*0`, negative counts, blank inline lines) are consumed silently.
    /// Complete arguments of a request still in progress are consumed from `buffer` and
    /// kept by the decoder; everything else stays in `buffer` until it can be used.
    ///
    /// - Parameter buffer: The received bytes not yet consumed.
    /// - Returns: The next request, or `nil` when more bytes are needed.
    /// - Throws: ``RESPProtocolError`` with Redis's message for malformed or over-limit
    ///   input; the same error on every call after the first failure.
    /// - Complexity: O(bytes consumed) plus O(new bytes) for the line being searched.
    public mutating func decode(buffer: inout ByteBuffer) throws(RESPProtocolError) -> RESPRequest? {
        try decodeArguments(buffer: &buffer).map { RESPRequest(arguments: $0.map { ByteBuffer(bytes: $0) }) }
    }

    /// Decodes the next request from the front of `buffer` as its arguments' bytes (the
    /// command name first): ``decode(buffer:)`` without wrapping each argument in a buffer.
    ///
    /// - Parameter buffer: The received bytes not yet consumed.
    /// - Returns: The next request's arguments, or `nil` when more bytes are needed.
    /// - Throws: As ``decode(buffer:)``.
    public mutating func decodeArguments(buffer: inout ByteBuffer) throws(RESPProtocolError) -> [[UInt8]]? {
        if let failure { throw failure }
        do throws(RESPProtocolError) {
            return try decodeRequest(&buffer)
        } catch {
            failure = error
            throw error
        }
    }

    private mutating func decodeRequest(_ buffer: inout ByteBuffer) throws(RESPProtocolError) -> [[UInt8]]? {
        while true {
            if remaining == 0 {
                guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
                if first == UInt8(ascii: "*") {
                    guard let count = try readMultibulkCount(&buffer) else { return nil }
                    if count <= 0 { continue }
                    remaining = count
                    arguments.reserveCapacity(min(count, 1024))
                } else {
                    guard let inline = try readInline(&buffer) else { return nil }
                    if inline.isEmpty { continue }
                    return inline.map { Array($0.readableBytesView) }
                }
            }
            while remaining > 0 {
                guard let argument = try readBulk(&buffer) else { return nil }
                arguments.append(argument)
                heldArgumentBytes += argument.count
                remaining -= 1
            }
            let request = arguments
            arguments = []
            heldArgumentBytes = 0
            return request
        }
    }

    /// Records that the reader index moved, so the next line is searched from its start.
    @inline(__always)
    private mutating func consumed() {
        scanned = 0
        blocked = false
    }

    /// Reads the header line at the reader index, as Redis does: the line ends at its
    /// first CR and is complete once one more byte follows the CR.
    ///
    /// - Returns: The line, or `nil` when more bytes are needed.
    private mutating func headerLine(
        _ buffer: ByteBuffer, tooBig: RESPProtocolError
    ) throws(RESPProtocolError) -> HeaderLine? {
        if !blocked {
            let from = scanned
            switch buffer.withUnsafeReadableBytes({ scanHeader($0, from: from) }) {
            case .complete(let line):
                if line.end > limits.maxInlineLength { throw tooBig }
                return line
            case .incomplete(let upTo):
                scanned = upTo
            case .blocked:
                blocked = true
            }
        }
        // The bytes known to come before the terminator: all of them, except a CR already seen
        // (waiting for the byte after it), which ends the line; counting that CR would make
        // the outcome depend on how the stream is split.
        if (blocked ? buffer.readableBytes : scanned) > limits.maxInlineLength { throw tooBig }
        return nil
    }

    /// Reads `*<count>`; returns the count (possibly zero or negative) or `nil`.
    private mutating func readMultibulkCount(_ buffer: inout ByteBuffer) throws(RESPProtocolError) -> Int? {
        guard let line = try headerLine(buffer, tooBig: .tooBigMultibulkCountString) else { return nil }
        guard let count = line.value, count <= Int64(limits.maxMultibulkLength) else {
            throw .invalidMultibulkLength
        }
        if count > 10 && authenticationRequired { throw .unauthenticatedMultibulkLength }
        buffer.moveReaderIndex(forwardBy: line.end + 2)
        consumed()
        return Int(count)
    }

    /// Reads one `$<length>` element; returns its payload, or `nil` until it is complete.
    private mutating func readBulk(_ buffer: inout ByteBuffer) throws(RESPProtocolError) -> [UInt8]? {
        guard let line = try headerLine(buffer, tooBig: .tooBigBulkCountString) else { return nil }
        guard line.first == UInt8(ascii: "$") else { throw .expectedDollar(got: line.first) }
        guard let length = line.value, length >= 0, length <= Int64(limits.maxBulkLength) else {
            throw .invalidBulkLength
        }
        if length > 16384 && authenticationRequired { throw .unauthenticatedBulkLength }
        let payloadStart = line.end + 2
        let payloadLength = Int(length)
        guard buffer.readableBytes - payloadStart >= payloadLength + 2 else { return nil }
        buffer.moveReaderIndex(forwardBy: payloadStart)
        let payload = buffer.readBytes(length: payloadLength)!
        buffer.moveReaderIndex(forwardBy: 2)
        consumed()
        return payload
    }

    /// Reads an inline line; returns its arguments (empty for a blank line) or `nil`.
    private mutating func readInline(_ buffer: inout ByteBuffer) throws(RESPProtocolError) -> [ByteBuffer]? {
        if !blocked {
            switch buffer.searchLine(for: 0x0A, from: scanned, nulBlocks: true) {
            case .found(let end):
                if end > limits.maxInlineLength { throw .tooBigInlineRequest }
                var length = end
                if end > 0 && buffer.getInteger(at: buffer.readerIndex + end - 1, as: UInt8.self) == 0x0D {
                    length -= 1
                }
                guard let inline = InlineParser.split(buffer, offset: 0, length: length) else {
                    throw .unbalancedQuotes
                }
                buffer.moveReaderIndex(forwardBy: end + 1)
                consumed()
                return inline
            case .notFound(let upTo):
                scanned = upTo
            case .blocked:
                blocked = true
            }
        }
        if buffer.readableBytes > limits.maxInlineLength { throw .tooBigInlineRequest }
        return nil
    }
}

extension RESPRequestDecoder: NIOSingleStepByteToMessageDecoder {
    /// Each decoded message is one request.
    public typealias InboundOut = RESPRequest

    /// Decodes what is left when the channel closes; a partial request is dropped, as
    /// Redis drops it.
    public mutating func decodeLast(
        buffer: inout ByteBuffer, seenEOF: Bool
    ) throws(RESPProtocolError) -> RESPRequest? {
        try decode(buffer: &buffer)
    }
}
