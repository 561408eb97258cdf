import KVBase
import KVLayout
import KVStore

/// Where a follower stands in one leader shard's history: the leader's replication id and the
/// last sequence number applied. Kept in the follower's own store, in the home shard of the
/// leader shard (see ``ReplicaApplier``), and written in the same batch as the groups it
/// covers, so a crash keeps both or neither.
///
/// Record grammar (integers little-endian):
///
/// ```
/// key      := 0xFF (EngineKey.reservedByte) | 0x01 (EngineKey.metaTag) | "repl.applied."
///           | leader-shard u16 big-endian
/// value    := version u8 (= 1) | sequence fixed64 | replid-length u8 | replid (≤ 255 bytes)
///           | crc fixed32
/// crc      := masked CRC32C of every value byte before it
/// ```
public struct ReplicationPosition: Sendable, Equatable {
    /// The leader's history (replication id and layout generation).
    public var replid: String
    /// The last sequence number applied.
    public var sequence: UInt64

    /// A position.
    public init(replid: String, sequence: UInt64) {
        self.replid = replid
        self.sequence = sequence
    }

    /// The prefix of every position record.
    static let keyPrefix: [UInt8] = [EngineKey.reservedByte, EngineKey.metaTag] + Array("repl.applied.".utf8)

    /// The key of leader shard `leaderShard`'s position.
    static func key(leaderShard: Int) -> [UInt8] {
        keyPrefix + [UInt8(truncatingIfNeeded: leaderShard >> 8), UInt8(truncatingIfNeeded: leaderShard)]
    }

    /// The record value.
    func encoded() -> [UInt8] {
        var v: [UInt8] = [1]
        v.appendFixed64(sequence)
        let id = Array(replid.utf8.prefix(255))
        v.append(UInt8(id.count))
        v += id
        v.appendFixed32(CRC32C.mask(CRC32C.checksum(v)))
        return v
    }

    /// Decodes a record value read from `file` (named in errors).
    static func decode(_ v: [UInt8], file: String) throws(KVError) -> ReplicationPosition {
        guard v.count >= 14, v[0] == 1 else {
            throw .corruption(file: file, offset: 0, reason: "replication position record has an unknown format")
        }
        let n = Int(v[9])
        guard v.count == 14 + n else { throw .corruption(file: file, offset: 0, reason: "replication position record is truncated") }
        let crc = v.withUnsafeBytes { $0.fixed32(at: 10 + n) }
        guard crc == CRC32C.mask(CRC32C.checksum(Array(v[0..<(10 + n)]))) else {
            throw .corruption(file: file, offset: 0, reason: "replication position record fails its checksum")
        }
        return ReplicationPosition(replid: String(decoding: v[10..<(10 + n)], as: UTF8.self),
                                   sequence: v.withUnsafeBytes { $0.fixed64(at: 1) })
    }
}
