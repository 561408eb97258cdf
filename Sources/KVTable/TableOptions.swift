import KVBase

/// How a block's bytes are stored on disk (the block trailer's type byte).
public enum CompressionType: UInt8, Sendable, CustomStringConvertible {
    /// Stored as is.
    case none = 0
    /// LZ4 block format (liblz4), prefixed by the uncompressed length.
    case lz4 = 1

    public var description: String {
        switch self {
        case .none: return "none"
        case .lz4: return "lz4"
        }
    }
}

/// How SSTables are written and read.
///
/// A reader must be opened with the ``keyOrder`` the table was written with (it is recorded
/// in the table's properties and checked at open). The other fields only affect writing.
public struct TableOptions: Sendable {
    /// Target size of a data block before compression, in bytes. A block is cut as soon as
    /// it reaches this size, so a block holds at least one entry and may exceed it by one
    /// entry. Default 4096.
    public var blockSize: Int
    /// Number of entries between restart points (entries stored with their full key) in
    /// data blocks. Smaller speeds up seeks and costs space. Default 16.
    public var restartInterval: Int
    /// Compression of data and index blocks. A block is stored raw when compressing does
    /// not save at least 12.5%. Default ``CompressionType/lz4``.
    public var compression: CompressionType
    /// Bloom filter bits per key; 0 writes no filter. About 1% false positives at 10.
    /// Default 10.
    public var bloomBitsPerKey: Int
    /// Order of the keys. With ``KeyOrder/internalKey`` (the default) every key is an
    /// internal key and the bloom filter holds user keys.
    public var keyOrder: KeyOrder

    /// Options with the documented defaults, overridable per argument.
    public init(
        blockSize: Int = 4096,
        restartInterval: Int = 16,
        compression: CompressionType = .lz4,
        bloomBitsPerKey: Int = 10,
        keyOrder: KeyOrder = .internalKey
    ) {
        self.blockSize = blockSize
        self.restartInterval = restartInterval
        self.compression = compression
        self.bloomBitsPerKey = bloomBitsPerKey
        self.keyOrder = keyOrder
    }

    /// Largest accepted ``blockSize``: 256 MiB.
    public static let maxBlockSize = 256 << 20

    /// Checks every field.
    ///
    /// - Throws: ``KVError/invalidArgument(_:)`` naming the first field out of range:
    ///   `blockSize` must be in 1...``maxBlockSize``, `restartInterval` in 1...65536 and
    ///   `bloomBitsPerKey` in 0...64.
    public func validate() throws(KVError) {
        guard (1...Self.maxBlockSize).contains(blockSize) else {
            throw .invalidArgument("blockSize \(blockSize) is outside 1...\(Self.maxBlockSize)")
        }
        guard (1...65536).contains(restartInterval) else {
            throw .invalidArgument("restartInterval \(restartInterval) is outside 1...65536")
        }
        guard (0...64).contains(bloomBitsPerKey) else {
            throw .invalidArgument("bloomBitsPerKey \(bloomBitsPerKey) is outside 0...64")
        }
    }
}
