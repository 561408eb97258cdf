import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KVEngine
import KVFileSystem
import KVStore
import KVTestSupport

/// Engine options for stores on the in-memory file system: small memtables so that flushes
/// (and with them tables and compactions) happen during the tests.
func storeOptions(_ fs: MemoryFileSystem, durability: Durability = .everysec, writeBufferSize: Int = 16 << 10) -> Options {
    var o = Options()
    o.fileSystem = fs
    o.durability = durability
    o.writeBufferSize = writeBufferSize
    o.blockCacheCapacity = 256 << 10
    return o
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

func pause(milliseconds: Int) {
    usleep(UInt32(milliseconds * 1000))
}

/// Every entry of a store, through its merged scan.
func contents(_ store: ShardedStore, snapshot: StoreSnapshot? = nil) throws -> ModelStore {
    var m = ModelStore()
    let scan = try store.scan(snapshot: snapshot)
    while let (k, v) = try scan.nextEntry() { m.put(k, v) }
    return m
}

/// Runs `body` on a Dispatch worker thread (not the Swift concurrency pool, which blocking
/// engine calls must not occupy); ``join()`` waits for it to end.
final class BackgroundTask: Sendable {
    private let done = DispatchSemaphore(value: 0)

    init(_ body: @escaping @Sendable () -> Void) {
        let done = self.done
        DispatchQueue.global().async {
            body()
            done.signal()
        }
    }

    func join() { done.wait() }
}
