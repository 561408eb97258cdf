// Little-endian fixed-width integers and LEB128 varints, as LevelDB encodes them.
//
//   fixed32 := 4 bytes little-endian      fixed64 := 8 bytes little-endian
//   varint  := 7 bits per byte, low group first, high bit set on every byte but the last
//              (varint32 takes at most 5 bytes, varint64 at most 10)

extension Array where Element == UInt8 {
    /// Appends `value` as 4 little-endian bytes.
    @inlinable
    public mutating func appendFixed32(_ value: UInt32) {
        append(UInt8(truncatingIfNeeded: value))
        append(UInt8(truncatingIfNeeded: value >> 8))
        append(UInt8(truncatingIfNeeded: value >> 16))
        append(UInt8(truncatingIfNeeded: value >> 24))
    }

    /// Appends `value` as 8 little-endian bytes.
    @inlinable
    public mutating func appendFixed64(_ value: UInt64) {
        appendFixed32(UInt32(truncatingIfNeeded: value))
        appendFixed32(UInt32(truncatingIfNeeded: value >> 32))
    }

    /// Appends `value` as a LEB128 varint (1 to 10 bytes).
    @inlinable
    public mutating func appendVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        append(UInt8(truncatingIfNeeded: v))
    }

    /// Appends a varint length followed by the bytes.
    @inlinable
    public mutating func appendLengthPrefixed(_ bytes: UnsafeRawBufferPointer) {
        appendVarint(UInt64(bytes.count))
        append(contentsOf: bytes)
    }

    /// Appends a varint length followed by the bytes.
    @inlinable
    public mutating func appendLengthPrefixed(_ bytes: [UInt8]) {
        appendVarint(UInt64(bytes.count))
        append(contentsOf: bytes)
    }
}

/// Number of bytes `value` takes as a varint.
@inlinable
public func varintLength(_ value: UInt64) -> Int {
    var v = value
    var n = 1
    while v >= 0x80 {
        v >>= 7
        n += 1
    }
    return n
}

extension UnsafeRawBufferPointer {
    /// Reads a little-endian UInt32 at `offset`. The caller guarantees `offset + 4 <= count`.
    @inlinable
    public func fixed32(at offset: Int) -> UInt32 {
        UInt32(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    /// Reads a little-endian UInt64 at `offset`. The caller guarantees `offset + 8 <= count`.
    @inlinable
    public func fixed64(at offset: Int) -> UInt64 {
        UInt64(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// Decodes a varint starting at `offset`, advancing it. Returns nil when the varint is
    /// truncated or longer than 10 bytes (never reads past `count`).
    @inlinable
    public func varint(at offset: inout Int) -> UInt64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var i = offset
        while i < count && shift <= 63 {
            let byte = self[i]
            i += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 {
                offset = i
                return result
            }
            shift += 7
        }
        return nil
    }

    /// Decodes a varint that must fit in 32 bits.
    @inlinable
    public func varint32(at offset: inout Int) -> UInt32? {
        var o = offset
        guard let v = varint(at: &o), v <= UInt64(UInt32.max) else { return nil }
        offset = o
        return UInt32(v)
    }
}

/// Lexicographic byte comparison (memcmp order, shorter prefix first).
@inlinable
public func compareBytes(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
    let n = Swift.min(a.count, b.count)
    if n > 0 {
        let r = memcmpShim(a.baseAddress!, b.baseAddress!, n)
        if r != 0 { return r < 0 ? -1 : 1 }
    }
    return a.count < b.count ? -1 : (a.count > b.count ? 1 : 0)
}

/// Lexicographic comparison of two byte arrays.
@inlinable
public func compareBytes(_ a: [UInt8], _ b: [UInt8]) -> Int {
    a.withUnsafeBytes { pa in b.withUnsafeBytes { pb in compareBytes(pa, pb) } }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

@inlinable
func memcmpShim(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Int32 {
    memcmp(a, b, n)
}
