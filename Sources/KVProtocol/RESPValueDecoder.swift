import NIOCore

// Reply grammar (RESP2 and RESP3, as servers send them):
//
//   value      = line-type | bulk-type | aggregate
//   line-type  = ( "+" | "-" | ":" | "_" | "#" | "," | "(" ) text CRLF
//   bulk-type  = ( "$" | "!" | "=" ) length CRLF payload CRLF   ; "$-1" CRLF is the null bulk
//   aggregate  = ( "*" | "~" | ">" ) count CRLF count*value       ; "*-1" CRLF is the null array
//              | "%" count CRLF count*( value value )
//              | "|" count CRLF count*( value value ) value      ; attributes, then the value
//
// Every line ends at the first CRLF pair; a payload must be followed by CRLF. A verbatim
// payload starts with a three-byte format and ":". Streamed strings and aggregates
// (`$?`, `*?`) are not supported: Redis never sends them.

/// Decodes replies (any RESP2 or RESP3 value) from a byte stream: the client side of the
/// protocol, for tools and tests that talk to a server.
///
/// ``decode(buffer:)`` returns one complete top-level value, or `nil` when more bytes are
/// needed. Parsing is incremental and iterative: complete elements of an unfinished
/// aggregate are consumed and kept, so a large reply arriving in many reads is parsed
/// once, and nesting is tracked on an explicit stack capped at
/// ``RESPLimits/maxNestingDepth``; nothing recurses. Bulk payloads are zero-copy slices
/// of the input buffer. Storage for an aggregate grows as its elements arrive.
///
/// It is also a NIO `NIOSingleStepByteToMessageDecoder` producing ``RESPValue``s.
///
/// After a ``RESPProtocolError`` (code ``RESPProtocolError/Code/invalidReply`` or
/// ``RESPProtocolError/Code/nestingTooDeep``) the decoder is failed and throws the same
/// error on every later call.
public struct RESPValueDecoder: Sendable {
    /// The limits enforced: ``RESPLimits/maxBulkLength`` for bulk payloads and simple
    /// lines, ``RESPLimits/maxInlineLength`` for other lines,
    /// ``RESPLimits/maxAggregateLength`` and ``RESPLimits/maxNestingDepth``.
    public var limits: RESPLimits

    private enum Kind {
        case array, set, push, map, attribute
    }

    /// An aggregate whose elements are still arriving.
    private struct Frame {
        var kind: Kind
        var remaining: Int
        var elements: [RESPValue]
    }

    /// What one step of parsing produced.
    private enum Step {
        case value(RESPValue)
        case open(Kind, count: Int)
    }

    /// Open aggregates, outermost first.
    private var stack: [Frame] = []
    /// Bytes after the reader index known to hold no CRLF for the current line.
    private var scanned = 0
    /// The error latched by the first failure.
    private var failure: RESPProtocolError?

    /// Creates a decoder.
    public init(limits: RESPLimits = .default) {
        self.limits = limits
    }

    /// Decodes the next complete value from the front of `buffer`.
    ///
    /// - Parameter buffer: The received bytes not yet consumed.
    /// - Returns: The value, or `nil` when more bytes are needed.
    /// - Throws: ``RESPProtocolError`` for malformed input or a broken limit.
    public mutating func decode(buffer: inout ByteBuffer) throws(RESPProtocolError) -> RESPValue? {
        if let failure { throw failure }
        do throws(RESPProtocolError) {
            return try decodeValue(&buffer)
        } catch {
            failure = error
            throw error
        }
    }

