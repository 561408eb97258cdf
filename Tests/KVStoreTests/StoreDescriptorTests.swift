import KVBase
import KVEngine
import KVFileSystem
import KVStore
import KVTestSupport
import Testing

/// The store descriptor: encoding, damage detection, and refusing layouts that would misroute.
@Suite("Store descriptor")
struct StoreDescriptorTests {
    static func descriptor(_ phase: StoreDescriptor.Phase) -> StoreDescriptor {
        switch phase {
        case .stable:
            return StoreDescriptor(
                generation: 7, shardCount: 4, directories: (0..<4).map(StoreDescriptor.directoryName),
                owners: HashRing.owners(shardCount: 4))
        case .copying:
            return StoreDescriptor(
                generation: 8, shardCount: 4, directories: (0..<6).map(StoreDescriptor.directoryName),
                owners: HashRing.owners(shardCount: 4), phase: .copying, otherCount: 6,
                otherOwners: HashRing.owners(shardCount: 6))
        case .cleaning:
            return StoreDescriptor(
                generation: 9, shardCount: 3, directories: (0..<5).map(StoreDescriptor.directoryName),
                owners: HashRing.owners(shardCount: 3), phase: .cleaning, otherCount: 5,
                otherOwners: HashRing.owners(shardCount: 5))
        }
    }

    @Test(arguments: [StoreDescriptor.Phase.stable, .copying, .cleaning])
    func roundTrips(phase: StoreDescriptor.Phase) throws {
        let d = Self.descriptor(phase)
        let encoded = d.encode()
        #expect(try StoreDescriptor.decode(encoded, file: "/s/STORE") == d)
    }

