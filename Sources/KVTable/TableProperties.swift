import KVBase

// Properties block (block format, bytewise keys, restart interval 1, stored raw),
// referenced from the metaindex as "properties". Each entry is name -> value:
//
//   "shale.bloom.bits.per.key"      varint64   bits per key of the filter (0 = no filter)
//   "shale.compressed.data.blocks"  varint64   data blocks stored LZ4-compressed
//   "shale.compression"             varint64   configured compression (0 none, 1 lz4)
//   "shale.data.blocks"             varint64   number of data blocks
//   "shale.entries"                 varint64   number of entries            (required)
//   "shale.format.version"          varint64   table format version (1)     (required)
//   "shale.key.largest"             bytes      last key of the table (empty if no entries)
//   "shale.key.order"               varint64   0 bytewise, 1 internal key   (required)
//   "shale.key.smallest"            bytes      first key of the table (empty if no entries)
//   "shale.raw.key.size"            varint64   sum of key lengths
//   "shale.raw.value.size"          varint64   sum of value lengths
//
// Readers ignore names they do not know, so later versions may add entries.

/// What a table holds, recorded in its properties block.
public struct TableProperties: Sendable, Equatable {
    /// Number of entries.
    public var entries: UInt64 = 0
    /// Number of data blocks.
    public var dataBlocks: UInt64 = 0
    /// Number of data blocks stored LZ4-compressed (the others were stored raw).
    public var compressedDataBlocks: UInt64 = 0
    /// Size of the table file in bytes.
    public var fileSize: UInt64 = 0
    /// First key (empty for an empty table).
    public var smallestKey: [UInt8] = []
    /// Last key (empty for an empty table).
    public var largestKey: [UInt8] = []
    /// Sum of the key lengths.
    public var rawKeyBytes: UInt64 = 0
    /// Sum of the value lengths.
    public var rawValueBytes: UInt64 = 0
    /// Table format version.
    public var formatVersion: UInt32 = TableFormat.version
    /// Compression the table was written with.
    public var compression: CompressionType = .none
    /// Order of the table's keys.
    public var keyOrder: KeyOrder = .internalKey
    /// Bloom filter bits per key (0 when the table has no filter).
    public var bloomBitsPerKey: Int = 0

    /// Properties of an empty table.
    public init() {}

    enum Name {
        static let bloomBitsPerKey = "shale.bloom.bits.per.key"
        static let compressedDataBlocks = "shale.compressed.data.blocks"
        static let compression = "shale.compression"
        static let dataBlocks = "shale.data.blocks"
        static let entries = "shale.entries"
        static let formatVersion = "shale.format.version"
        static let largestKey = "shale.key.largest"
        static let keyOrder = "shale.key.order"
        static let smallestKey = "shale.key.smallest"
        static let rawKeySize = "shale.raw.key.size"
        static let rawValueSize = "shale.raw.value.size"
    }

    private static func varint(_ v: UInt64) -> [UInt8] {
        var out: [UInt8] = []
        out.appendVarint(v)
        return out
    }

    /// The finished properties block.
    func encodeBlock() -> [UInt8] {
        var items: [([UInt8], [UInt8])] = [
            (Name.bloomBitsPerKey, Self.varint(UInt64(bloomBitsPerKey))),
            (Name.compressedDataBlocks, Self.varint(compressedDataBlocks)),
            (Name.compression, Self.varint(UInt64(compression.rawValue))),
            (Name.dataBlocks, Self.varint(dataBlocks)),
            (Name.entries, Self.varint(entries)),
            (Name.formatVersion, Self.varint(UInt64(formatVersion))),
            (Name.largestKey, largestKey),
            (Name.keyOrder, Self.varint(keyOrder == .bytewise ? 0 : 1)),
            (Name.smallestKey, smallestKey),
            (Name.rawKeySize, Self.varint(rawKeyBytes)),
            (Name.rawValueSize, Self.varint(rawValueBytes)),
        ].map { (Array($0.0.utf8), $0.1) }
        items.sort { compareBytes($0.0, $1.0) < 0 }
        var builder = BlockBuilder(restartInterval: 1)
        for (name, value) in items { builder.add(name, value) }
        builder.finish()
        return builder.buffer
    }

    /// Parses a properties block.
    static func decode(_ block: Block, fileSize: UInt64) throws(KVError) -> TableProperties {
        var p = TableProperties()
        p.fileSize = fileSize
        var seen = Set<String>()
        var cursor = BlockCursor(block: block, order: .bytewise)
        try cursor.seekToFirst()
        while cursor.isValid {
            let name = String(decoding: cursor.key, as: UTF8.self)
            let value = cursor.value
            let bad = KVError.corruption(file: block.file, offset: block.offset, reason: "bad table property \(name)")
            var number: UInt64 = 0
            if name != Name.largestKey && name != Name.smallestKey {
                var q = 0
                if let v = value.varint(at: &q), q == value.count {
                    number = v
                } else if name.hasPrefix("shale.") {
                    throw bad
                }
            }
            seen.insert(name)
            switch name {
            case Name.bloomBitsPerKey:
                guard number <= 64 else { throw bad }
                p.bloomBitsPerKey = Int(number)
            case Name.compressedDataBlocks: p.compressedDataBlocks = number
            case Name.compression:
                guard number <= 255, let c = CompressionType(rawValue: UInt8(number)) else { throw bad }
                p.compression = c
            case Name.dataBlocks: p.dataBlocks = number
            case Name.entries: p.entries = number
            case Name.formatVersion:
                guard number <= UInt64(UInt32.max) else { throw bad }
                p.formatVersion = UInt32(number)
            case Name.largestKey: p.largestKey = Array(value)
            case Name.keyOrder:
                guard number <= 1 else { throw bad }
                p.keyOrder = number == 0 ? .bytewise : .internalKey
            case Name.smallestKey: p.smallestKey = Array(value)
            case Name.rawKeySize: p.rawKeyBytes = number
            case Name.rawValueSize: p.rawValueBytes = number
            default: break
            }
            try cursor.next()
        }
        for required in [Name.entries, Name.formatVersion, Name.keyOrder] where !seen.contains(required) {
            throw KVError.corruption(file: block.file, offset: block.offset, reason: "missing table property \(required)")
        }
        return p
    }
}
