import KVBase

/// The records that make a transaction spanning several shards atomic under a crash (see
/// `ShardedStore.transaction` and DESIGN.md, "Transactions"): the *intent*, written in the
/// same engine batch as the coordinator shard's part, holds the other participants' parts;
/// each other participant's part carries a *part marker*. At open, an intent whose
/// participant lacks its marker gets that part applied again from the intent, so a
/// transaction is there whole or not at all. Replication reads the same records to apply a
/// transaction on a follower as one unit.
///
/// Record grammar (integers little-endian unless noted):
///
/// ```
/// key     := 0xFF (EngineKey.reservedByte) | 0x01 (EngineKey.metaTag) | "txn." | id u64 big-endian
/// value   := version u8 (= 1) | role u8 (1 intent, 2 part marker) | coordinator u16
///          | n u16 | participant u16 × n            (shard ids, ascending, coordinator included)
///          | (role 1 only) count u32 | record × count (the parts of every participant but the
///                                                      coordinator, in commit order)
///          | crc fixed32                            (masked CRC32C of every value byte before it)
/// record  := shard u16 | slot u16 | kind u8 (1 put, 0 delete) | varint klen | key
///          | varint vlen | value
/// ```
public struct TransactionRecord: Sendable, Equatable {
    /// One record of a participant's part.
    public struct Record: Sendable, Equatable {
        /// The participant shard it was committed to.
        public var shard: Int
        /// Its hash slot (the slot the record was routed by).
        public var slot: Int
        /// A put (else a deletion).
        public var isPut: Bool
        /// The engine key.
        public var key: [UInt8]
        /// The engine value (empty for a deletion).
        public var value: [UInt8]

        /// A record.
        public init(shard: Int, slot: Int, isPut: Bool, key: [UInt8], value: [UInt8]) {
            self.shard = shard
            self.slot = slot
            self.isPut = isPut
            self.key = key
            self.value = value
        }
    }

    /// The transaction's id (unique in the store's life).
    public var id: UInt64
    /// The shard holding the intent: the lowest participant.
    public var coordinator: Int
    /// Every shard the transaction wrote, ascending.
    public var participants: [Int]
    /// The intent (else a part marker).
    public var isIntent: Bool
    /// The intent's copy of the other participants' parts (empty for a marker).
    public var records: [Record]

    /// A record.
    public init(id: UInt64, coordinator: Int, participants: [Int], isIntent: Bool, records: [Record] = []) {
        self.id = id
        self.coordinator = coordinator
        self.participants = participants
        self.isIntent = isIntent
        self.records = records
    }

    /// The format version written.
    public static let version: UInt8 = 1
    /// The prefix of every transaction record's key.
    public static let keyPrefix: [UInt8] = [EngineKey.reservedByte, EngineKey.metaTag] + Array("txn.".utf8)

    /// The key of transaction `id`'s records.
    public static func key(id: UInt64) -> [UInt8] {
        var k = keyPrefix
        for i in (0..<8).reversed() { k.append(UInt8(truncatingIfNeeded: id >> (8 * UInt64(i)))) }
        return k
    }

    /// Whether `key` is a transaction record's key.
    public static func isKey(_ key: UnsafeRawBufferPointer) -> Bool {
        key.count == keyPrefix.count + 8 && key.starts(with: keyPrefix)
    }

    /// The record value.
    public func encoded() -> [UInt8] {
        var v: [UInt8] = [Self.version, isIntent ? 1 : 2]
        v.appendU16(coordinator)
        v.appendU16(participants.count)
        for p in participants { v.appendU16(p) }
        if isIntent {
            v.appendFixed32(UInt32(truncatingIfNeeded: records.count))
            for r in records {
                v.appendU16(r.shard)
                v.appendU16(r.slot)
                v.append(r.isPut ? 1 : 0)
                v.appendLengthPrefixed(r.key)
                v.appendLengthPrefixed(r.value)
            }
        }
        v.appendFixed32(CRC32C.mask(CRC32C.checksum(v)))
        return v
    }

    /// Decodes a record value read from `file` (named in errors).
    public static func decode(_ v: UnsafeRawBufferPointer, file: String) throws(KVError) -> TransactionRecord {
        func damaged(_ why: String, _ at: Int) -> KVError {
            .corruption(file: file, offset: UInt64(at), reason: "transaction record: \(why)")
        }
        guard v.count >= 10 else { throw damaged("truncated", 0) }
        guard v[0] == version else { throw damaged("unknown format version \(v[0])", 0) }
        let crc = v.fixed32(at: v.count - 4)
        guard crc == CRC32C.mask(CRC32C.checksum(UnsafeRawBufferPointer(rebasing: v[0..<(v.count - 4)]))) else {
            throw damaged("checksum mismatch", v.count - 4)
        }
        let end = v.count - 4
        guard v[1] == 1 || v[1] == 2 else { throw damaged("unknown role \(v[1])", 1) }
        var at = 2
        func u16() throws(KVError) -> Int {
            guard at + 2 <= end else { throw damaged("truncated", at) }
            defer { at += 2 }
            return Int(v[at]) | Int(v[at + 1]) << 8
        }
        func bytes() throws(KVError) -> [UInt8] {
            guard let n = v.varint(at: &at), n <= UInt64(end - at) else { throw damaged("bad length", at) }
            defer { at += Int(n) }
            return Array(UnsafeRawBufferPointer(rebasing: v[at..<(at + Int(n))]))
        }
        let coordinator = try u16()
        let n = try u16()
        var participants: [Int] = []
        for _ in 0..<n { participants.append(try u16()) }
        var records: [Record] = []
        if v[1] == 1 {
            guard at + 4 <= end else { throw damaged("truncated", at) }
            let count = Int(v.fixed32(at: at))
            at += 4
            for _ in 0..<count {
                let shard = try u16()
                let slot = try u16()
                guard at < end else { throw damaged("truncated", at) }
                let isPut = v[at] == 1
                at += 1
                let key = try bytes()
                let value = try bytes()
                records.append(Record(shard: shard, slot: slot, isPut: isPut, key: key, value: value))
            }
        }
        guard at == end else { throw damaged("trailing bytes", at) }
        return TransactionRecord(id: 0, coordinator: coordinator, participants: participants, isIntent: v[1] == 1, records: records)
    }

    /// Decodes the record stored under `key` (its id comes from the key).
    public static func decode(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, file: String) throws(KVError) -> TransactionRecord {
        guard isKey(key) else { throw .corruption(file: file, offset: 0, reason: "transaction record: bad key") }
        var r = try decode(value, file: file)
        var id: UInt64 = 0
        for b in key[keyPrefix.count...] { id = id << 8 | UInt64(b) }
        r.id = id
        return r
    }
}

extension [UInt8] {
    fileprivate mutating func appendU16(_ v: Int) {
        append(UInt8(truncatingIfNeeded: v))
        append(UInt8(truncatingIfNeeded: v >> 8))
    }
}
