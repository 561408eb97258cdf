import KVBase

/// The frames a leader sends to a follower, inside the bulk-string reply of a replication
/// command. Grammar (integers little-endian):
///
/// ```
/// frame   := magic "SHRF" | version u8 (= 2) | type u8 | shard u16 | first u64 | last u64
///          | length u32 | crc u32 | payload
/// crc     := masked CRC32C of the 28 header bytes before it, then of the payload
/// type    := 1 group          payload = encoded write batch of sequences first...last
///          | 2 snapshot chunk payload = *( varint32 klen | key | varint32 vlen | value )
///          | 3 snapshot end   first = last = the snapshot's sequence; no payload
///          | 4 resync         the backlog no longer holds the follower's position; no payload
/// ```
public enum ReplicationFrame: Equatable, Sendable {
    /// Committed write group `first...last` of leader shard `shard` (an encoded write batch).
    case group(shard: Int, first: UInt64, last: UInt64, batch: [UInt8])
    /// Records of a shard's snapshot, in key order (engine key, engine value).
    case snapshotChunk(shard: Int, records: [(key: [UInt8], value: [UInt8])])
    /// The snapshot of `shard` is complete; it shows the shard at `sequence`.
    case snapshotEnd(shard: Int, sequence: UInt64)
    /// The backlog no longer holds the follower's position in `shard`: it needs a snapshot.
    case resync(shard: Int)

    static let magic: [UInt8] = Array("SHRF".utf8)
    static let version: UInt8 = 2
    static let headerSize = 4 + 1 + 1 + 2 + 8 + 8 + 4 + 4

    /// Frames are equal when their encodings are.
    public static func == (a: ReplicationFrame, b: ReplicationFrame) -> Bool {
        var x: [UInt8] = [], y: [UInt8] = []
        a.encode(into: &x)
        b.encode(into: &y)
        return x == y
    }

    /// Appends the frame's encoding to `out`.
    public func encode(into out: inout [UInt8]) {
        var type: UInt8
        var shard = 0
        var first: UInt64 = 0, last: UInt64 = 0
        var payload: [UInt8] = []
        switch self {
        case .group(let s, let f, let l, let batch):
            type = 1; shard = s; first = f; last = l; payload = batch
        case .snapshotChunk(let s, let records):
            type = 2; shard = s
            for (k, v) in records {
                payload.appendVarint(UInt64(k.count))
                payload += k
                payload.appendVarint(UInt64(v.count))
                payload += v
            }
        case .snapshotEnd(let s, let seq):
            type = 3; shard = s; first = seq; last = seq
        case .resync(let s):
            type = 4; shard = s
        }
        out += Self.magic
        out.append(Self.version)
        out.append(type)
        out.append(UInt8(truncatingIfNeeded: shard))
        out.append(UInt8(truncatingIfNeeded: shard >> 8))
        out.appendFixed64(first)
        out.appendFixed64(last)
        out.appendFixed32(UInt32(payload.count))
        let crc = out.withUnsafeBytes { o in
            payload.withUnsafeBytes { CRC32C.update(CRC32C.checksum(UnsafeRawBufferPointer(rebasing: o[(o.count - 28)...])), $0) }
        }
        out.appendFixed32(CRC32C.mask(crc))
        out += payload
    }

    /// Decodes every frame of `bytes`; throws a ``ReplicationError`` describing the first damage.
    public static func decodeAll(_ bytes: [UInt8]) throws -> [ReplicationFrame] {
        var out: [ReplicationFrame] = []
        try bytes.withUnsafeBytes { p in
            var pos = 0
            while pos < p.count {
                guard p.count - pos >= headerSize else { throw ReplicationError("truncated frame header at offset \(pos)") }
                guard Array(p[pos..<(pos + 4)]) == magic else { throw ReplicationError("bad frame magic at offset \(pos)") }
                guard p[pos + 4] == version else { throw ReplicationError("unknown frame version \(p[pos + 4]) at offset \(pos)") }
                let type = p[pos + 5]
                let shard = Int(p[pos + 6]) | Int(p[pos + 7]) << 8
                let first = p.fixed64(at: pos + 8)
                let last = p.fixed64(at: pos + 16)
                let length = Int(p.fixed32(at: pos + 24))
                let crc = p.fixed32(at: pos + 28)
                let header = UnsafeRawBufferPointer(rebasing: p[pos..<(pos + 28)])
                pos += headerSize
                guard p.count - pos >= length else { throw ReplicationError("truncated frame payload at offset \(pos)") }
                let payload = UnsafeRawBufferPointer(rebasing: p[pos..<(pos + length)])
                guard CRC32C.mask(CRC32C.update(CRC32C.checksum(header), payload)) == crc else {
                    throw ReplicationError("frame checksum mismatch at offset \(pos - headerSize) (shard \(shard))")
                }
                pos += length
                switch type {
                case 1: out.append(.group(shard: shard, first: first, last: last, batch: Array(payload)))
                case 2:
                    var records: [(key: [UInt8], value: [UInt8])] = []
                    var q = 0
                    while q < payload.count {
                        guard let kl = payload.varint32(at: &q), Int(kl) <= payload.count - q else { throw ReplicationError("bad snapshot record") }
                        let k = Array(payload[q..<(q + Int(kl))])
                        q += Int(kl)
                        guard let vl = payload.varint32(at: &q), Int(vl) <= payload.count - q else { throw ReplicationError("bad snapshot record") }
                        let v = Array(payload[q..<(q + Int(vl))])
                        q += Int(vl)
                        records.append((k, v))
                    }
                    out.append(.snapshotChunk(shard: shard, records: records))
                case 3: out.append(.snapshotEnd(shard: shard, sequence: first))
                case 4: out.append(.resync(shard: shard))
                default: throw ReplicationError("unknown frame type \(type)")
                }
            }
        }
        return out
    }
}

/// A replication failure (damaged stream, refused sync, lost connection).
public struct ReplicationError: Error, CustomStringConvertible {
    /// What failed, with the offset, shard or peer involved.
    public let description: String
    /// A failure described by `d`.
    public init(_ d: String) { description = d }
}