    private mutating func decodeValue(_ buffer: inout ByteBuffer) throws(RESPProtocolError) -> RESPValue? {
        while true {
            guard let step = try parseStep(&buffer) else { return nil }
            var completed: RESPValue
            switch step {
            case .value(let value):
                completed = value
            case .open(let kind, let count):
                if count > 0 {
                    guard stack.count < limits.maxNestingDepth else { throw .nestingTooDeep }
                    var frame = Frame(kind: kind, remaining: count, elements: [])
                    frame.elements.reserveCapacity(min(count, 1024))
                    stack.append(frame)
                    continue
                }
                completed = Self.build(kind, [])
            }
            while let last = stack.indices.last {
                stack[last].elements.append(completed)
                stack[last].remaining -= 1
                if stack[last].remaining > 0 { break }
                let frame = stack.removeLast()
                completed = Self.build(frame.kind, frame.elements)
            }
            if stack.isEmpty { return completed }
        }
    }

    private static func build(_ kind: Kind, _ elements: [RESPValue]) -> RESPValue {
        switch kind {
        case .array: return .array(elements)
        case .set: return .set(elements)
        case .push: return .push(elements)
        case .map: return .map(pairs(elements[...]))
        case .attribute: return .attribute(pairs(elements.dropLast()), elements.last ?? .null)
        }
    }

    private static func pairs(_ flat: ArraySlice<RESPValue>) -> [RESPValue.Entry] {
        var entries: [RESPValue.Entry] = []
        entries.reserveCapacity(flat.count / 2)
        var index = flat.startIndex
        while index + 1 < flat.endIndex {
            entries.append(RESPValue.Entry(key: flat[index], value: flat[index + 1]))
            index += 2
        }
        return entries
    }

