import KVStore
import KVReplication

/// The `INFO replication` lines (Redis's field names) and the replication counters of
/// `INFO stats`. Offsets are sums of per-shard sequence numbers; lag is given in sequence
/// numbers, and for followers also in milliseconds since the last group applied.
func replicationInfo(_ server: ServerState) -> [(String, String)] {
    let state = server.replication
    let replid = state.replid.withLock { $0 }
    let (oldest, newest) = backlogRange(server)
    if let link = state.link.withLock({ $0 }) {
        let now = monotonicMillis()
        let applied = link.applied.reduce(0, +)
        return [("role", "slave"), ("master_host", link.host), ("master_port", String(link.port)),
                ("master_link_status", link.up ? "up" : "down"),
                ("master_last_io_seconds_ago", link.lastIO == 0 ? "-1" : String((now - link.lastIO) / 1000)),
                ("master_sync_in_progress", link.syncInProgress ? "1" : "0")]
            + (link.up ? [] : [("master_link_down_since_seconds", String((now - link.downSince) / 1000))])
            + [("slave_read_repl_offset", String(applied)), ("slave_repl_offset", String(applied)),
                ("slave_priority", String(server.live.withLock { $0.replicaPriority })), ("slave_read_only", "1"),
                ("replica_announced", "1"),
                ("master_last_group_ms_ago", link.lastGroupMillis == 0 ? "-1" : String(now - link.lastGroupMillis)),
                ("master_link_error", link.lastError.isEmpty ? "none" : link.lastError.replacingColons()),
                ("connected_slaves", "0"), ("master_replid", replid),
                ("master_repl_offset", String(applied)),
                ("repl_backlog_active", "1"), ("repl_backlog_size", String(server.backlog.capacityBytes)),
                ("repl_backlog_first_byte_offset", String(oldest)), ("repl_backlog_histlen", String(newest - min(oldest, newest)))]
    }
    let sequences = server.store.shardSequences
    let offset = sequences.reduce(0, +)
    let followers = state.followers.withLock { Array($0.values) }.filter(\.online).sorted { $0.id < $1.id }
    var lines: [(String, String)] = [("role", "master"), ("connected_slaves", String(followers.count))]
    for (i, f) in followers.enumerated() {
        let acked = f.acked.count == sequences.count ? f.acked.reduce(0, +) : 0
        let lagMillis = monotonicMillis() - f.lastSeen
        lines.append(("slave\(i)", "ip=\(f.address),port=\(f.port),state=online,offset=\(acked),lag=\(lagMillis / 1000),lag_seq=\(offset > acked ? offset - acked : 0),lag_ms=\(lagMillis)"))
    }
    lines += [("master_failover_state", "no-failover"), ("master_replid", replid), ("master_repl_offset", String(offset)),
              ("repl_backlog_active", "1"), ("repl_backlog_size", String(server.backlog.capacityBytes)),
              ("repl_backlog_bytes", String(server.backlog.bytesHeld)),
              ("repl_backlog_first_byte_offset", String(oldest)), ("repl_backlog_histlen", String(newest - min(oldest, newest)))]
    return lines
}

/// `sync_full`, `sync_partial_ok`, `sync_partial_err` for `INFO stats`: counted on the side
/// that syncs (this server as a follower).
func replicationStats(_ server: ServerState) -> [(String, String)] {
    let r = server.replication
    return [("sync_full", String(r.syncFull.load(ordering: .relaxed))),
            ("sync_partial_ok", String(r.syncPartialOK.load(ordering: .relaxed))),
            ("sync_partial_err", String(r.syncPartialErr.load(ordering: .relaxed)))]
}

/// Sums over the shards of the backlog's oldest and newest sequence numbers.
private func backlogRange(_ server: ServerState) -> (UInt64, UInt64) {
    var oldest: UInt64 = 0, newest: UInt64 = 0
    for shard in 0..<server.store.shardCount {
        if let r = server.backlog.range(shard: shard) {
            oldest += r.oldest
            newest += r.newest
        }
    }
    return (oldest, newest)
}

extension String {
    func replacingColons() -> String { String(map { $0 == ":" || $0 == "\r" || $0 == "\n" ? " " : $0 }) }
}
