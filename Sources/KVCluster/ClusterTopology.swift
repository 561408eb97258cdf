import Foundation

/// One node of a cluster: its id (40 lower-case hex characters, kept in its data directory)
/// and the address clients reach it at (`--cluster-announce`).
public struct ClusterNode: Codable, Sendable, Equatable, Hashable {
    /// The node id.
    public var id: String
    /// The announced host (an IP address or a name).
    public var host: String
    /// The announced port.
    public var port: Int

    /// A node.
    public init(id: String, host: String, port: Int) {
        self.id = id
        self.host = host
        self.port = port
    }

    /// `host:port`.
    public var address: String { "\(host):\(port)" }

    /// Whether `id` is a well-formed node id.
    public static func isValidID(_ id: String) -> Bool {
        id.utf8.count == 40 && id.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}

/// A set of slots served by one leader and copied by its followers.
public struct ClusterShard: Codable, Sendable, Equatable {
    /// The node id of the leader (it takes the writes of these slots).
    public var leader: String
    /// The node ids of its followers, in order.
    public var followers: [String]
    /// The slot ranges, each `[first, last]` inclusive, ascending and disjoint.
    public var slots: [[Int]]

    /// A shard.
    public init(leader: String, followers: [String] = [], slots: [[Int]]) {
        self.leader = leader
        self.followers = followers
        self.slots = slots
    }

    /// How many slots it serves.
    public var slotCount: Int { slots.reduce(0) { $0 + ($1.count == 2 ? $1[1] - $1[0] + 1 : 0) } }
}

/// The cluster's layout as held in etcd (``ClusterKeys/topology``): the nodes, which leader
/// serves which slots, and who follows whom. Written only by etcd transactions that compare
/// the previous revision, so writers never overwrite each other; every change raises
/// ``epoch`` (Redis's config epoch: clients and nodes keep the newest).
///
/// JSON (version 1):
/// ```
/// {"version":1,"epoch":N,"nodes":[{"id":"<40 hex>","host":"h","port":p},...],
///  "shards":[{"leader":"<id>","followers":["<id>",...],"slots":[[first,last],...]},...]}
/// ```
public struct ClusterTopology: Codable, Sendable, Equatable {
    /// The number of hash slots (Redis Cluster's).
    public static let slotCount = 16384
    /// The format version written.
    public static let currentVersion = 1

    /// The format version.
    public var version: Int
    /// Raised by every change.
    public var epoch: Int64
    /// Every node with a role in the layout.
    public var nodes: [ClusterNode]
    /// The shards, in the order they were created.
    public var shards: [ClusterShard]

    /// A layout.
    public init(epoch: Int64, nodes: [ClusterNode], shards: [ClusterShard]) {
        version = Self.currentVersion
        self.epoch = epoch
        self.nodes = nodes
        self.shards = shards
    }

    /// The node with id `id`.
    public func node(_ id: String) -> ClusterNode? {
        nodes.first { $0.id == id }
    }

    /// The shard `id` leads or follows in, and whether it leads it.
    public func role(of id: String) -> (shard: Int, leader: Bool)? {
        for (i, s) in shards.enumerated() {
            if s.leader == id { return (i, true) }
            if s.followers.contains(id) { return (i, false) }
        }
        return nil
    }

    /// The shard serving each slot (nil: unassigned).
    public func slotOwners() -> [Int?] {
        var owners = [Int?](repeating: nil, count: Self.slotCount)
        for (i, s) in shards.enumerated() {
            for r in s.slots where r.count == 2 && r[0] >= 0 && r[1] < Self.slotCount && r[0] <= r[1] {
                for slot in r[0]...r[1] { owners[slot] = i }
            }
        }
        return owners
    }

    /// How many slots are assigned.
    public var assignedSlots: Int { shards.reduce(0) { $0 + $1.slotCount } }

