extension CommandMetadata {
    /// kvserver's own commands: secondary indexes (IDX.*), the shard layout (SHARDS) and the
    /// replication commands followers send (SHALE.*). `since` is the Shale version that added
    /// them.
    ///
    /// IDX.* name an index, never a key: they have no key specifications, so a cluster-aware
    /// client may send them to any node. SHARDS and SHALE.* are `admin`; SHALE.* are for
    /// followers only (`syscmd`, as Redis marks PSYNC and REPLCONF).
    static let shaleGroup: [CommandMetadata] = [
        .init("idx.create", -3, "write denyoom", acl: "keyspace",
              "Create a secondary index over a field of the JSON values of the keys with a prefix; existing keys are indexed in the background",
              since: "0.3.0", group: "generic",
              complexity: "O(1); the background back-fill is O(N) where N is the number of keys with the prefix",
              args: [
                  .string("index"), .string("field"),
                  .oneOf("type", token: "TYPE", .optional, of: [.pure("string", "STRING"), .pure("number", "NUMBER")]),
                  .string("prefix", token: "PREFIX", .optional),
              ]),
        .init("idx.drop", 2, "write", acl: "keyspace", "Drop a secondary index and its entries", since: "0.3.0", group: "generic",
              complexity: "O(N) where N is the number of entries of the index", args: [.string("index")]),
        .init("idx.list", 1, "readonly", acl: "keyspace", "List the names of the secondary indexes", since: "0.3.0",
              group: "generic", complexity: "O(N) where N is the number of indexes"),
        .init("idx.info", 2, "readonly", acl: "keyspace", tips: "nondeterministic_output",
              "Return a secondary index's definition, build state and statistics", since: "0.3.0", group: "generic",
              complexity: "O(1)", args: [.string("index")]),
        .init("idx.query", -4, "readonly", acl: "keyspace",
              "Return the keys whose indexed field equals a value, starts with a prefix or lies in a range, ordered by value then key",
              since: "0.3.0", group: "generic",
              complexity: "O(log(N)+M) where N is the number of entries of the index and M the number of entries read (returned or skipped by the offset)",
              args: [
                  .string("index"),
                  .oneOf("condition", of: [
                      .string("value", token: "EQ"), .string("prefix", token: "PREFIX"),
                      .block("range", token: "RANGE", of: [.string("min"), .string("max")]),
                  ]),
                  .block("limit", token: "LIMIT", .optional, of: [.integer("offset"), .integer("count")]),
                  .pure("withvalues", "WITHVALUES", .optional),
              ]),
        .init("shards", -1, "admin", "Return each shard's id, slot ranges and key count; SHARDS SET changes the shard count",
              since: "0.3.0", group: "server", complexity: "O(N) where N is the number of keys (counted per shard)"),
        .init("shards|set", 3, "write admin", "Change the number of shards online, moving only the slots that change owner",
              since: "0.3.0", group: "server", complexity: "O(N) where N is the number of keys in the slots that move",
              args: [.integer("count")]),
        .init("shale.repllayout", 1, "admin",
              "Return the replication id, the layout generation, the shard count and the owner of each slot (used by followers)",
              since: "0.3.0", group: "server", complexity: "O(1)", syscmd: true),
        .init("shale.replpull", -6, "admin", tips: "nondeterministic_output",
              "Return each shard's committed write groups after the follower's positions, waiting up to 100 ms for new ones (used by followers)",
              since: "0.3.0", group: "server", complexity: "O(N) where N is the size of the groups returned", syscmd: true,
              args: [
                  .string("replicationid"), .string("follower-id"), .integer("port"), .integer("generation"),
                  .integer("position", .multiple),
              ]),
        .init("shale.replsnap", 5, "admin", "Return the next page of a shard's snapshot for a follower's full synchronization",
              since: "0.3.0", group: "server", complexity: "O(N) where N is the size of the page", syscmd: true,
              args: [.string("replicationid"), .string("follower-id"), .integer("shard"), .integer("restart")]),
    ]
}
