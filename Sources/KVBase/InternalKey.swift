// Internal keys order every version of every user key.
//
//   internal key := user_key bytes || trailer fixed64
//   trailer      := (sequence << 8) | kind         (sequence < 2^56)
//   kind         := 0x00 deletion | 0x01 value
//
// Order: user keys ascending by bytes; for equal user keys, trailer descending, so the
// newest version of a key comes first. A lookup for (key, snapshot s) seeks to
// (key, s, kind=0x01) — the largest trailer that is still visible at s.

/// Monotonic per-database sequence number of a write. Each record in a batch takes one.
public typealias SequenceNumber = UInt64

/// The largest sequence number an internal key can carry (56 bits).
public let maxSequenceNumber: SequenceNumber = (1 << 56) - 1

/// What an internal key's entry means.
public enum ValueKind: UInt8, Sendable {
    /// A tombstone: the key was deleted at this sequence.
    case deletion = 0
    /// A put: the entry's value is the key's value at this sequence.
    case value = 1
}

/// Packs a sequence number and kind into the 8-byte trailer.
@inlinable
public func packTrailer(_ sequence: SequenceNumber, _ kind: ValueKind) -> UInt64 {
    (sequence << 8) | UInt64(kind.rawValue)
}

/// Size of the trailer that follows the user key in an internal key.
public let internalKeyTrailerSize = 8

/// Views over an encoded internal key.
public enum InternalKey {
    /// The user-key part of an encoded internal key.
    @inlinable
    public static func userKey(_ ikey: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: ikey[0..<(ikey.count - internalKeyTrailerSize)])
    }

    /// The trailer of an encoded internal key.
    @inlinable
    public static func trailer(_ ikey: UnsafeRawBufferPointer) -> UInt64 {
        ikey.fixed64(at: ikey.count - internalKeyTrailerSize)
    }

    /// The sequence number of an encoded internal key.
    @inlinable
    public static func sequence(_ ikey: UnsafeRawBufferPointer) -> SequenceNumber {
        trailer(ikey) >> 8
    }

    /// The kind byte of an encoded internal key, or nil if it is not a known kind.
    @inlinable
    public static func kind(_ ikey: UnsafeRawBufferPointer) -> ValueKind? {
        ValueKind(rawValue: UInt8(truncatingIfNeeded: trailer(ikey)))
    }

    /// Builds an internal key.
    @inlinable
    public static func make(_ userKey: UnsafeRawBufferPointer, _ sequence: SequenceNumber, _ kind: ValueKind) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(userKey.count + internalKeyTrailerSize)
        out.append(contentsOf: userKey)
        out.appendFixed64(packTrailer(sequence, kind))
        return out
    }

    /// Builds an internal key.
    @inlinable
    public static func make(_ userKey: [UInt8], _ sequence: SequenceNumber, _ kind: ValueKind) -> [UInt8] {
        userKey.withUnsafeBytes { make($0, sequence, kind) }
    }

    /// Compares two encoded internal keys: user key ascending, then trailer descending.
    @inlinable
    public static func compare(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
        let r = compareBytes(userKey(a), userKey(b))
        if r != 0 { return r }
        let ta = trailer(a)
        let tb = trailer(b)
        return ta > tb ? -1 : (ta < tb ? 1 : 0)
    }

    /// Compares two encoded internal keys held in arrays.
    @inlinable
    public static func compare(_ a: [UInt8], _ b: [UInt8]) -> Int {
        a.withUnsafeBytes { pa in b.withUnsafeBytes { pb in compare(pa, pb) } }
    }

    /// A well-formed internal key is at least 8 bytes with a known kind.
    @inlinable
    public static func isValid(_ ikey: UnsafeRawBufferPointer) -> Bool {
        ikey.count >= internalKeyTrailerSize && kind(ikey) != nil
    }
}
