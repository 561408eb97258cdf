import KVBase
import KVEngine
import KVStore
import Synchronization

/// The leader side of replication: every shard's recently committed write groups, in commit
/// order, kept in memory up to a byte budget (Redis's replication backlog).
///
/// The store reports every committed group (its encoded write batch, whose header holds the
/// first sequence number and the record count) to the backlog, its ``CommitFeed``; the
/// group's records are exactly what the shard applied (rows
/// with their envelopes, index entries, expiry entries, metadata), so a follower that applies
/// the groups in order ends with the same records. The backlog lives in memory rather than in
/// the WAL: WAL files are deleted as soon as their memtable is flushed, so they cannot promise
/// a retention, while a bounded ring can; after a leader restart the backlog is empty and
/// followers resynchronize from a snapshot.
public final class ReplicationBacklog: CommitFeed {
    /// One entry of a shard's backlog.
    public struct Group: Sendable {
        /// The sequence number of the group's first record.
        public let first: UInt64
        /// The sequence number of its last record.
        public let last: UInt64
        /// The encoded write batch.
        public let batch: [UInt8]
    }

    /// What a follower gets for a read.
    public enum ReadResult: Sendable {
        /// Groups starting at the requested sequence (possibly none yet).
        case groups([Group])
        /// The requested sequence is older than the backlog: a snapshot is needed.
        case tooOld
    }

    /// A reference type, so appends mutate the ring in place under the mutex (a struct taken
    /// out of the dictionary would copy its array on every append).
    private final class ShardLog {
        var groups: [Group] = []
        var head = 0
        var bytes = 0
        /// The last sequence number seen (0: nothing seen since start).
        var last: UInt64 = 0
        /// The oldest sequence number still readable: groups from here on are all held.
        var oldest: UInt64 = 0
        var started = false
    }

    private let logs = Mutex<[Int: ShardLog]>([:])
    /// Whether groups are kept: from the first follower request on (``activate(lastSequences:)``).
    /// Until then an append costs one atomic load and holds no memory, as a Redis master
    /// without replicas keeps no backlog.
    private let active = Atomic<Bool>(false)
    private let capacity = Atomic<Int>(256 << 20)
    /// Bumped whenever groups are appended.
    public let appended = Atomic<UInt64>(0)
    /// Callbacks waiting for the next append (``notify(after:_:)``), by token.
    private let listeners = Mutex<(next: Int, waiting: [Int: @Sendable () -> Void])>((0, [:]))
    /// Whether any callback waits: an append checks this alone when none does.
    private let hasListeners = Atomic<Bool>(false)

    /// Creates an empty backlog; open the store with it as its commit feed.
    public init() {}

    /// The byte budget for all shards together.
    public var capacityBytes: Int {
        get { capacity.load(ordering: .relaxed) }
    }

    /// Sets the byte budget (split evenly over the shards seen).
    public func setCapacity(bytes: Int) {
        capacity.store(max(1, bytes), ordering: .relaxed)
    }

    /// Whether groups are being kept (a follower has asked for them).
    public var isActive: Bool { active.load(ordering: .relaxed) }

    /// Starts keeping groups, once: `lastSequences` are the shards' committed sequences, read
    /// after this call set the flag (``activate(store:)``). A shard's
    /// backlog then starts after that sequence, so an older position gets `.tooOld` (a full
    /// sync), never a silent gap; groups appended since the flag was set are kept.
    package func activate(lastSequences: () -> [(shard: Int, sequence: UInt64)]) {
        if active.exchange(true, ordering: .sequentiallyConsistent) { return }
        let sequences = lastSequences()
        logs.withLock { l in
            for (id, seq) in sequences {
                let s = l[id] ?? ShardLog()
                l[id] = s
                if s.groups.count > s.head { continue }
                s.groups.removeAll()
                s.head = 0
                s.bytes = 0
                s.last = seq
                s.oldest = seq &+ 1
                s.started = true
            }
        }
    }

    /// Starts keeping groups of `store` (whose commit feed this backlog is) from now on (a
    /// follower has asked for them); until then it keeps nothing. Idempotent.
    public func activate(store: ShardedStore) {
        activate { store.openShardSequences }
    }

    /// Records the starting point of shard `id` (its engine's last sequence at open).
    public func shardOpened(_ id: Int, lastSequence sequence: UInt64) {
        logs.withLock { l in
            if l[id]?.started == true { return }
            let s = l[id] ?? ShardLog()
            s.last = sequence
            s.oldest = sequence + 1
            s.started = true
            l[id] = s
        }
    }

