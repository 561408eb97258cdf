import KVCluster
import KVStore
import Synchronization

/// What a node in cluster mode knows of the cluster (see DESIGN.md, "Cluster mode"): its own
/// id and announced address, the layout last read from etcd (``ClusterTopology``), the shard
/// serving each slot, its own role, and whether it holds its etcd lease. Requests with keys
/// are checked against it before they run (``redirect(_:spec:session:)``).
final class ClusterState: Sendable {
    /// This node.
    let myself: ClusterNode

    /// An immutable picture of the layout, replaced whole when etcd says it changed.
    struct View: Sendable {
        let topology: ClusterTopology?
        /// The shard (index into `topology.shards`) serving each slot; empty without a layout.
        let owners: [Int?]
        /// This node's shard and whether it leads it.
        let role: (shard: Int, leader: Bool)?
        /// Whether the node holds its etcd lease (a leader without it refuses writes).
        let leaseHeld: Bool

        /// Redis's `cluster_state`: ok when every slot is served.
        var ok: Bool { topology != nil && owners.allSatisfy { $0 != nil } }
    }

    private let current: Mutex<View>
    /// Slot moves this node takes part in.
    let moves = SlotMoves()

    init(myself: ClusterNode) {
        self.myself = myself
        current = Mutex(View(topology: nil, owners: [], role: nil, leaseHeld: false))
    }

    var view: View { current.withLock { $0 } }

    /// Installs a layout read from etcd (nil: none written yet). Returns this node's role in it.
    @discardableResult
    func install(_ topology: ClusterTopology?) -> (shard: Int, leader: Bool)? {
        let role = topology?.role(of: myself.id)
        current.withLock { v in
            v = View(topology: topology, owners: topology?.slotOwners() ?? [], role: role, leaseHeld: v.leaseHeld)
        }
        return role
    }

    /// Records whether the node holds its etcd lease.
    func setLease(held: Bool) {
        current.withLock { v in v = View(topology: v.topology, owners: v.owners, role: v.role, leaseHeld: held) }
    }

    static let crossSlot = "CROSSSLOT Keys in request don't hash to the same slot"
    static let down = "CLUSTERDOWN The cluster is down"
    static let notServed = "CLUSTERDOWN Hash slot not served"

    /// The error that sends a request elsewhere, or nil when this node serves it: `-CROSSSLOT`
    /// for keys of several slots, `-CLUSTERDOWN` without a layout or for an unserved slot,
    /// `-MOVED slot host:port` for a slot another shard serves — and for a write on a
    /// follower, or a read on a follower whose client did not send READONLY. A leader that
    /// lost its lease refuses writes with `-CLUSTERDOWN` (its followers may be taking over).
    /// While slots move (``SlotMoves``): `-ASK`/`-TRYAGAIN` on the source, and an ASKING
    /// client (`asking`) is served an incoming slot on the target. A request with keys is
    /// counted in flight first (`entered` receives the epoch to leave).
    func redirect(_ arguments: [[UInt8]], spec: CommandSpec, session: ClientSession, asking: Bool, entered: inout Int) -> String? {
        let positions = spec.keyPositions(arguments)
        guard let first = positions.first else { return nil }
        let slot = HashSlot.slot(of: arguments[first])
        for p in positions.dropFirst() where HashSlot.slot(of: arguments[p]) != slot { return Self.crossSlot }
        let v = view
        guard let topology = v.topology else { return Self.down }
        entered = moves.enter()
        switch moves.route(slot: slot, isWrite: spec.isWrite, keys: positions.count, asking: asking) {
        case .success?: return nil
        case .failure(let e)?: return e.text
        case nil: break
        }
        guard let owner = v.owners[slot] else { return Self.notServed }
        if let role = v.role, role.shard == owner {
            if role.leader {
                if spec.isWrite && !v.leaseHeld { return Self.down }
                return nil
            }
            if !spec.isWrite && session.clusterReadOnly.load(ordering: .relaxed) { return nil }
        }
        let leader = topology.shards[owner].leader
        guard let node = topology.node(leader) else { return Self.notServed }
        return "MOVED \(slot) \(node.address)"
    }
}
