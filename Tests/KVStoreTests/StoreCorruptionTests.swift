import KVBase
import KVEngine
import KVFileSystem
import KVStore
import KVTestSupport
import Testing

/// Damage to the files of a sharded store seen through the store: the descriptor cut short, a
/// shard's CURRENT or WAL deleted, a shard's table flipped, a half-written descriptor left
/// behind. The store refuses to open with an error naming the damaged file, or serves exactly
/// the stored data; it never returns a wrong value. (Flipped descriptor bytes and a missing
/// descriptor or shard directory are covered by the descriptor tests.)
@Suite("Store corruption")
struct StoreCorruptionTests {
    /// A closed 3-shard store with tables and WAL contents in every shard, and what it holds.
    static func makeStore() throws -> (MemoryFileSystem, ModelStore) {
        let fs = MemoryFileSystem()
        let store = try ShardedStore.open(at: "/s", shards: 3, options: storeOptions(fs, writeBufferSize: 4 << 10))
        var model = ModelStore()
        for i in 0..<600 {
            let k = bytes("key\(i % 250)")
            let v = bytes("value-\(i)-") + Array(repeating: UInt8(i & 0xFF), count: i % 40)
            try store.put(k, v)
            model.put(k, v)
        }
        try store.close()
        return (fs, model)
    }

    static func expectRefused(_ fs: MemoryFileSystem, naming path: String, _ context: String) {
        do {
            let store = try ShardedStore.open(at: "/s", options: storeOptions(fs))
            try? store.close()
            Issue.record("\(context): the store opened")
        } catch {
            #expect("\(error)".contains(path), "\(context): the error does not name \(path): \(error)")
        }
    }

    @Test func truncatedDescriptorIsRefused() throws {
        let (fs, _) = try Self.makeStore()
        let size = Int(try fs.fileSize("/s/STORE"))
        let original = try fs.readFile("/s/STORE")
        for cut in stride(from: 0, to: size, by: max(1, size / 97)) {
            fs.truncate("/s/STORE", to: cut)
            Self.expectRefused(fs, naming: "/s/STORE", "STORE cut to \(cut) of \(size)")
            try fs.writeFileAtomically("/s/STORE", original)
        }
        // Restored, it opens.
        try ShardedStore.open(at: "/s", options: storeOptions(fs)).close()
    }

    @Test func leftoverHalfWrittenDescriptorIsIgnored() throws {
        let (fs, model) = try Self.makeStore()
        let f = try fs.createWritable("/s/STORE.tmp")
        try f.append(Array("SHSD garbage of a descriptor write cut short".utf8))
        try f.close()
        let store = try ShardedStore.open(at: "/s", options: storeOptions(fs))
        #expect(try contents(store) == model)
        try store.close()
    }

    @Test(arguments: ["CURRENT", ".log"])
    func missingShardFileIsRefused(suffix: String) throws {
        let (fs, _) = try Self.makeStore()
        let shard = "/s/" + StoreDescriptor.directoryName(1)
        let name = try #require(try fs.listDirectory(shard).first { $0.hasSuffix(suffix) })
        let tables = try fs.listDirectory(shard).filter { $0.hasSuffix(".sst") }
        #expect(!tables.isEmpty)
        try fs.removeFile(shard + "/" + name)
        Self.expectRefused(fs, naming: shard + "/" + name, "deleted \(name) of shard 1")
        // Refusing kept the shard's tables (a new empty database would have deleted them).
        #expect(try fs.listDirectory(shard).filter { $0.hasSuffix(".sst") } == tables)
    }

    @Test func damagedShardTableFailsReadsNamingIt() throws {
        let (pristine, model) = try Self.makeStore()
        let shard = "/s/" + StoreDescriptor.directoryName(2)
        let table = shard + "/" + (try #require(try pristine.listDirectory(shard).first { $0.hasSuffix(".sst") }))
        let size = Int(try pristine.fileSize(table))
        var failures = 0
        for offset in stride(from: 0, to: size, by: max(1, size / 40)) {
            let (fs, _) = try Self.makeStore()
            fs.flipBytes(table, at: offset, mask: 0x40)
            let store: ShardedStore
            do {
                store = try ShardedStore.open(at: "/s", options: storeOptions(fs))
            } catch {
                #expect("\(error)".contains(table), "byte \(offset): \(error)")
                failures += 1
                continue
            }
            for (k, v) in model.map {
                do {
                    let got = try store.get(k)
                    #expect(got == v, "byte \(offset): \(String(decoding: k, as: UTF8.self)) read back wrong")
                } catch {
                    #expect("\(error)".contains(table), "byte \(offset): \(error)")
                    failures += 1
                }
            }
            try? store.close()
        }
        #expect(failures > 0)
    }
}
