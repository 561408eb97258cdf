/// Maps keys to the 16384 hash slots of Redis Cluster.
///
/// `slot(key) = CRC16-XMODEM(hashed part of key) mod 16384`. The hashed part is the whole key
/// unless it has a *hash tag*: when the key contains a `{` followed later by a `}` with at least
/// one byte between them, only the bytes between the first `{` and the first `}` after it are
/// hashed. Keys sharing a tag therefore share a slot (and a shard), which is what makes
/// multi-key batches over them atomic:
///
///     "{user1000}.following"  and  "{user1000}.followers"   same slot ("user1000" hashed)
///     "foo{}{bar}"            whole key hashed (the first tag is empty)
///     "foo{{bar}}zap"         "{bar" hashed
///     "foo{bar}{zap}"         "bar" hashed
///
/// Slots are fixed forever: the slot of a key never changes; only the slot → shard table does.
@usableFromInline
package enum HashSlot {
    /// Number of slots, as in Redis Cluster.
    @usableFromInline
    package static let count = 16384

    /// The slot of `key`, in `0..<16384`.
    @inlinable
    package static func slot(of key: UnsafeRawBufferPointer) -> Int {
        Int(CRC16.checksum(hashedPart(of: key)) & UInt16(count - 1))
    }

    /// The slot of a byte-array key.
    @inlinable
    package static func slot(of key: [UInt8]) -> Int {
        key.withUnsafeBytes { slot(of: $0) }
    }

    /// The slot of a UTF-8 string key.
    package static func slot(of key: String) -> Int {
        slot(of: Array(key.utf8))
    }

    /// The bytes that are hashed: the hash tag when there is a non-empty one, else the key.
    @inlinable
    package static func hashedPart(of key: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        guard let open = key.firstIndex(of: UInt8(ascii: "{")) else { return key }
        var close = open + 1
        while close < key.count && key[close] != UInt8(ascii: "}") { close += 1 }
        if close == key.count || close == open + 1 { return key }
        return UnsafeRawBufferPointer(rebasing: key[(open + 1)..<close])
    }
}
