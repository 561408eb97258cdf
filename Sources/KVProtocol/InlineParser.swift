import NIOCore

/// Splits an inline request line into arguments with the rules of Redis's `sdssplitargs`.
///
/// Grammar, per argument (arguments are separated by runs of C `isspace` bytes:
/// space, `\t`, `\n`, `\v`, `\f`, `\r`):
/// - Unquoted bytes run until space, `\t`, `\n`, `\r` or the end of the line (`\v` and
///   `\f` do not end an argument; they are only skipped between arguments).
/// - A `"` anywhere in an argument opens a double-quoted section in which `\xHH` (two hex
///   digits) is a byte, `\n` `\r` `\t` `\b` `\a` are control characters, and a backslash
///   before any other byte is that byte (`\\`, `\"`).
/// - A `'` opens a single-quoted section in which only `\'` is an escape.
/// - A closing quote ends the argument and must be followed by whitespace or the end of
///   the line; an unterminated quote or a quote followed by anything else is an error
///   (`ERR Protocol error: unbalanced quotes in request`).
/// - Like the C code, which works on a C string, the line ends at its first NUL byte.
/// An empty or all-whitespace line gives no arguments.
enum InlineParser {
    /// One argument: a range of the line that needed no unescaping, or unescaped bytes.
    private enum Token {
        case slice(Range<Int>)
        case bytes([UInt8])
    }

    /// Splits the `length` bytes at `offset` (relative to the reader index) of `buffer`.
    ///
    /// - Returns: The arguments; arguments without quotes are slices of `buffer`.
    ///   `nil` when the quotes are unbalanced.
    static func split(_ buffer: ByteBuffer, offset: Int, length: Int) -> [ByteBuffer]? {
        let tokens: [Token]? = buffer.withUnsafeReadableBytes { raw in
            tokenize(UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + length)]))
        }
        guard let tokens else { return nil }
        return tokens.map { token in
            switch token {
            case .slice(let range):
                return buffer.getSlice(at: buffer.readerIndex + offset + range.lowerBound, length: range.count)!
            case .bytes(let bytes):
                return ByteBuffer(bytes: bytes)
            }
        }
    }

    @inline(__always)
    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || (byte >= 0x09 && byte <= 0x0D)
    }

    @inline(__always)
    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// The `sdssplitargs` state machine. Reading at or past the end yields 0, standing in
    /// for the C string terminator.
    private static func tokenize(_ line: UnsafeRawBufferPointer) -> [Token]? {
        let count = line.firstIndex(of: 0) ?? line.count
        @inline(__always) func at(_ index: Int) -> UInt8 { index < count ? line[index] : 0 }
        let backslash = UInt8(ascii: "\\")
        let doubleQuote = UInt8(ascii: "\"")
        let singleQuote = UInt8(ascii: "'")

        var tokens: [Token] = []
        var p = 0
        while true {
            while p < count && isSpace(line[p]) { p += 1 }
            if p >= count { return tokens }

            let start = p
            var plainEnd = p
            var unescaped: [UInt8]? = nil
            var inDouble = false
            var inSingle = false
            var done = false
            while !done {
                let c = at(p)
                if inDouble {
                    if c == backslash, at(p + 1) == UInt8(ascii: "x"),
                        let high = hexValue(at(p + 2)), let low = hexValue(at(p + 3))
                    {
                        unescaped!.append(high &* 16 &+ low)
                        p += 3
                    } else if c == backslash && at(p + 1) != 0 {
                        p += 1
                        switch at(p) {
                        case UInt8(ascii: "n"): unescaped!.append(0x0A)
                        case UInt8(ascii: "r"): unescaped!.append(0x0D)
                        case UInt8(ascii: "t"): unescaped!.append(0x09)
                        case UInt8(ascii: "b"): unescaped!.append(0x08)
                        case UInt8(ascii: "a"): unescaped!.append(0x07)
                        case let other: unescaped!.append(other)
                        }
                    } else if c == doubleQuote {
                        let next = at(p + 1)
                        if next != 0 && !isSpace(next) { return nil }
                        done = true
                    } else if c == 0 {
                        return nil
                    } else {
                        unescaped!.append(c)
                    }
                } else if inSingle {
                    if c == backslash && at(p + 1) == singleQuote {
                        p += 1
                        unescaped!.append(singleQuote)
                    } else if c == singleQuote {
                        let next = at(p + 1)
                        if next != 0 && !isSpace(next) { return nil }
                        done = true
                    } else if c == 0 {
                        return nil
                    } else {
                        unescaped!.append(c)
                    }
                } else {
                    switch c {
                    case 0x20, 0x0A, 0x0D, 0x09, 0:
                        plainEnd = p
                        done = true
                    case doubleQuote, singleQuote:
                        if c == doubleQuote { inDouble = true } else { inSingle = true }
                        unescaped = Array(UnsafeRawBufferPointer(rebasing: line[start..<p]))
                    default:
                        break
                    }
                }
                if at(p) != 0 { p += 1 }
            }
            if let unescaped {
                tokens.append(.bytes(unescaped))
            } else {
                tokens.append(.slice(start..<plainEnd))
            }
        }
    }
}
