import KVBase
import KVCache
import KVFileSystem
import KVTable
import Synchronization

/// Open table readers by file number, bounded by `maxOpenFiles` (LRU), sharing one block
/// cache. Thread-safe.
final class TableCache: Sendable {
    let directory: String
    let fs: any FileSystem
    let tableOptions: TableOptions
    let blockCache: ShardedLRUCache<BlockCacheKey, Block>?
    private let readers: ShardedLRUCache<UInt64, TableReader>
    /// Point lookups that consulted a table's bloom filter, and those it answered "absent".
    let bloomChecked = StripedCounter()
    let bloomUseful = StripedCounter()

    func bloomStatistics() -> (checked: Int, useful: Int) {
        (bloomChecked.value, bloomUseful.value)
    }

    init(directory: String, fs: any FileSystem, tableOptions: TableOptions, blockCacheBytes: Int, maxOpenFiles: Int) {
        self.directory = directory
        self.fs = fs
        self.tableOptions = tableOptions
        self.blockCache = blockCacheBytes > 0 ? ShardedLRUCache(capacity: blockCacheBytes) : nil
        self.readers = ShardedLRUCache(capacity: max(maxOpenFiles, 16))
    }

    /// The reader of table `number`, opening it when not cached.
    func reader(_ number: UInt64) throws(KVError) -> TableReader {
        if let r = readers.get(number) { return r }
        let file = try fs.openReadable(FileNames.table(directory, number))
        let r = try TableReader.open(file: file, fileNumber: number, options: tableOptions, blockCache: blockCache)
        readers.insert(number, r, charge: 1)
        return r
    }

    /// Forgets a deleted table.
    func evict(_ number: UInt64) {
        _ = readers.remove(number)
    }
}
