import KVBase

/// How a collection (hash, list, set, sorted set) is laid out in a shard's engine: one
/// metadata row under the user key and one engine record per element, in the reserved key
/// space, keyed by the collection's version.
///
/// Format version 1:
/// ```
/// metadata row   := engine key of the user key  →  meta  trailer(type, expiry)   (RowValue)
/// meta           := 0x01 version:8 BE count:8 BE [head:8 BE tail:8 BE]     (the pair: lists)
///                   [floor_len:2 BE floor ceiling_len:2 BE ceiling]   (sorted sets, optional)
/// element key    := 0xFF 0x04 escaped(user key) version:8 BE kind:1 sub
///   kind 0x00      hash field (sub = field) | set member (sub = member)
///                  | sorted-set member (sub = member)
///                  | list item (sub = (position ^ 2^63):8 BE)
///   kind 0x01      sorted-set score entry (sub = score:8 order-preserving, then member)
/// element value  := hash: the field's value | set: empty | sorted-set member: score:8 LE
///                   (IEEE 754 bits) | score entry: empty | list item: the item
/// ```
/// `count` is the number of elements (fields, items, members), so HLEN, LLEN, SCARD and ZCARD
/// read one row. A list's items sit at positions `head ..< tail`. A sorted set may carry a
/// `floor` and a `ceiling`: score-entry sub-keys with no live entry below the floor or above
/// the ceiling (ZPOPMIN and ZPOPMAX move them past what they deleted), so walks of the score
/// entries start there instead of stepping over the deleted entries of earlier pops.
///
/// Each new collection gets a version never used before for its key. Deleting or overwriting
/// the key rewrites only the metadata row (O(1)); elements of any other version are dead and
/// the compaction filter drops them (it looks the metadata up as of the oldest snapshot:
/// dead there means dead for every reader, because versions are never reused). Every change
/// of a collection rewrites its metadata row in the same engine batch as its elements, so
/// WATCH (which stamps the row's engine key) sees it, and the batch is atomic (one key, one
/// slot, one shard).
public enum CollectionLayout {
    /// The metadata format version this build writes and reads.
    public static let formatVersion: UInt8 = 1
    /// Element kind of hash fields, set and sorted-set members and list items.
    public static let memberKind: UInt8 = 0x00
    /// Element kind of sorted-set score entries.
    public static let scoreKind: UInt8 = 0x01

    /// The common prefix of every element of version `version` of `user`'s collection.
    public static func elementPrefix(_ user: [UInt8], version: UInt64) -> [UInt8] {
        var k: [UInt8] = [EngineKey.reservedByte, EngineKey.elementTag]
        k.reserveCapacity(user.count + 16)
        EngineKey.appendEscaped(user, to: &k)
        EngineKey.appendBigEndian(version, to: &k)
        return k
    }

    /// The engine key of an element: `prefix kind sub`.
    @inlinable
    public static func elementKey<S: Collection>(_ prefix: [UInt8], kind: UInt8, _ sub: S) -> [UInt8] where S.Element == UInt8 {
        var k = prefix
        k.reserveCapacity(prefix.count + 1 + sub.count)
        k.append(kind)
        k.append(contentsOf: sub)
        return k
    }

    /// The user key, version and offset of the kind byte of an element's engine key; nil
    /// when `key` is not a well-formed element key.
    public static func decodeElement(_ key: UnsafeRawBufferPointer) -> (user: [UInt8], version: UInt64, kindAt: Int)? {
        guard key.count >= 2, key[0] == EngineKey.reservedByte, key[1] == EngineKey.elementTag,
              let (user, end) = EngineKey.decodeEscaped(key, from: 2), end + 9 <= key.count
        else { return nil }
        var v: UInt64 = 0
        for i in end..<(end + 8) { v = v << 8 | UInt64(key[i]) }
        return (user, v, end + 8)
    }

