import KVBase
import KVEngine
import KVLayout

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension ShardedStore {
    /// Stores `value` under `key` in the shard owning the key's slot.
    ///
    /// - Parameter durability: overrides the options' durability for this write.
    /// - Throws: ``KVError`` (limits, closed store, the shard's latched write error).
    public func put(_ key: [UInt8], _ value: [UInt8], durability: Durability? = nil) throws(KVError) {
        try put(key, value, expiresAt: nil, durability: durability)
    }

    /// Stores a UTF-8 string value under a UTF-8 string key.
    public func put(_ key: String, _ value: String, durability: Durability? = nil) throws(KVError) {
        try put(Array(key.utf8), Array(value.utf8), durability: durability)
    }

    /// Removes `key`. Removing a missing key is not an error.
    public func delete(_ key: [UInt8], durability: Durability? = nil) throws(KVError) {
        try deleteRow(key, durability: durability)
    }

    /// Removes a UTF-8 string key.
    public func delete(_ key: String, durability: Durability? = nil) throws(KVError) {
        try delete(Array(key.utf8), durability: durability)
    }

    /// Applies `batch`. When all its keys fall in one shard (always the case for keys sharing
    /// a `{hash tag}`) the batch is atomic: after a crash all or none of it is present.
    /// Otherwise it is split by shard and each part is applied atomically, in shard order;
    /// there is no atomicity across shards, and if a part fails the parts before it stay
    /// applied. Within a batch, later operations on the same key win, as in
    /// ``Database/write(_:durability:)``. An empty batch is a no-op.
    public func write(_ batch: WriteBatch, durability: Durability? = nil) throws(KVError) {
        if batch.isEmpty { return }
        try writeRows(batch, durability: durability)
    }

    /// The engine write path: register the write on its slots (waiting while a reshard's switch holds
    /// them), apply it to the owners, then record its keys for a running copy phase and
    /// unregister. Each record goes to the owner of the slot it carries.
    func apply(_ batch: RoutedBatch, durability: Durability?) throws(KVError) {
        if transactions.ownedByCurrentThread {
            // Inside a transaction's body: buffered, committed with the transaction.
            transactions.buffer(batch)
            return
        }
        let routing = try beginWrite(batch.slots)
        var failure: KVError?
        do throws(KVError) {
            try applyRouted(batch, routing: routing, durability: durability)
        } catch {
            failure = error
        }
        transactions.stamp(batch)
        endWrite(batch)
        if let failure { throw failure }
    }

    /// Registers a write on its slots and returns the routing to use: a few atomic
    /// operations and no lock when no reshard holds the gate. While a switch holds the gate on
    /// any of the slots, waits (the gate is held for a few milliseconds). The routing of a
    /// registered slot cannot change until ``endWrite(_:_:)``: the switch publishes the closed
    /// gate, then waits for the in-flight counters of the moving slots to reach 0 (see
    /// ``SlotCounters`` for why the two sides cannot miss each other).
    func beginWrite(_ slots: [Int]) throws(KVError) -> Routing {
        while true {
            for slot in slots { inflight.add(slot, 1) }
            let v = view.load(ordering: .sequentiallyConsistent)
            if v.closed {
                for slot in slots { inflight.add(slot, -1) }
                throw .closed
            }
            guard v.gateClosed, let moving = v.moving, slots.contains(where: { moving[$0] }) else { return v.routing }
            for slot in slots { inflight.add(slot, -1) }
            if let f = v.failure {
                throw .backgroundError(cause: "store \(path): the ownership switch of a reshard failed (\(f)); reopen the store")
            }
            // Sleep until the view changes (the gate opens, the switch fails, the store closes).
            events.wait {
                let now = view.load(ordering: .sequentiallyConsistent)
                return now !== v
            }
        }
    }

    /// Unregisters a write; during a copy phase first records the keys it wrote in moving
    /// slots (whether or not it succeeded), so the reshard copies them again. Recording comes
    /// before the counters drop, so a switch that sees them at 0 finds the keys recorded.
    func endWrite(_ routed: RoutedBatch) {
        let slots = routed.slots
        defer {
            for slot in slots { inflight.add(slot, -1) }
            // A switch holding the gate waits for the counters to drain (`waitForWrites`):
            // the counters drop before this load, and the switch publishes the closed gate
            // before it reads them, so one side sees the other.
            if view.load(ordering: .sequentiallyConsistent).gateClosed { events.signal() }
        }
        // A copy phase that starts after this load takes its snapshots later still, so this
        // write (already committed) is in them.
        guard view.load(ordering: .sequentiallyConsistent).moving != nil else { return }
        state.withLock { s in
            guard s.reshard.migration != nil else { return }
            // Only the bitmap is held apart, so the dirty set stays uniquely referenced and
            // is updated in place.
            let moving = s.reshard.migration!.moving
            guard slots.contains(where: { moving[$0] }) else { return }
            var i = 0
            try? routed.batch.forEach { _, key, _ in
                if moving[slots[i]] { s.reshard.migration!.dirty.insert(Array(key)) }
                i += 1
            }
        }
    }

    /// Applies a batch to the shards owning its slots: whole when one shard owns them all,
    /// else split into per-shard batches applied in shard-id order.
    func applyRouted(_ routed: RoutedBatch, routing: Routing, durability: Durability?) throws(KVError) {
        let slots = routed.slots
        let first = routing.owners[slots[0]]
        if slots.allSatisfy({ routing.owners[$0] == first }) {
            try routing.shards[Int(first)].db.commit(routed.batch, durability: durability)
            return
        }
        var parts: [Int: WriteBatch] = [:]
        var i = 0
        try routed.batch.forEach { kind, key, value in
            let owner = Int(routing.owners[slots[i]])
            i += 1
            if kind == .value {
                parts[owner, default: WriteBatch()].put(key, value)
            } else {
                parts[owner, default: WriteBatch()].delete(Array(key))
            }
        }
        for owner in parts.keys.sorted() {
            try routing.shards[owner].db.commit(parts[owner]!, durability: durability)
        }
    }
}
