/// Receives every shard's committed write groups, in each shard's commit order.
///
/// A store opened with a feed (``ShardedStore/open(at:shards:options:followingLeader:commitFeed:)``)
/// reports each shard it opens, with the shard engine's last sequence number, and then every
/// group that shard commits: the encoded write batch, whose header holds the group's first
/// sequence number and its record count. The records are exactly what the shard applied
/// (rows with their envelopes, index entries, expiry entries, metadata). The replication
/// backlog (module KVReplication) is the feed the server installs.
///
/// Both calls run on the committing thread, inside the shard's commit path: they must be
/// quick and must not call back into the store.
public protocol CommitFeed: AnyObject, Sendable {
    /// Shard `shard` was opened; its engine's last committed sequence is `lastSequence`.
    func shardOpened(_ shard: Int, lastSequence: UInt64)
    /// Shard `shard` committed `batch` (an encoded write batch).
    func committed(shard: Int, batch: [UInt8])
}
