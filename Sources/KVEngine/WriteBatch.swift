import KVBase

// Write batch encoding, the payload of every WAL record (versioned by the WAL file header):
//
//   batch  := sequence fixed64 | count fixed32 | record*count
//   record := 0x01 (value)    | key_len varint32 | key | value_len varint32 | value
//           | 0x00 (deletion) | key_len varint32 | key
//
// `sequence` is the sequence number of the first record; record i gets sequence + i.

/// An ordered group of puts and deletes applied atomically by ``Database/write(_:durability:)``.
///
/// Either every operation of a batch becomes visible (and survives a crash) or none does.
/// Later operations on the same key in one batch win. Cheap to build: operations are
/// appended to one growing byte buffer.
public struct WriteBatch: Sendable {
    package static let headerSize = 12

    /// The encoded batch (header + records).
    package private(set) var rep: [UInt8]

    /// An empty batch.
    public init() {
        rep = [UInt8](repeating: 0, count: Self.headerSize)
    }

    package init(encoded: [UInt8]) {
        rep = encoded
    }

    /// Number of operations in the batch.
    public var count: Int {
        rep.withUnsafeBytes { Int($0.fixed32(at: 8)) }
    }

    /// Whether the batch has no operations.
    public var isEmpty: Bool { count == 0 }

    /// Size in bytes of the encoded batch.
    public var approximateSize: Int { rep.count }

    private mutating func setCount(_ n: Int) {
        let v = UInt32(n)
        rep[8] = UInt8(truncatingIfNeeded: v)
        rep[9] = UInt8(truncatingIfNeeded: v >> 8)
        rep[10] = UInt8(truncatingIfNeeded: v >> 16)
        rep[11] = UInt8(truncatingIfNeeded: v >> 24)
    }

    /// The sequence number of the first record (set when the batch is committed).
    package var sequence: SequenceNumber {
        get { rep.withUnsafeBytes { $0.fixed64(at: 0) } }
        set {
            for i in 0..<8 { rep[i] = UInt8(truncatingIfNeeded: newValue >> (8 * UInt64(i))) }
        }
    }

    /// Adds a put of `value` under `key`.
    public mutating func put(_ key: [UInt8], _ value: [UInt8]) {
        setCount(count + 1)
        rep.append(ValueKind.value.rawValue)
        rep.appendLengthPrefixed(key)
        rep.appendLengthPrefixed(value)
    }

    /// Adds a put whose value is `value` followed by `suffix`, without joining them first.
    public mutating func put<S: Collection>(_ key: [UInt8], _ value: [UInt8], suffix: S) where S.Element == UInt8 {
        setCount(count + 1)
        rep.append(ValueKind.value.rawValue)
        rep.appendLengthPrefixed(key)
        rep.appendVarint(UInt64(value.count + suffix.count))
        rep.append(contentsOf: value)
        rep.append(contentsOf: suffix)
    }

    /// Adds a put; the key and value are taken as UTF-8 bytes.
    public mutating func put(_ key: String, _ value: String) {
        put(Array(key.utf8), Array(value.utf8))
    }

    /// Adds a put from raw buffers.
    public mutating func put(_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) {
        setCount(count + 1)
        rep.append(ValueKind.value.rawValue)
        rep.appendLengthPrefixed(key)
        rep.appendLengthPrefixed(value)
    }

    /// Adds a delete of `key` (not an error if the key does not exist).
    public mutating func delete(_ key: [UInt8]) {
        setCount(count + 1)
        rep.append(ValueKind.deletion.rawValue)
        rep.appendLengthPrefixed(key)
    }

    /// Adds a delete; the key is taken as UTF-8 bytes.
    public mutating func delete(_ key: String) {
        delete(Array(key.utf8))
    }

    /// Appends every operation of `other` after this batch's.
    public mutating func append(_ other: WriteBatch) {
        setCount(count + other.count)
        rep.append(contentsOf: other.rep[Self.headerSize...])
    }

    /// Removes every operation.
    public mutating func removeAll() {
        rep.removeAll(keepingCapacity: true)
        rep.append(contentsOf: repeatElement(0, count: Self.headerSize))
    }

    /// Checks the documented size limits.
    func validateLimits() throws(KVError) {
        if rep.count > KVLimits.maxBatchSize {
            throw .invalidArgument("write batch of \(rep.count) bytes exceeds the \(KVLimits.maxBatchSize)-byte limit")
        }
        try forEach { (_, key, value) throws(KVError) in
            if key.count > KVLimits.maxKeySize {
                throw .invalidArgument("key of \(key.count) bytes exceeds the \(KVLimits.maxKeySize)-byte limit")
            }
            if value.count > KVLimits.maxValueSize {
                throw .invalidArgument("value of \(value.count) bytes exceeds the \(KVLimits.maxValueSize)-byte limit")
            }
        }
    }

    /// Calls `body` for each record in order with its kind, key and value (empty for deletes).
    /// Throws corruption (attributed to `file` at `offset`) if the encoding is malformed.
    package func forEach(
        file: String = "write batch", offset: UInt64 = 0,
        _ body: (ValueKind, UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws(KVError) -> Void
    ) throws(KVError) {
        try rep.withUnsafeBytes { p in
            Result { () throws(KVError) in try Self.decode(p, file: file, offset: offset, body) }
        }.get()
    }

    /// Decodes an encoded batch in place.
    package static func decode(
        _ p: UnsafeRawBufferPointer, file: String, offset: UInt64,
        _ body: (ValueKind, UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws(KVError) -> Void
    ) throws(KVError) {
        func bad(_ why: String) -> KVError { .corruption(file: file, offset: offset, reason: "write batch: " + why) }
        guard p.count >= headerSize else { throw bad("too small (\(p.count) bytes)") }
        let expected = Int(p.fixed32(at: 8))
        var pos = headerSize
        var found = 0
        while pos < p.count {
            guard let kind = ValueKind(rawValue: p[pos]) else { throw bad("unknown record tag \(p[pos])") }
            pos += 1
            guard let klen = p.varint32(at: &pos), Int(klen) <= p.count - pos else { throw bad("bad key length") }
            let key = UnsafeRawBufferPointer(rebasing: p[pos..<(pos + Int(klen))])
            pos += Int(klen)
            var value = UnsafeRawBufferPointer(start: nil, count: 0)
            if kind == .value {
                guard let vlen = p.varint32(at: &pos), Int(vlen) <= p.count - pos else { throw bad("bad value length") }
                value = UnsafeRawBufferPointer(rebasing: p[pos..<(pos + Int(vlen))])
                pos += Int(vlen)
            }
            found += 1
            try body(kind, key, value)
        }
        if found != expected { throw bad("header says \(expected) records, found \(found)") }
    }
}
