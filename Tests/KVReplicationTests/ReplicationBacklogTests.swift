import KVEngine
import KVFileSystem
import KVReplication
import KVStore
import Testing

/// The leader's backlog holds nothing until a follower asks, and what it holds is always a
/// contiguous run of groups: a position it cannot serve is `.tooOld` (a full sync), never a
/// silent gap.
@Suite("Replication backlog")
struct ReplicationBacklogTests {
    func groups(_ r: ReplicationBacklog.ReadResult) -> [ReplicationBacklog.Group]? {
        if case .groups(let g) = r { return g }
        return nil
    }

    @Test func keepsNothingUntilAFollowerAsks() throws {
        let backlog = ReplicationBacklog()
        let store = try ShardedStore.open(at: "/s", shards: 2, options: storeOptions(MemoryFileSystem()), commitFeed: backlog)
        defer { try? store.close() }
        for i in 0..<500 { try store.put(bytes("k\(i)"), [UInt8](repeating: 7, count: 100)) }
        #expect(backlog.bytesHeld == 0)
        #expect(!backlog.isActive)
        let before = store.shardSequences
        backlog.activate(store: store)
        #expect(backlog.isActive)
        for i in 0..<100 { try store.put(bytes("k\(i)"), bytes("new\(i)")) }
        #expect(backlog.bytesHeld > 0)
        let after = store.shardSequences
        for shard in 0..<2 {
            // Positions from before the activation cannot be served: a full sync.
            if before[shard] > 0 {
                #expect(groups(backlog.read(shard: shard, from: 1, maxBytes: 1 << 20)) == nil)
            }
            // From the activation point on, every group is there, contiguous.
            let got = try #require(groups(backlog.read(shard: shard, from: before[shard] + 1, maxBytes: 1 << 30)))
            var next = before[shard] + 1
            for g in got {
                #expect(g.first == next)
                next = g.last + 1
            }
            #expect(next == after[shard] + 1)
        }
        // Activating again changes nothing.
        let held = backlog.bytesHeld
        backlog.activate(store: store)
        #expect(backlog.bytesHeld == held)
    }
}