    @Test func everyFlippedByteIsDetected() throws {
        let encoded = Self.descriptor(.copying).encode()
        let seed = testSeed("descriptor flips")
        var r = TestRandom(seed: seed)
        var offsets = Array(0..<64) + Array((encoded.count - 64)..<encoded.count)
        for _ in 0..<200 { offsets.append(r.next(encoded.count)) }
        for offset in offsets {
            var damaged = encoded
            damaged[offset] ^= UInt8(1 << r.next(8))
            #expect(throws: KVError.self, "seed \(seed) offset \(offset)") {
                try StoreDescriptor.decode(damaged, file: "/s/STORE")
            }
        }
        for length in [0, 3, 12, 20, encoded.count - 1] {
            #expect(throws: KVError.self) { try StoreDescriptor.decode(Array(encoded.prefix(length)), file: "/s/STORE") }
        }
    }

    @Test func corruptDescriptorIsReportedNamingTheFile() throws {
        let fs = MemoryFileSystem()
        try ShardedStore.open(at: "/s", shards: 4, options: storeOptions(fs)).close()
        fs.flipBytes("/s/STORE", at: 40, mask: 0x10)
        do {
            _ = try ShardedStore.open(at: "/s", options: storeOptions(fs))
            Issue.record("opened a store with a corrupt descriptor")
        } catch let KVError.corruption(file, _, reason) {
            #expect(file == "/s/STORE")
            #expect(reason.contains("checksum"))
        }
    }

    @Test func mismatchingShardCountIsRefused() throws {
        let fs = MemoryFileSystem()
        let store = try ShardedStore.open(at: "/s", shards: 4, options: storeOptions(fs))
        try store.put("k", "v")
        try store.close()
        do {
            _ = try ShardedStore.open(at: "/s", shards: 8, options: storeOptions(fs))
            Issue.record("opened a 4-shard store as 8 shards")
        } catch let KVError.invalidArgument(message) {
            #expect(message.contains("has 4 shards"))
            #expect(message.contains("setShardCount(8)"))
            #expect(message.contains("/s/STORE"))
        }
        // nil means "whatever is on disk"; the right count works too.
        let again = try ShardedStore.open(at: "/s", options: storeOptions(fs))
        #expect(again.shardCount == 4)
        #expect(try again.get("k") == bytes("v"))
        try again.close()
        try ShardedStore.open(at: "/s", shards: 4, options: storeOptions(fs)).close()
    }

    @Test func otherSlotCountIsRefused() throws {
        let fs = MemoryFileSystem()
        try ShardedStore.open(at: "/s", shards: 2, options: storeOptions(fs)).close()
        var d = try #require(try StoreDescriptor.read(fs: fs, directory: "/s"))
        d.slotCount = 1024
        d.owners = Array(d.owners.prefix(1024))
        try fs.writeFileAtomically("/s/STORE", d.encode())
        do {
            _ = try ShardedStore.open(at: "/s", options: storeOptions(fs))
            Issue.record("opened a store with 1024 slots")
        } catch let KVError.invalidState(message) {
            #expect(message.contains("1024 hash slots"))
        }
    }

    @Test func unknownFormatVersionIsRefused() throws {
        let fs = MemoryFileSystem()
        try ShardedStore.open(at: "/s", shards: 2, options: storeOptions(fs)).close()
        var raw = try fs.readFile("/s/STORE")
        raw[4] = 1  // the layout before rows had an envelope
        let crc = CRC32C.mask(CRC32C.checksum(Array(raw.dropLast(4))))
        for i in 0..<4 { raw[raw.count - 4 + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
        try fs.writeFileAtomically("/s/STORE", raw)
        #expect(throws: KVError.unsupportedFormat(file: "/s/STORE", version: 1)) {
            _ = try ShardedStore.open(at: "/s", options: storeOptions(fs))
        }
    }

    @Test func creatingNeedsAShardCountAndOpeningAMissingStoreFails() throws {
        let fs = MemoryFileSystem()
        #expect(throws: KVError.self) { _ = try ShardedStore.open(at: "/s", options: storeOptions(fs)) }
        var o = storeOptions(fs)
        o.createIfMissing = false
        #expect(throws: KVError.self) { _ = try ShardedStore.open(at: "/t", shards: 2, options: o) }
        #expect(throws: KVError.self) { _ = try ShardedStore.open(at: "/u", shards: 0, options: storeOptions(fs)) }
        #expect(throws: KVError.self) { _ = try ShardedStore.open(at: "/u", shards: 5000, options: storeOptions(fs)) }
    }

    @Test func secondOpenIsLocked() throws {
        let fs = MemoryFileSystem()
        let store = try ShardedStore.open(at: "/s", shards: 2, options: storeOptions(fs))
        #expect(throws: KVError.locked(path: "/s/LOCK")) { _ = try ShardedStore.open(at: "/s", options: storeOptions(fs)) }
        try store.close()
    }

    @Test func shardDataWithoutDescriptorIsRefused() throws {
        let fs = MemoryFileSystem()
        let store = try ShardedStore.open(at: "/s", shards: 2, options: storeOptions(fs))
        for i in 0..<20 { try store.put("k\(i)", "v") }
        try store.close()
        try fs.removeFile("/s/STORE")
        do {
            _ = try ShardedStore.open(at: "/s", shards: 2, options: storeOptions(fs))
            Issue.record("guessed the layout of a store without descriptor")
        } catch let KVError.invalidState(message) {
            #expect(message.contains("holds data"))
        }
    }

    @Test func missingShardDirectoryIsReported() throws {
        let fs = MemoryFileSystem()
        try ShardedStore.open(at: "/s", shards: 3, options: storeOptions(fs)).close()
        for name in try fs.listDirectory("/s/shard-0001") { try fs.removeFile("/s/shard-0001/" + name) }
        try fs.removeDirectory("/s/shard-0001")
        do {
            _ = try ShardedStore.open(at: "/s", options: storeOptions(fs))
            Issue.record("opened a store with a missing shard")
        } catch let KVError.notFound(what) {
            #expect(what.contains("shard 1"))
            #expect(what.contains("/s/shard-0001"))
        }
    }
}
