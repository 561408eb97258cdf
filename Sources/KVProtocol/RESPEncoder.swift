import NIOCore

/// The protocol version a connection speaks: RESP2 by default, RESP3 after `HELLO 3`.
public enum RESPVersion: Sendable, Hashable {
    /// RESP2.
    case resp2
    /// RESP3.
    case resp3
}

/// Writes replies (and, for clients, commands) in the wire format of a protocol version.
///
/// In RESP2, RESP3-only types are downgraded as Redis downgrades them:
///
/// | Value                       | RESP3                 | RESP2                          |
/// |-----------------------------|-----------------------|--------------------------------|
/// | `.null`                     | `_`                   | `$-1` (null bulk)              |
/// | `.bulkString(nil)`          | `_`                   | `$-1`                          |
/// | `.array(nil)`               | `_`                   | `*-1` (null array)             |
/// | `.boolean(b)`               | `#t` / `#f`           | `:1` / `:0`                    |
/// | `.double(d)`                | `,<d>`                | bulk string `<d>`              |
/// | `.bigNumber(n)`             | `(<n>`                | bulk string `<n>`              |
/// | `.bulkError(e)`             | `!<len>`              | simple error `-<e>`            |
/// | `.verbatimString(f, s)`     | `=<len>` `f:s`        | bulk string `s`                |
/// | `.map(pairs)`               | `%<n>`                | flat array `*<2n>` k1 v1 ...   |
/// | `.set(xs)`                  | `~<n>`                | array `*<n>`                   |
/// | `.attribute(pairs, v)`      | `\|<n>` pairs, then v | `v` alone                      |
/// | `.push(xs)`                 | `><n>`                | array `*<n>`                   |
///
/// Doubles are formatted like Redis 7.0's `addReplyDouble` (see ``formatDouble(_:)``). CR and LF
/// inside simple strings and simple errors are replaced with spaces, so a reply can
/// never inject protocol.
///
/// The `write...` methods besides ``write(_:into:)`` write one reply element directly,
/// without building a ``RESPValue``; an aggregate header is followed by its elements.
public struct RESPEncoder: Sendable, Hashable {
    /// The protocol version written.
    public var version: RESPVersion

    /// Creates an encoder for `version`.
    public init(version: RESPVersion = .resp2) {
        self.version = version
    }

    /// Writes `value`, downgraded for RESP2 as described on ``RESPEncoder``.
    ///
    /// - Complexity: O(size of the encoding); recursion depth equals the value's nesting.
    public func write(_ value: RESPValue, into buffer: inout ByteBuffer) {
        switch value {
        case .simpleString(let text):
            writeSimpleString(text, into: &buffer)
        case .simpleError(let text):
            writeError(text, into: &buffer)
        case .integer(let number):
            writeInteger(number, into: &buffer)
        case .bulkString(let bytes?):
            writeBulkString(bytes, into: &buffer)
        case .bulkString(nil), .null:
            writeNull(into: &buffer)
        case .array(nil):
            writeNullArray(into: &buffer)
        case .array(let elements?):
            writeArrayHeader(count: elements.count, into: &buffer)
            for element in elements { write(element, into: &buffer) }
        case .boolean(let flag):
            writeBoolean(flag, into: &buffer)
        case .double(let number):
            writeDouble(number, into: &buffer)
        case .bigNumber(let digits):
            writeBigNumber(digits, into: &buffer)
        case .bulkError(let bytes):
            if version == .resp3 {
                buffer.writeHeader(UInt8(ascii: "!"), Int64(bytes.readableBytes))
                buffer.writeImmutableBuffer(bytes)
                buffer.writeCRLF()
            } else {
                buffer.writeSanitizedLine(UInt8(ascii: "-"), bytes.readableBytesView)
            }
        case .verbatimString(let format, let bytes):
            writeVerbatimString(bytes, format: format, into: &buffer)
        case .map(let entries):
            writeMapHeader(count: entries.count, into: &buffer)
            for entry in entries {
                write(entry.key, into: &buffer)
                write(entry.value, into: &buffer)
            }
        case .set(let elements):
            writeSetHeader(count: elements.count, into: &buffer)
            for element in elements { write(element, into: &buffer) }
        case .attribute(let entries, let described):
            if version == .resp3 {
                buffer.writeHeader(UInt8(ascii: "|"), Int64(entries.count))
                for entry in entries {
                    write(entry.key, into: &buffer)
                    write(entry.value, into: &buffer)
                }
            }
            write(described, into: &buffer)
        case .push(let elements):
            writePushHeader(count: elements.count, into: &buffer)
            for element in elements { write(element, into: &buffer) }
        }
    }

    /// Writes `+OK\r\n`.
    public func writeOK(into buffer: inout ByteBuffer) {
        buffer.writeStaticString("+OK\r\n")
    }

    /// Writes `+<text>\r\n`, with CR and LF in `text` replaced by spaces.
    public func writeSimpleString(_ text: String, into buffer: inout ByteBuffer) {
        buffer.writeSanitizedLine(UInt8(ascii: "+"), text.utf8)
    }

