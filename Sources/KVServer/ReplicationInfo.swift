/// The `INFO replication` lines and the replication counters of `INFO stats`.
func replicationInfo(_ server: ServerState) -> [(String, String)] {
    [("role", "master"), ("connected_slaves", "0"),
     ("master_replid", server.runID), ("master_repl_offset", "0")]
}

/// `sync_full`, `sync_partial_ok`, `sync_partial_err` for `INFO stats`.
func replicationStats(_ server: ServerState) -> [(String, String)] {
    [("sync_full", "0"), ("sync_partial_ok", "0"), ("sync_partial_err", "0")]
}
