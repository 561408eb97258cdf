extension CommandMetadata {
    /// Redis's cluster commands (group `cluster`) that kvserver has, as redis-server 7.0
    /// describes them.
    static let clusterGroup: [CommandMetadata] = [
        .init("readonly", 1, "loading stale fast", acl: "connection",
              "Enables read queries for a connection to a cluster replica node", since: "3.0.0", group: "cluster",
              complexity: "O(1)"),
        .init("readwrite", 1, "loading stale fast", acl: "connection",
              "Disables read queries for a connection to a cluster replica node", since: "3.0.0", group: "cluster",
              complexity: "O(1)"),
        .init("cluster", -2, "", "A container for cluster commands", since: "3.0.0", group: "cluster",
              complexity: "Depends on subcommand."),
        .init("cluster|info", 2, "stale", tips: "nondeterministic_output", "Provides info about Redis Cluster node state",
              since: "3.0.0", group: "cluster", complexity: "O(1)"),
        .init("cluster|slots", 2, "stale", tips: "nondeterministic_output", "Get array of Cluster slot to node mappings",
              since: "3.0.0", group: "cluster", complexity: "O(N) where N is the total number of Cluster nodes",
              deprecated: (since: "7.0.0", replacedBy: "`CLUSTER SHARDS`"),
              history: [("4.0.0", "Added node IDs."), ("7.0.0", "Added additional networking metadata field.")]),
        .init("cluster|shards", 2, "stale", tips: "nondeterministic_output", "Get array of cluster slots to node mappings",
              since: "7.0.0", group: "cluster", complexity: "O(N) where N is the total number of cluster nodes"),
        .init("cluster|nodes", 2, "stale", tips: "nondeterministic_output", "Get Cluster config for the node",
              since: "3.0.0", group: "cluster", complexity: "O(N) where N is the total number of Cluster nodes"),
        .init("cluster|keyslot", 3, "stale", "Returns the hash slot of the specified key", since: "3.0.0", group: "cluster",
              complexity: "O(N) where N is the number of bytes in the key", args: [.string("key")]),
        .init("cluster|countkeysinslot", 3, "stale", "Return the number of local keys in the specified hash slot",
              since: "3.0.0", group: "cluster", complexity: "O(1)", args: [.integer("slot")]),
        .init("cluster|getkeysinslot", 4, "stale", tips: "nondeterministic_output", "Return local key names in the specified hash slot",
              since: "3.0.0", group: "cluster", complexity: "O(log(N)) where N is the number of requested keys",
              args: [.integer("slot"), .integer("count")]),
        .init("cluster|myid", 2, "stale", "Return the node id", since: "3.0.0", group: "cluster", complexity: "O(1)"),
        .init("cluster|help", 2, "loading stale", "Show helpful text about the different subcommands", since: "5.0.0",
              group: "cluster", complexity: "O(1)"),
    ]
}