    /// Writes `-<message>\r\n`, with CR and LF replaced by spaces. `message` starts with
    /// the error code, as in `ERR wrong number of arguments for 'get' command`.
    public func writeError(_ message: String, into buffer: inout ByteBuffer) {
        buffer.writeSanitizedLine(UInt8(ascii: "-"), message.utf8)
    }

    /// Writes `:<value>\r\n`.
    public func writeInteger(_ value: Int64, into buffer: inout ByteBuffer) {
        buffer.writeHeader(UInt8(ascii: ":"), value)
    }

    /// Writes `:<value>\r\n`.
    public func writeInteger(_ value: Int, into buffer: inout ByteBuffer) {
        buffer.writeHeader(UInt8(ascii: ":"), Int64(value))
    }

    /// Writes `$<length>\r\n<bytes>\r\n` with the readable bytes of `bytes`.
    public func writeBulkString(_ bytes: ByteBuffer, into buffer: inout ByteBuffer) {
        buffer.reserveCapacity(minimumWritableBytes: bytes.readableBytes + 24)
        buffer.writeHeader(UInt8(ascii: "$"), Int64(bytes.readableBytes))
        buffer.writeImmutableBuffer(bytes)
        buffer.writeCRLF()
    }

    /// Writes `$<length>\r\n<bytes>\r\n`.
    public func writeBulkString(_ bytes: [UInt8], into buffer: inout ByteBuffer) {
        buffer.reserveCapacity(minimumWritableBytes: bytes.count + 24)
        buffer.writeHeader(UInt8(ascii: "$"), Int64(bytes.count))
        buffer.writeBytes(bytes)
        buffer.writeCRLF()
    }

    /// Writes `$<length>\r\n<bytes>\r\n`.
    public func writeBulkString(_ bytes: UnsafeRawBufferPointer, into buffer: inout ByteBuffer) {
        buffer.reserveCapacity(minimumWritableBytes: bytes.count + 24)
        buffer.writeHeader(UInt8(ascii: "$"), Int64(bytes.count))
        buffer.writeBytes(bytes)
        buffer.writeCRLF()
    }

    /// Writes `$<length>\r\n<utf8>\r\n` with the UTF-8 bytes of `text`.
    public func writeBulkString(_ text: String, into buffer: inout ByteBuffer) {
        let length = text.utf8.count
        buffer.reserveCapacity(minimumWritableBytes: length + 24)
        buffer.writeHeader(UInt8(ascii: "$"), Int64(length))
        buffer.writeString(text)
        buffer.writeCRLF()
    }

    /// Writes the null a missing value gets (`GET` of a missing key): `$-1\r\n` in RESP2,
    /// `_\r\n` in RESP3 (Redis `addReplyNull`).
    public func writeNull(into buffer: inout ByteBuffer) {
        if version == .resp3 { buffer.writeStaticString("_\r\n") } else { buffer.writeStaticString("$-1\r\n") }
    }

    /// Writes the null a missing aggregate gets: `*-1\r\n` in RESP2, `_\r\n` in RESP3
    /// (Redis `addReplyNullArray`).
    public func writeNullArray(into buffer: inout ByteBuffer) {
        if version == .resp3 { buffer.writeStaticString("_\r\n") } else { buffer.writeStaticString("*-1\r\n") }
    }

    /// Writes `*<count>\r\n`; `count` elements follow.
    public func writeArrayHeader(count: Int, into buffer: inout ByteBuffer) {
        buffer.writeHeader(UInt8(ascii: "*"), Int64(count))
    }

    /// Writes `%<count>\r\n` in RESP3, `*<2 count>\r\n` in RESP2; `count` key/value pairs follow.
    public func writeMapHeader(count: Int, into buffer: inout ByteBuffer) {
        if version == .resp3 {
            buffer.writeHeader(UInt8(ascii: "%"), Int64(count))
        } else {
            buffer.writeHeader(UInt8(ascii: "*"), Int64(count) * 2)
        }
    }

    /// Writes `~<count>\r\n` in RESP3, `*<count>\r\n` in RESP2; `count` elements follow.
    public func writeSetHeader(count: Int, into buffer: inout ByteBuffer) {
        buffer.writeHeader(version == .resp3 ? UInt8(ascii: "~") : UInt8(ascii: "*"), Int64(count))
    }

    /// Writes `><count>\r\n` in RESP3, `*<count>\r\n` in RESP2; `count` elements follow.
    public func writePushHeader(count: Int, into buffer: inout ByteBuffer) {
        buffer.writeHeader(version == .resp3 ? UInt8(ascii: ">") : UInt8(ascii: "*"), Int64(count))
    }

    /// Writes `#t\r\n` / `#f\r\n` in RESP3, `:1\r\n` / `:0\r\n` in RESP2.
    public func writeBoolean(_ value: Bool, into buffer: inout ByteBuffer) {
        switch (version, value) {
        case (.resp3, true): buffer.writeStaticString("#t\r\n")
        case (.resp3, false): buffer.writeStaticString("#f\r\n")
        case (.resp2, true): buffer.writeStaticString(":1\r\n")
        case (.resp2, false): buffer.writeStaticString(":0\r\n")
        }
    }