    /// Parses one scalar value or one aggregate header at the reader index, consuming it
    /// only when complete.
    private mutating func parseStep(_ buffer: inout ByteBuffer) throws(RESPProtocolError) -> Step? {
        guard let type = buffer.readableBytesView.first else { return nil }
        let isText = type == UInt8(ascii: "+") || type == UInt8(ascii: "-")
        let lineLimit = isText ? limits.maxBulkLength : limits.maxInlineLength
        let end: Int
        switch buffer.searchCRLF(from: scanned) {
        case .found(let found):
            end = found
        case .notFound(let upTo):
            // The line so far is at least readableBytes - 2 bytes (type byte, maybe a CR).
            scanned = upTo
            if buffer.readableBytes > lineLimit + 2 { throw .invalidReply("line too long") }
            return nil
        case .blocked:
            return nil
        }
        if end - 1 > lineLimit { throw .invalidReply("line too long") }

        let step: Step
        var consumed = end + 2
        switch type {
        case UInt8(ascii: "+"):
            step = .value(.simpleString(text(buffer, end)))
        case UInt8(ascii: "-"):
            step = .value(.simpleError(text(buffer, end)))
        case UInt8(ascii: ":"):
            guard let number = withLine(buffer, end, RESPNumber.parseLenient) else {
                throw .invalidReply("invalid integer")
            }
            step = .value(.integer(number))
        case UInt8(ascii: "_"):
            guard end == 1 else { throw .invalidReply("invalid null") }
            step = .value(.null)
        case UInt8(ascii: "#"):
            let flag = withLine(buffer, end) { line -> Bool? in
                guard line.count == 1 else { return nil }
                return line[0] == UInt8(ascii: "t") ? true : line[0] == UInt8(ascii: "f") ? false : nil
            }
            guard let flag else { throw .invalidReply("invalid boolean") }
            step = .value(.boolean(flag))
        case UInt8(ascii: ","):
            guard let number = Self.parseDouble(text(buffer, end)) else { throw .invalidReply("invalid double") }
            step = .value(.double(number))
        case UInt8(ascii: "("):
            let digits = text(buffer, end)
            guard Self.isBigNumber(digits) else { throw .invalidReply("invalid big number") }
            step = .value(.bigNumber(digits))
        case UInt8(ascii: "$"), UInt8(ascii: "!"), UInt8(ascii: "="):
            guard let length = withLine(buffer, end, RESPNumber.parseLenient) else {
                throw .invalidReply("invalid bulk length")
            }
            if length == -1 && type == UInt8(ascii: "$") {
                step = .value(.bulkString(nil))
                break
            }
            guard length >= 0, length <= Int64(limits.maxBulkLength) else { throw .invalidReply("invalid bulk length") }
            let payloadLength = Int(length)
            guard buffer.readableBytes - consumed >= payloadLength + 2 else {
                scanned = end
                return nil
            }
            guard
                buffer.getInteger(at: buffer.readerIndex + consumed + payloadLength, as: UInt16.self) == 0x0D0A
            else { throw .invalidReply("bulk payload not followed by CRLF") }
            var payload = buffer.getSlice(at: buffer.readerIndex + consumed, length: payloadLength)!
            consumed += payloadLength + 2
            switch type {
            case UInt8(ascii: "$"):
                step = .value(.bulkString(payload))
            case UInt8(ascii: "!"):
                step = .value(.bulkError(payload))
            default:
                guard payloadLength >= 4, payload.getInteger(at: payload.readerIndex + 3, as: UInt8.self) == 0x3A
                else { throw .invalidReply("invalid verbatim string") }
                let format = payload.readString(length: 3)!
                payload.moveReaderIndex(forwardBy: 1)
                step = .value(.verbatimString(format: format, payload))
            }
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "%"), UInt8(ascii: "|"):
            guard let count = withLine(buffer, end, RESPNumber.parseLenient) else {
                throw .invalidReply("invalid aggregate length")
            }
            if count == -1 && type == UInt8(ascii: "*") {
                step = .value(.array(nil))
                break
            }
            guard count >= 0, count <= Int64(limits.maxAggregateLength) else {
                throw .invalidReply("invalid aggregate length")
            }
            let n = Int(count)
            switch type {
            case UInt8(ascii: "*"): step = .open(.array, count: n)
            case UInt8(ascii: "~"): step = .open(.set, count: n)
            case UInt8(ascii: ">"): step = .open(.push, count: n)
            case UInt8(ascii: "%"): step = .open(.map, count: 2 * n)
            default: step = .open(.attribute, count: 2 * n + 1)
            }
        default:
            throw .invalidReply("unexpected reply type byte \(type)")
        }
        buffer.moveReaderIndex(forwardBy: consumed)
        scanned = 0
        return step
    }

    /// The bytes between the type byte and the CR at `end`, as UTF-8 text.
    private func text(_ buffer: ByteBuffer, _ end: Int) -> String {
        buffer.getString(at: buffer.readerIndex + 1, length: end - 1) ?? ""
    }

    private func withLine<T>(
        _ buffer: ByteBuffer, _ end: Int, _ body: (UnsafeRawBufferPointer) -> T?
    ) -> T? {
        buffer.withUnsafeReadableBytes { raw in body(UnsafeRawBufferPointer(rebasing: raw[1..<end])) }
    }

    /// RESP3 doubles: decimal or exponent notation, `inf`, `-inf`, `+inf`, `nan`.
    private static func parseDouble(_ text: String) -> Double? {
        switch text {
        case "inf", "+inf": return .infinity
        case "-inf": return -.infinity
        case "nan", "-nan": return .nan
        default: break
        }
        let allowed = text.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: ".")
                || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E")
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+")
        }
        guard allowed, !text.isEmpty else { return nil }
        return Double(text)
    }

    private static func isBigNumber(_ text: String) -> Bool {
        var digits = text.utf8[...]
        if let first = digits.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
            digits = digits.dropFirst()
        }
        return !digits.isEmpty && digits.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }
}

extension RESPValueDecoder: NIOSingleStepByteToMessageDecoder {
    /// Each decoded message is one reply.
    public typealias InboundOut = RESPValue

    /// Decodes what is left when the channel closes; a partial reply is dropped.
    public mutating func decodeLast(
        buffer: inout ByteBuffer, seenEOF: Bool
    ) throws(RESPProtocolError) -> RESPValue? {
        try decode(buffer: &buffer)
    }
}
