import KVBase
import KVLayout

/// A value as an index stores it: a string or a number.
///
/// Values order as their entries do: numbers before strings, numbers numerically (`-0.0`
/// equals `0.0`), strings bytewise.
public enum IndexValue: Hashable, Sendable, Comparable {
    /// A string, as UTF-8 bytes (JSON escapes decoded).
    case string([UInt8])
    /// A finite number.
    case number(Double)

    /// Whether `a` sorts before `b` in an index.
    public static func < (a: IndexValue, b: IndexValue) -> Bool {
        var x: [UInt8] = []
        var y: [UInt8] = []
        IndexKeys.appendValue(a, to: &x)
        IndexKeys.appendValue(b, to: &y)
        return x.lexicographicallyPrecedes(y)
    }
}

/// The byte layout of secondary-index entries in a shard's engine key space.
///
/// ```
/// index entry := 0xFF 0x02 index-id:4 BE  value  escaped(user key)
/// value       := 0x01 sortable-double:8         (number)
///              | 0x02 escaped(string bytes)     (string)
/// sortable-double(d) := bits(d) with the sign bit flipped when d >= 0, all bits flipped
///                       when d < 0, big-endian (so byte order equals numeric order,
///                       -0.0 is stored as 0.0, NaN is never indexed)
/// ```
/// The entry's engine value is a row-value envelope with an empty payload carrying the row's
/// expiry (see `RowValue`), so the compaction filter reclaims both together. Entries sort by
/// (index, value, user key); the slot of an entry is the slot of its user key, so it lives in
/// the row's shard and moves with it.
package enum IndexKeys {
    package static let numberType: UInt8 = 0x01
    package static let stringType: UInt8 = 0x02

    /// The key prefix of all entries of index `id`.
    package static func indexPrefix(_ id: UInt32) -> [UInt8] {
        var k: [UInt8] = [EngineKey.reservedByte, EngineKey.indexTag]
        k.reserveCapacity(24)
        appendID(id, to: &k)
        return k
    }

    /// The engine key of the entry of `user` with `value` in index `id`.
    package static func entry(index id: UInt32, value: IndexValue, user: [UInt8]) -> [UInt8] {
        var k = indexPrefix(id)
        appendValue(value, to: &k)
        EngineKey.appendEscaped(user, to: &k)
        return k
    }

    /// Appends the encoded `value`.
    package static func appendValue(_ value: IndexValue, to out: inout [UInt8]) {
        switch value {
        case .number(let d):
            out.append(numberType)
            EngineKey.appendBigEndian(sortableBits(d), to: &out)
        case .string(let s):
            out.append(stringType)
            EngineKey.appendEscaped(s, to: &out)
        }
    }

    /// The order-preserving bit pattern of a double.
    package static func sortableBits(_ d: Double) -> UInt64 {
        let bits = (d == 0 ? 0.0 : d).bitPattern
        return d < 0 ? ~bits : bits | (1 << 63)
    }

    /// The double of a sortable bit pattern.
    package static func double(fromSortable u: UInt64) -> Double {
        Double(bitPattern: u & (1 << 63) != 0 ? u & ~(1 << 63) : ~u)
    }

    package static func appendID(_ id: UInt32, to out: inout [UInt8]) {
        out.append(UInt8(truncatingIfNeeded: id >> 24))
        out.append(UInt8(truncatingIfNeeded: id >> 16))
        out.append(UInt8(truncatingIfNeeded: id >> 8))
        out.append(UInt8(truncatingIfNeeded: id))
    }

    /// Decodes an entry: index id, value, user key; nil when it is not a well-formed entry.
    package static func decode(_ key: UnsafeRawBufferPointer) -> (index: UInt32, value: IndexValue, user: [UInt8])? {
        guard key.count >= 7, key[0] == EngineKey.reservedByte, key[1] == EngineKey.indexTag else { return nil }
        let id = UInt32(key[2]) << 24 | UInt32(key[3]) << 16 | UInt32(key[4]) << 8 | UInt32(key[5])
        var i = 7
        let value: IndexValue
        switch key[6] {
        case numberType:
            guard key.count >= 15 else { return nil }
            var u: UInt64 = 0
            for j in 7..<15 { u = u << 8 | UInt64(key[j]) }
            value = .number(double(fromSortable: u))
            i = 15
        case stringType:
            guard let (s, end) = EngineKey.decodeEscaped(key, from: 7) else { return nil }
            value = .string(s)
            i = end
        default:
            return nil
        }
        guard let (user, end) = EngineKey.decodeEscaped(key, from: i), end == key.count else { return nil }
        return (id, value, user)
    }

    /// The user key of an entry, or nil when it is not a well-formed entry.
    package static func userKey(ofEntry key: UnsafeRawBufferPointer) -> [UInt8]? {
        decode(key)?.user
    }
}