    /// Appends a group shard `id` committed (kept only once active).
    public func committed(shard id: Int, batch: [UInt8]) {
        guard active.load(ordering: .sequentiallyConsistent) else { return }
        guard batch.count >= WriteBatch.headerSize else { return }
        let first = batch.withUnsafeBytes { $0.fixed64(at: 0) }
        let count = UInt64(batch.withUnsafeBytes { $0.fixed32(at: 8) })
        let group = Group(first: first, last: first + count - 1, batch: batch)
        let budget = capacity.load(ordering: .relaxed)
        logs.withLock { l in
            let known = l[id] != nil
            let s = l[id] ?? ShardLog()
            if !known { l[id] = s }
            if !s.started {
                s.started = true
                s.oldest = first
            } else if first != s.last &+ 1 {
                // Groups were committed while none were kept (before activation): what is
                // held must stay contiguous, so the ring starts over at this group.
                s.groups.removeAll()
                s.head = 0
                s.bytes = 0
                s.oldest = first
            }
            s.groups.append(group)
            s.bytes += batch.count
            s.last = group.last
            let perShard = max(1, budget / max(1, l.count))
            while s.bytes > perShard && s.groups.count - s.head > 1 {
                let dropped = s.groups[s.head]
                s.bytes -= dropped.batch.count
                s.oldest = dropped.last + 1
                s.head += 1
            }
            if s.head > 1024 && s.head * 2 > s.groups.count {
                s.groups.removeFirst(s.head)
                s.head = 0
            }
        }
        appended.wrappingAdd(1, ordering: .sequentiallyConsistent)
        if hasListeners.load(ordering: .sequentiallyConsistent) { wakeListeners() }
    }

    /// Calls `callback` once, as soon as ``appended`` differs from `mark`: at once (on this
    /// thread) when it already does, else on the thread of the next append. Returns a token
    /// for ``cancelNotify(_:)``, or nil when the callback already ran. The callback must be
    /// quick (hand work to another thread or event loop): appends run on the commit path.
    public func notify(after mark: UInt64, _ callback: @escaping @Sendable () -> Void) -> Int? {
        // Dekker-style: the waiter is published (and the flag set) before `appended` is
        // checked, and an append bumps `appended` before it checks the flag, both
        // sequentially consistent, so at least one side sees the other.
        let token = listeners.withLock { l -> Int? in
            let t = l.next
            l.next += 1
            l.waiting[t] = callback
            hasListeners.store(true, ordering: .sequentiallyConsistent)
            if appended.load(ordering: .sequentiallyConsistent) != mark {
                l.waiting[t] = nil
                if l.waiting.isEmpty { hasListeners.store(false, ordering: .sequentiallyConsistent) }
                return nil
            }
            return t
        }
        if token == nil { callback() }
        return token
    }

    /// Forgets a callback registered with ``notify(after:_:)`` that has not run yet.
    public func cancelNotify(_ token: Int) {
        listeners.withLock { l in
            l.waiting[token] = nil
            if l.waiting.isEmpty { hasListeners.store(false, ordering: .sequentiallyConsistent) }
        }
    }

    private func wakeListeners() {
        let callbacks = listeners.withLock { l -> [@Sendable () -> Void] in
            let c = Array(l.waiting.values)
            l.waiting.removeAll()
            hasListeners.store(false, ordering: .sequentiallyConsistent)
            return c
        }
        for c in callbacks { c() }
    }

    /// The groups of shard `id` starting at sequence `from` (the follower has applied
    /// everything before it), up to about `maxBytes`; `.tooOld` when the backlog no longer
    /// holds `from`.
    public func read(shard id: Int, from: UInt64, maxBytes: Int) -> ReadResult {
        logs.withLock { l in
            guard let s = l[id] else { return .tooOld }
            if from == s.last + 1 { return .groups([]) }
            if from < s.oldest || from > s.last + 1 { return .tooOld }
            var out: [Group] = []
            var bytes = 0
            // Binary search for the group starting at `from`.
            var lo = s.head, hi = s.groups.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if s.groups[mid].first < from { lo = mid + 1 } else { hi = mid }
            }
            guard lo < s.groups.count, s.groups[lo].first == from else { return .tooOld }
            var i = lo
            while i < s.groups.count && (out.isEmpty || bytes + s.groups[i].batch.count <= maxBytes) {
                out.append(s.groups[i])
                bytes += s.groups[i].batch.count
                i += 1
            }
            return .groups(out)
        }
    }

    /// The oldest readable and the newest sequence of shard `id`.
    public func range(shard id: Int) -> (oldest: UInt64, newest: UInt64)? {
        logs.withLock { l in l[id].map { ($0.oldest, $0.last) } }
    }

    /// Bytes held, all shards.
    public var bytesHeld: Int {
        logs.withLock { $0.values.reduce(0) { $0 + $1.bytes } }
    }

    /// The frames a follower that has applied everything before `from[shard]` in every shard
    /// gets now, about `budget` bytes of groups at most (empty when there is nothing new): the
    /// groups after each position, or a resync frame for a shard whose position the backlog
    /// no longer holds. A position of 0 skips its shard.
    public func frames(shards: Int, from: [UInt64], budget: Int = 4 << 20) -> [UInt8] {
        var out: [UInt8] = []
        var left = budget
        for shard in 0..<min(shards, from.count) where left > 0 && from[shard] > 0 {
            switch read(shard: shard, from: from[shard], maxBytes: left) {
            case .tooOld:
                ReplicationFrame.resync(shard: shard).encode(into: &out)
            case .groups(let groups):
                for g in groups {
                    ReplicationFrame.group(shard: shard, first: g.first, last: g.last, batch: g.batch).encode(into: &out)
                    left -= g.batch.count
                }
            }
        }
        return out
    }
}
