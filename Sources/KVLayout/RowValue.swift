import KVBase

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The type of a row: a string, or the metadata of a collection whose elements are records
/// of their own (see ``CollectionLayout``).
public enum ValueType: UInt8, Sendable, Hashable, CaseIterable {
    case string = 0
    case hash = 1
    case list = 2
    case set = 3
    case zset = 4

    /// The name `TYPE` answers.
    public var name: String {
        switch self {
        case .string: return "string"
        case .hash: return "hash"
        case .list: return "list"
        case .set: return "set"
        case .zset: return "zset"
        }
    }
}

/// A row as the store keeps it: the value, its expiry time and its type.
public struct StoredEntry: Hashable, Sendable {
    /// The user value; for a collection, its metadata (``CollectionMeta``).
    public var value: [UInt8]
    /// When the row expires, in milliseconds since the Unix epoch; nil for never.
    public var expiresAt: Int64?
    /// What the row holds.
    public var type: ValueType

    /// Creates an entry.
    public init(value: [UInt8], expiresAt: Int64? = nil, type: ValueType = .string) {
        self.value = value
        self.expiresAt = expiresAt
        self.type = type
    }
}

/// The envelope around every value a store writes to its engines: a trailer, so that the
/// user value is a prefix and stripping it needs no copy.
///
/// ```
/// row value := payload  format:1                      (format bit 0 clear: no expiry)
///            | payload  expires-at-ms:8 LE  format:1  (format bit 0 set: expiring)
/// format    := type << 1 | expiring      type: 0 string, 1 hash, 2 list, 3 set, 4 zset
/// ```
/// Format bytes above 0x09 are reported as corruption. A string row's payload is the value;
/// a collection's is its metadata (``CollectionMeta``). Index and expiry entries use the same
/// envelope (type string) with an empty payload, carrying the expiry of their row.
package enum RowValue {
    /// Format byte of a value with no expiry.
    @usableFromInline package static let plain: UInt8 = 0x00
    /// Format byte of a value with an expiry time.
    @usableFromInline package static let expiring: UInt8 = 0x01

    /// The envelope of `payload` with `expiresAt`.
    public static func encode(_ payload: [UInt8], expiresAt: Int64?, type: ValueType = .string) -> [UInt8] {
        var v = payload
        appendTrailer(expiresAt, type: type, to: &v)
        return v
    }

    /// The largest format byte (a zset with an expiry).
    @usableFromInline static let maxFormat: UInt8 = ValueType.zset.rawValue << 1 | 1

    /// Appends the trailer for `expiresAt` and `type`.
    @inlinable
    public static func appendTrailer(_ expiresAt: Int64?, type: ValueType = .string, to v: inout [UInt8]) {
        if let t = expiresAt {
            var u = UInt64(bitPattern: t)
            for _ in 0..<8 {
                v.append(UInt8(truncatingIfNeeded: u))
                u >>= 8
            }
            v.append(type.rawValue << 1 | expiring)
        } else {
            v.append(type.rawValue << 1)
        }
    }

    /// The payload length and expiry of an encoded value; nil when the envelope is damaged.
    @inlinable
    public static func parse(_ v: UnsafeRawBufferPointer) -> (payload: Int, expiresAt: Int64?)? {
        guard let format = v.last, format <= maxFormat else { return nil }
        if format & 1 == 0 { return (v.count - 1, nil) }
        guard v.count >= 9 else { return nil }
        var u: UInt64 = 0
        for i in stride(from: v.count - 2, through: v.count - 9, by: -1) { u = u << 8 | UInt64(v[i]) }
        return (v.count - 9, Int64(bitPattern: u))
    }

    /// The type of an encoded value whose envelope ``parse(_:)`` accepted.
    @inlinable
    public static func type(_ v: UnsafeRawBufferPointer) -> ValueType {
        ValueType(rawValue: (v.last ?? 0) >> 1) ?? .string
    }

    /// Decodes an engine value read for `key` into an entry (expired or not).
    @inlinable
    package static func decode(_ raw: consuming [UInt8], key: [UInt8]) throws(KVError) -> StoredEntry {
        guard let (n, t) = raw.withUnsafeBytes({ parse($0) }) else { throw damaged(key) }
        let type = ValueType(rawValue: raw[raw.count - 1] >> 1) ?? .string
        // Consumed: when the caller hands over its only reference, the envelope is cut off
        // in place instead of the value being copied.
        raw.removeLast(raw.count - n)
        return StoredEntry(value: raw, expiresAt: t, type: type)
    }

    @usableFromInline
    package static func damaged(_ key: [UInt8]) -> KVError {
        .corruption(file: "", offset: 0, reason: "row value of key \(printable(key)) has an unknown envelope format")
    }

    /// Whether a row expiring at `expiresAt` is expired at `now`.
    @inlinable
    package static func isExpired(_ expiresAt: Int64?, now: Int64) -> Bool {
        if let t = expiresAt { return t <= now }
        return false
    }

    /// Wall-clock time in milliseconds since the Unix epoch.
    public static func wallClockMillis() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}

/// A short printable form of a key for error messages.
package func printable(_ key: [UInt8]) -> String {
    let shown = key.prefix(64).map { b -> String in
        (b >= 0x20 && b < 0x7F && b != UInt8(ascii: "\\")) ? String(UnicodeScalar(b)) : "\\x" + String(b, radix: 16).leftPadded(2)
    }.joined()
    return "'" + shown + (key.count > 64 ? "…" : "") + "'"
}

extension String {
    package func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
