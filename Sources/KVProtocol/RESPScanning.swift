import NIOCore

#if canImport(Darwin)
    import Darwin
#elseif canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Outcome of a search for a line terminator in the readable bytes of a buffer.
enum LineSearch: Equatable {
    /// The terminator is at this offset from the reader index.
    case found(Int)
    /// Not in the readable bytes; the first `scanned` bytes need not be searched again.
    case notFound(scanned: Int)
    /// A NUL byte comes before any terminator. Redis searches its query buffer with
    /// `strchr`, which stops at NUL, so such a line never completes.
    case blocked
}

extension ByteBuffer {
    /// Finds the first `terminator` at or after `offset` (relative to the reader index),
    /// with `memchr`. When `nulBlocks` is set, a NUL byte before the terminator yields
    /// ``LineSearch/blocked``, as Redis's `strchr` scans behave.
    func searchLine(for terminator: UInt8, from offset: Int, nulBlocks: Bool) -> LineSearch {
        self.withUnsafeReadableBytes { raw -> LineSearch in
            let count = raw.count
            guard offset < count, let base = raw.baseAddress else { return .notFound(scanned: count) }
            let start = base + offset
            let length = count - offset
            let hit = memchr(start, Int32(terminator), length)
            let end = hit.map { start.distance(to: UnsafeRawPointer($0)) } ?? length
            if nulBlocks, end > 0, memchr(start, 0, end) != nil { return .blocked }
            return hit == nil ? .notFound(scanned: count) : .found(offset + end)
        }
    }

    /// Finds the first CRLF pair at or after `offset`. A CR that is the last readable byte
    /// is left unscanned, so the search resumes there once more bytes arrive.
    func searchCRLF(from offset: Int) -> LineSearch {
        self.withUnsafeReadableBytes { raw -> LineSearch in
            let count = raw.count
            guard let base = raw.baseAddress else { return .notFound(scanned: 0) }
            var position = offset
            while position < count {
                guard let hit = memchr(base + position, 0x0D, count - position) else {
                    return .notFound(scanned: count)
                }
                let index = base.distance(to: UnsafeRawPointer(hit))
                if index + 1 >= count { return .notFound(scanned: index) }
                if raw[index + 1] == 0x0A { return .found(index) }
                position = index + 1
            }
            return .notFound(scanned: count)
        }
    }
}

/// A request header line (`*<n>` or `$<n>`) at the reader index, found by ``scanHeader``.
struct HeaderLine {
    /// Offset of the CR that ends the line.
    var end: Int
    /// The line's first byte (the type byte, unless the line is empty).
    var first: UInt8
    /// The number after the type byte, parsed by ``RESPNumber/parseStrict(_:)``.
    var value: Int64?
}

/// Outcome of ``scanHeader(_:from:)``.
enum HeaderScan {
    /// The CR and the byte after it are present.
    case complete(HeaderLine)
    /// No complete line yet; bytes before `scanned` need not be searched again.
    case incomplete(scanned: Int)
    /// A NUL byte comes before any CR (see ``LineSearch/blocked``).
    case blocked
}

/// Finds the CR ending the header line at the start of `raw`, searching from `offset`
/// the way Redis's `strchr(querybuf, '\r')` does, and parses the line in the same pass.
/// Header lines are a few bytes long, so a byte loop beats two `memchr` calls here.
@inline(__always)
func scanHeader(_ raw: UnsafeRawBufferPointer, from offset: Int) -> HeaderScan {
    let count = raw.count
    var index = offset
    while index < count {
        let byte = raw[index]
        if byte == 0x0D {
            // Redis needs one more byte after the CR (taken as the LF, unchecked).
            if index + 1 >= count { return .incomplete(scanned: index) }
            let value = index >= 1 ? RESPNumber.parseStrict(UnsafeRawBufferPointer(rebasing: raw[1..<index])) : nil
            return .complete(HeaderLine(end: index, first: raw[0], value: value))
        }
        if byte == 0 { return .blocked }
        index += 1
    }
    return .incomplete(scanned: count)
}

enum RESPNumber {
    /// Parses a decimal `Int64` exactly as Redis's `string2ll` does: an optional `-`, no
    /// `+`, no spaces, no leading zeros (so `-0` and `007` are rejected), at most 20
    /// characters, and no overflow.
    static func parseStrict(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        let count = bytes.count
        if count == 0 || count >= 21 { return nil }
        if count == 1 && bytes[0] == UInt8(ascii: "0") { return 0 }
        var index = 0
        var negative = false
        if bytes[0] == UInt8(ascii: "-") {
            negative = true
            index = 1
            if index == count { return nil }
        }
        let first = bytes[index]
        guard first >= UInt8(ascii: "1"), first <= UInt8(ascii: "9") else { return nil }
        return accumulate(bytes, from: index, negative: negative)
    }

    /// Parses a reply integer: an optional `+` or `-`, then one or more digits, no overflow.
    static func parseLenient(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        var index = 0
        var negative = false
        if let first = bytes.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
            negative = first == UInt8(ascii: "-")
            index = 1
        }
        guard index < bytes.count else { return nil }
        return accumulate(bytes, from: index, negative: negative)
    }

    private static func accumulate(_ bytes: UnsafeRawBufferPointer, from start: Int, negative: Bool) -> Int64? {
        var value: UInt64 = 0
        var index = start
        while index < bytes.count {
            let byte = bytes[index]
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            if overflow1 || overflow2 { return nil }
            value = sum
            index += 1
        }
        if negative {
            if value > UInt64(Int64.max) + 1 { return nil }
            return value == UInt64(Int64.max) + 1 ? Int64.min : -Int64(value)
        }
        return value > UInt64(Int64.max) ? nil : Int64(value)
    }
}