    /// What is wrong with the layout, or nil: the version, ranges out of bounds, reversed or
    /// overlapping, unknown or duplicated node ids, a node in two roles.
    public func problem() -> String? {
        if version != Self.currentVersion { return "topology format version \(version) is not \(Self.currentVersion)" }
        var seen = Set<String>()
        for n in nodes {
            if !ClusterNode.isValidID(n.id) { return "node id \(n.id) is not 40 lower-case hex characters" }
            if !seen.insert(n.id).inserted { return "node \(n.id) is listed twice" }
            if n.port < 1 || n.port > 65535 { return "node \(n.id) has port \(n.port)" }
        }
        var roles = Set<String>()
        var taken = [Bool](repeating: false, count: Self.slotCount)
        for (i, s) in shards.enumerated() {
            for id in [s.leader] + s.followers {
                if !seen.contains(id) { return "shard \(i) names unknown node \(id)" }
                if !roles.insert(id).inserted { return "node \(id) has two roles" }
            }
            for r in s.slots {
                guard r.count == 2, r[0] >= 0, r[1] < Self.slotCount, r[0] <= r[1] else {
                    return "shard \(i) has a bad slot range \(r)"
                }
                for slot in r[0]...r[1] {
                    if taken[slot] { return "slot \(slot) is assigned twice" }
                    taken[slot] = true
                }
            }
        }
        return nil
    }

    /// Contiguous ranges covering `slots` (sorted or not).
    public static func ranges(_ slots: some Sequence<Int>) -> [[Int]] {
        var out: [[Int]] = []
        for s in slots.sorted() {
            if let last = out.last, last[1] + 1 == s { out[out.count - 1][1] = s } else { out.append([s, s]) }
        }
        return out
    }

    /// Parses slot ranges written `first-last` or `slot`, any number per token separated by
    /// commas (`0-99,200 300-310`): the result is ascending, merged ranges. Throws for a
    /// malformed range, a slot outside 0...16383 or a reversed range.
    public static func parseRanges(_ tokens: [String]) throws -> [[Int]] {
        var slots = Set<Int>()
        for token in tokens {
            for part in token.split(separator: ",", omittingEmptySubsequences: true) {
                let bounds = part.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
                guard let first = Int(bounds[0]), let last = bounds.count == 2 ? Int(bounds[1]) : first,
                      first >= 0, last < slotCount, first <= last else {
                    throw ClusterError.failed("bad slot range '\(part)': use first-last with 0 <= first <= last <= \(slotCount - 1)")
                }
                slots.formUnion(first...last)
            }
        }
        return ranges(slots)
    }

    /// A table of ``slotCount`` flags, true for the slots of `ranges`.
    public static func flags(_ ranges: [[Int]]) -> [Bool] {
        var out = [Bool](repeating: false, count: slotCount)
        for r in ranges where r.count == 2 && r[0] >= 0 && r[1] < slotCount && r[0] <= r[1] {
            for slot in r[0]...r[1] { out[slot] = true }
        }
        return out
    }

    /// `ranges` written as `first-last` tokens.
    public static func rangeText(_ ranges: [[Int]]) -> [String] {
        ranges.map { $0.count == 2 && $0[0] != $0[1] ? "\($0[0])-\($0[1])" : "\($0.first ?? 0)" }
    }

    /// The JSON form.
    public func encoded() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return try e.encode(self)
    }

    /// Decodes the JSON form; throws when it is malformed or ``problem()`` finds a fault.
    public static func decode(_ data: Data) throws -> ClusterTopology {
        let t = try JSONDecoder().decode(ClusterTopology.self, from: data)
        if let p = t.problem() { throw ClusterError.badTopology(p) }
        return t
    }
}

/// Errors of cluster mode.
public enum ClusterError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The topology in etcd is unusable.
    case badTopology(String)
    /// etcd could not be reached or refused a request.
    case etcd(String)
    /// An operation of kvcluster failed.
    case failed(String)

    public var description: String {
        switch self {
        case .badTopology(let s): return "bad cluster topology: \(s)"
        case .etcd(let s): return "etcd: \(s)"
        case .failed(let s): return s
        }
    }
}

/// Where a cluster keeps its state in etcd, below `/shale/<cluster name>/`.
public struct ClusterKeys: Sendable {
    /// The cluster name (`--cluster-name`).
    public let cluster: String

    /// The keys of cluster `cluster`.
    public init(cluster: String) {
        self.cluster = cluster
    }

    /// The prefix of every key of the cluster.
    public var prefix: String { "/shale/\(cluster)/" }
    /// The layout (``ClusterTopology`` JSON).
    public var topology: String { prefix + "topology" }
    /// A node's registration, held under the node's lease (JSON ``ClusterNode``): present
    /// while the node runs and renews its lease.
    public func alive(_ id: String) -> String { prefix + "alive/" + id }
    /// The prefix of every registration.
    public var alivePrefix: String { prefix + "alive/" }
}
