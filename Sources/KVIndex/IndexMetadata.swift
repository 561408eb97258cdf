import KVBase
import KVLayout

/// The shard-local metadata records of secondary indexes (engine keys `0xFF 0x01 "idx." …`,
/// see ``EngineKey``). They never move between shards; a reshard copies them to new shards.
///
/// ```
/// key                                  value (format version 1)
/// 0xFF 0x01 "idx.next"                 0x01 | next_id fixed32 | crc fixed32
/// 0xFF 0x01 "idx.def"   id:4 BE        definition
/// 0xFF 0x01 "idx.fill"  id:4 BE        0x01 | cursor (varint32 length + bytes)
///                                      | rows_done fixed64 | crc fixed32
/// 0xFF 0x01 "idx.stats" id:4 BE        0x01 | entries fixed64 | queries fixed64
///                                      | results fixed64 | crc fixed32       (shard 0 only)
///
/// definition := 0x01 | id fixed32 | state u8 | type u8
///             | name (varint32 length + UTF-8) | field (varint32 length + UTF-8)
///             | has_prefix u8 (0 | 1) | [key_prefix (varint32 length + bytes)]
///             | [source u8 (1: hash)]                  (absent: JSON)
///             | crc fixed32
/// state      := 0 building | 1 ready | 2 dropping
/// type       := 1 number | 2 string            (the value tags of IndexKeys)
/// crc        := masked CRC32C of every byte before it
/// ```
/// Fixed-width integers are little-endian. `next_id` is one more than the largest index id
/// ever allocated in the store; ids are never reused. `idx.def` records of one index hold the
/// same definition in every shard; `state` is per shard (building until that shard's back-fill
/// is done). `idx.fill` is the back-fill cursor of a shard: the engine key of the last row
/// processed (its entries are in the same batch). Unknown `idx.` records fail the open.
package enum IndexMetadata {
    package static let version: UInt8 = 1
    package static let namespace: [UInt8] = [EngineKey.reservedByte, EngineKey.metaTag] + Array("idx.".utf8)
    package static let nextKey: [UInt8] = namespace + Array("next".utf8)
    package static let definitionTag: [UInt8] = namespace + Array("def".utf8)
    package static let fillTag: [UInt8] = namespace + Array("fill".utf8)
    package static let statsTag: [UInt8] = namespace + Array("stats".utf8)

    /// A definition's state in one shard.
    package enum State: UInt8, Sendable {
        case building = 0
        case ready = 1
        case dropping = 2
    }

    /// A decoded definition record.
    package struct Definition: Equatable, Sendable {
        package var id: UInt32
        package var state: State
        package var definition: IndexDefinition

        package init(id: UInt32, state: State, definition: IndexDefinition) {
            self.id = id
            self.state = state
            self.definition = definition
        }
    }

    /// A decoded back-fill cursor.
    package struct Fill: Equatable, Sendable {
        package var cursor: [UInt8]
        package var rowsDone: Int

        package init(cursor: [UInt8], rowsDone: Int) {
            self.cursor = cursor
            self.rowsDone = rowsDone
        }
    }

    /// Decoded statistics.
    package struct Stats: Equatable, Sendable {
        package var entries: Int
        package var queries: Int
        package var results: Int

        package init(entries: Int, queries: Int, results: Int) {
            self.entries = entries
            self.queries = queries
            self.results = results
        }
    }

    package static func definitionKey(_ id: UInt32) -> [UInt8] { tagged(definitionTag, id) }
    package static func fillKey(_ id: UInt32) -> [UInt8] { tagged(fillTag, id) }
    package static func statsKey(_ id: UInt32) -> [UInt8] { tagged(statsTag, id) }

    package static func tagged(_ tag: [UInt8], _ id: UInt32) -> [UInt8] {
        var k = tag
        IndexKeys.appendID(id, to: &k)
        return k
    }

    // MARK: encoding

    package static func encodeNext(_ next: UInt32) -> [UInt8] {
        var v: [UInt8] = [version]
        v.appendFixed32(next)
        return sealed(v)
    }

    package static func encode(_ d: Definition) -> [UInt8] {
        var v: [UInt8] = [version]
        v.appendFixed32(d.id)
        v.append(d.state.rawValue)
        v.append(d.definition.type == .number ? IndexKeys.numberType : IndexKeys.stringType)
        v.appendLengthPrefixed(Array(d.definition.name.utf8))
        v.appendLengthPrefixed(Array(d.definition.field.utf8))
        if let p = d.definition.keyPrefix {
            v.append(1)
            v.appendLengthPrefixed(p)
        } else {
            v.append(0)
        }
        // JSON definitions keep the original layout; a hash index adds its source.
        if d.definition.source == .hash { v.append(1) }
        return sealed(v)
    }

    package static func encode(_ f: Fill) -> [UInt8] {
        var v: [UInt8] = [version]
        v.appendLengthPrefixed(f.cursor)
        v.appendFixed64(UInt64(f.rowsDone))
        return sealed(v)
    }

    package static func encode(_ s: Stats) -> [UInt8] {
        var v: [UInt8] = [version]
        v.appendFixed64(UInt64(bitPattern: Int64(s.entries)))
        v.appendFixed64(UInt64(s.queries))
        v.appendFixed64(UInt64(s.results))
        return sealed(v)
    }

    package static func sealed(_ body: [UInt8]) -> [UInt8] {
        var v = body
        v.appendFixed32(CRC32C.mask(CRC32C.checksum(body)))
        return v
    }

    // MARK: decoding

    /// What a metadata record is.
    package enum Record: Sendable {
        case next(UInt32)
        case definition(Definition)
        case fill(id: UInt32, Fill)
        case stats(id: UInt32, Stats)
    }

    /// Decodes an `idx.` record; the failure reason when it is damaged or unknown.
    package static func decode(key: [UInt8], value: [UInt8]) -> Result<Record, RecordError> {
        guard let body = unsealed(value) else { return .failure(RecordError("checksum mismatch or truncated value")) }
        if key == nextKey {
            guard body.count == 5 else { return .failure(RecordError("bad length \(body.count)")) }
            return .success(.next(body.withUnsafeBytes { $0.fixed32(at: 1) }))
        }
        for (tag, kind) in [(definitionTag, 0), (fillTag, 1), (statsTag, 2)] where key.count == tag.count + 4 && key.starts(with: tag) {
            let id = key[tag.count...].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            return body.withUnsafeBytes { b -> Result<Record, RecordError> in
                switch kind {
                case 0: return decodeDefinition(b, id: id).map { .definition($0) }
                case 1: return decodeFill(b).map { .fill(id: id, $0) }
                default:
                    guard b.count == 25 else { return .failure(RecordError("bad length \(b.count)")) }
                    return .success(.stats(id: id, Stats(
                        entries: Int(Int64(bitPattern: b.fixed64(at: 1))), queries: Int(b.fixed64(at: 9)), results: Int(b.fixed64(at: 17)))))
                }
            }
        }
        return .failure(RecordError("unknown index metadata record"))
    }

    package struct RecordError: Error {
        package let reason: String
        package init(_ reason: String) { self.reason = reason }
    }

    /// The body of a sealed value (version byte included) when its checksum and version match.
    package static func unsealed(_ value: [UInt8]) -> [UInt8]? {
        guard value.count >= 5, value[0] == version else { return nil }
        let body = Array(value[..<(value.count - 4)])
        let stored = value.withUnsafeBytes { $0.fixed32(at: value.count - 4) }
        guard CRC32C.mask(CRC32C.checksum(body)) == stored else { return nil }
        return body
    }

    package static func decodeDefinition(_ b: UnsafeRawBufferPointer, id keyID: UInt32) -> Result<Definition, RecordError> {
        guard b.count >= 7 else { return .failure(RecordError("truncated definition")) }
        let id = b.fixed32(at: 1)
        guard id == keyID else { return .failure(RecordError("definition of id \(id) stored under id \(keyID)")) }
        guard let state = State(rawValue: b[5]) else { return .failure(RecordError("unknown state \(b[5])")) }
        let type: IndexType
        switch b[6] {
        case IndexKeys.numberType: type = .number
        case IndexKeys.stringType: type = .string
        default: return .failure(RecordError("unknown type \(b[6])"))
        }
        var o = 7
        guard let name = lengthPrefixed(b, &o), let field = lengthPrefixed(b, &o), o < b.count else {
            return .failure(RecordError("truncated definition"))
        }
        let hasPrefix = b[o]
        o += 1
        var prefix: [UInt8]?
        if hasPrefix == 1 {
            guard let p = lengthPrefixed(b, &o) else { return .failure(RecordError("truncated key prefix")) }
            prefix = p
        } else if hasPrefix != 0 {
            return .failure(RecordError("bad prefix flag \(hasPrefix)"))
        }
        var source = IndexSource.json
        if o < b.count {
            guard b[o] == 1 else { return .failure(RecordError("unknown source \(b[o])")) }
            source = .hash
            o += 1
        }
        guard o == b.count else { return .failure(RecordError("trailing bytes")) }
        let def = IndexDefinition(
            name: String(decoding: name, as: UTF8.self), field: String(decoding: field, as: UTF8.self), type: type, keyPrefix: prefix,
            source: source)
        return .success(Definition(id: id, state: state, definition: def))
    }

    package static func decodeFill(_ b: UnsafeRawBufferPointer) -> Result<Fill, RecordError> {
        var o = 1
        guard let cursor = lengthPrefixed(b, &o), o + 8 == b.count else { return .failure(RecordError("bad back-fill cursor")) }
        return .success(Fill(cursor: cursor, rowsDone: Int(b.fixed64(at: o))))
    }

    package static func lengthPrefixed(_ b: UnsafeRawBufferPointer, _ o: inout Int) -> [UInt8]? {
        guard let n = b.varint32(at: &o), o + Int(n) <= b.count else { return nil }
        defer { o += Int(n) }
        return Array(b[o..<(o + Int(n))])
    }
}