    /// Writes `,<value>\r\n` in RESP3 and a bulk string in RESP2, the number formatted by
    /// ``formatDouble(_:)`` (Redis `addReplyDouble`).
    public func writeDouble(_ value: Double, into buffer: inout ByteBuffer) {
        let text = Self.formatDouble(value)
        if version == .resp3 {
            buffer.writeInteger(UInt8(ascii: ","))
            buffer.writeString(text)
            buffer.writeCRLF()
        } else {
            writeBulkString(text, into: &buffer)
        }
    }

    /// Writes `(<digits>\r\n` in RESP3, a bulk string in RESP2 (Redis `addReplyBigNum`).
    public func writeBigNumber(_ digits: String, into buffer: inout ByteBuffer) {
        if version == .resp3 {
            buffer.writeSanitizedLine(UInt8(ascii: "("), digits.utf8)
        } else {
            writeBulkString(digits, into: &buffer)
        }
    }

    /// Writes `=<length>\r\n<fmt>:<bytes>\r\n` in RESP3, a bulk string of `bytes` in RESP2
    /// (Redis `addReplyVerbatim`). `format` is cut or space-padded to three bytes.
    public func writeVerbatimString(_ bytes: ByteBuffer, format: String, into buffer: inout ByteBuffer) {
        guard version == .resp3 else {
            writeBulkString(bytes, into: &buffer)
            return
        }
        buffer.reserveCapacity(minimumWritableBytes: bytes.readableBytes + 28)
        buffer.writeHeader(UInt8(ascii: "="), Int64(bytes.readableBytes) + 4)
        var formatBytes = format.utf8.makeIterator()
        for _ in 0..<3 { buffer.writeInteger(formatBytes.next() ?? UInt8(ascii: " ")) }
        buffer.writeInteger(UInt8(ascii: ":"))
        buffer.writeImmutableBuffer(bytes)
        buffer.writeCRLF()
    }

    /// Writes a command as a multibulk request, the form every client sends:
    /// `*<n>\r\n` then `$<length>\r\n<argument>\r\n` per argument. Independent of ``version``.
    public func writeCommand(_ arguments: [ByteBuffer], into buffer: inout ByteBuffer) {
        buffer.writeHeader(UInt8(ascii: "*"), Int64(arguments.count))
        for argument in arguments { writeBulkString(argument, into: &buffer) }
    }

    /// Writes a command with byte-string arguments as a multibulk request.
    public func writeCommand(_ arguments: [[UInt8]], into buffer: inout ByteBuffer) {
        buffer.writeHeader(UInt8(ascii: "*"), Int64(arguments.count))
        for argument in arguments { writeBulkString(argument, into: &buffer) }
    }

    /// Writes a command with UTF-8 arguments as a multibulk request.
    public func writeCommand(_ arguments: [String], into buffer: inout ByteBuffer) {
        buffer.writeHeader(UInt8(ascii: "*"), Int64(arguments.count))
        for argument in arguments { writeBulkString(argument, into: &buffer) }
    }
}

extension RESPEncoder: MessageToByteEncoder {
    /// Each outbound message is one reply.
    public typealias OutboundIn = RESPValue

    /// Writes `data` with ``write(_:into:)``.
    public func encode(data: RESPValue, out: inout ByteBuffer) {
        write(data, into: &out)
    }
}

extension ByteBuffer {
    @inline(__always)
    mutating func writeCRLF() {
        writeInteger(UInt16(0x0D0A), endianness: .big)
    }

    /// Writes `<prefix><decimal value>\r\n` without intermediate allocation.
    mutating func writeHeader(_ prefix: UInt8, _ value: Int64) {
        _ = writeWithUnsafeMutableBytes(minimumWritableBytes: 24) { out -> Int in
            var magnitude = value.magnitude
            var digits = 1
            var probe = magnitude
            while probe >= 10 {
                probe /= 10
                digits += 1
            }
            out[0] = prefix
            var index = 1
            if value < 0 {
                out[1] = UInt8(ascii: "-")
                index = 2
            }
            var position = index + digits - 1
            repeat {
                out[position] = UInt8(truncatingIfNeeded: magnitude % 10) + UInt8(ascii: "0")
                magnitude /= 10
                position -= 1
            } while magnitude > 0
            index += digits
            out[index] = 0x0D
            out[index + 1] = 0x0A
            return index + 2
        }
    }

    /// Writes `<prefix><bytes>\r\n` with every CR and LF of `bytes` replaced by a space.
    mutating func writeSanitizedLine<Bytes: Collection<UInt8>>(_ prefix: UInt8, _ bytes: Bytes) {
        writeInteger(prefix)
        if bytes.contains(where: { $0 == 0x0D || $0 == 0x0A }) {
            writeBytes(bytes.lazy.map { $0 == 0x0D || $0 == 0x0A ? 0x20 : $0 })
        } else {
            writeBytes(bytes)
        }
        writeCRLF()
    }
}
