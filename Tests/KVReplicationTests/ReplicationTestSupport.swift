import KVEngine
import KVFileSystem

/// Engine options for stores on the in-memory file system: small memtables so that flushes
/// (and with them tables and compactions) happen during the tests.
func storeOptions(_ fs: MemoryFileSystem, writeBufferSize: Int = 16 << 10) -> Options {
    var o = Options()
    o.fileSystem = fs
    o.durability = .everysec
    o.writeBufferSize = writeBufferSize
    o.blockCacheCapacity = 256 << 10
    return o
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