    /// The sub-key bytes of a list position (order-preserving for signed positions).
    public static func positionBytes(_ position: Int64) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(8)
        EngineKey.appendBigEndian(UInt64(bitPattern: position) ^ (1 << 63), to: &out)
        return out
    }

    /// The position a list item's sub-key encodes.
    public static func position(_ sub: UnsafeRawBufferPointer) -> Int64? {
        guard sub.count == 8 else { return nil }
        var v: UInt64 = 0
        for b in sub { v = v << 8 | UInt64(b) }
        return Int64(bitPattern: v ^ (1 << 63))
    }

    /// Eight bytes whose byte order is the numeric order of `score` (-0 sorts as +0; NaN is
    /// never stored).
    public static func scoreBytes(_ score: Double) -> [UInt8] {
        let bits = (score == 0 ? 0.0 : score).bitPattern
        let ordered = bits & (1 << 63) != 0 ? ~bits : bits | (1 << 63)
        var out: [UInt8] = []
        out.reserveCapacity(8)
        EngineKey.appendBigEndian(ordered, to: &out)
        return out
    }

    /// The score whose ``scoreBytes(_:)`` start `bytes`.
    public static func score(ofOrdered bytes: UnsafeRawBufferPointer) -> Double {
        var v: UInt64 = 0
        for i in 0..<min(8, bytes.count) { v = v << 8 | UInt64(bytes[i]) }
        let bits = v & (1 << 63) != 0 ? v & ~(1 << 63) : ~v
        return Double(bitPattern: bits)
    }

    /// A sorted-set member's value: its score's IEEE bits, little-endian.
    public static func scoreValue(_ score: Double) -> [UInt8] {
        var u = score.bitPattern
        var out = [UInt8](repeating: 0, count: 8)
        for i in 0..<8 {
            out[i] = UInt8(truncatingIfNeeded: u)
            u >>= 8
        }
        return out
    }

    /// The score a sorted-set member's value holds.
    public static func score(ofValue v: UnsafeRawBufferPointer) -> Double? {
        guard v.count == 8 else { return nil }
        var u: UInt64 = 0
        for i in stride(from: 7, through: 0, by: -1) { u = u << 8 | UInt64(v[i]) }
        return Double(bitPattern: u)
    }
}

/// A collection's metadata (the payload of its metadata row; see ``CollectionLayout``).
public struct CollectionMeta: Equatable, Sendable {
    /// The collection's type (never `.string`).
    public var type: ValueType
    /// The version its elements are keyed by.
    public var version: UInt64
    /// The number of elements.
    public var count: Int64
    /// A list's first position.
    public var head: Int64
    /// A list's position after the last item.
    public var tail: Int64
    /// A sorted set's score entries: none lives below this sub-key (empty: no bound).
    public var floor: [UInt8] = []
    /// A sorted set's score entries: none lives above this sub-key (empty: no bound).
    public var ceiling: [UInt8] = []

    /// Creates the metadata of an empty collection.
    public init(type: ValueType, version: UInt64, count: Int64 = 0, head: Int64 = 0, tail: Int64 = 0) {
        self.type = type
        self.version = version
        self.count = count
        self.head = head
        self.tail = tail
    }

    /// The encoded payload.
    public var encoded: [UInt8] {
        var out: [UInt8] = [CollectionLayout.formatVersion]
        out.reserveCapacity(type == .list ? 33 : 17)
        EngineKey.appendBigEndian(version, to: &out)
        EngineKey.appendBigEndian(UInt64(bitPattern: count), to: &out)
        if type == .list {
            EngineKey.appendBigEndian(UInt64(bitPattern: head), to: &out)
            EngineKey.appendBigEndian(UInt64(bitPattern: tail), to: &out)
        }
        if type == .zset && !(floor.isEmpty && ceiling.isEmpty) {
            for b in [floor, ceiling] {
                out.append(UInt8(truncatingIfNeeded: b.count >> 8))
                out.append(UInt8(truncatingIfNeeded: b.count))
                out.append(contentsOf: b)
            }
        }
        return out
    }

    /// Decodes the payload of a row of `type` under `key`.
    public static func decode(_ payload: [UInt8], type: ValueType, key: [UInt8]) throws(KVError) -> CollectionMeta {
        let want = type == .list ? 33 : 17
        guard type != .string, payload.count == want || (type == .zset && payload.count >= want + 4) else {
            throw .corruption(file: "", offset: 0, reason: "metadata of \(type.name) key \(printable(key)) has \(payload.count) bytes, expected \(want)")
        }
        guard payload[0] == CollectionLayout.formatVersion else {
            throw .unsupportedFormat(file: "metadata of key \(printable(key))", version: UInt32(payload[0]))
        }
        func word(_ at: Int) -> UInt64 {
            var v: UInt64 = 0
            for i in at..<(at + 8) { v = v << 8 | UInt64(payload[i]) }
            return v
        }
        var m = CollectionMeta(type: type, version: word(1), count: Int64(bitPattern: word(9)))
        if type == .list {
            m.head = Int64(bitPattern: word(17))
            m.tail = Int64(bitPattern: word(25))
        }
        if payload.count > want {
            var o = want
            var parts: [[UInt8]] = []
            for _ in 0..<2 {
                guard o + 2 <= payload.count else { break }
                let n = Int(payload[o]) << 8 | Int(payload[o + 1])
                guard o + 2 + n <= payload.count else { break }
                parts.append(Array(payload[(o + 2)..<(o + 2 + n)]))
                o += 2 + n
            }
            guard parts.count == 2, o == payload.count else {
                throw .corruption(file: "", offset: 0, reason: "metadata of zset key \(printable(key)) has a damaged floor/ceiling")
            }
            m.floor = parts[0]
            m.ceiling = parts[1]
        }
        return m
    }
}
