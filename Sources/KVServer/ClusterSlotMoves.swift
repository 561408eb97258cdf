import KVCluster
import KVReplication
import KVStore
import NIOCore
import Synchronization

/// What this node is doing in a slot move (`kvcluster move`, DESIGN.md "Slot moves"), and the
/// checks requests pass while one runs.
///
/// **Source** (the shard's leader giving slots away): it learns of the move at the switch.
/// `SHALE.SLOTMOVE PAUSE` marks the slots *outgoing*: writes to them wait (a single-key write
/// parks its connection, as CLIENT PAUSE does; a multi-key write gets `-TRYAGAIN`), reads go
/// on. `HANDOFF` — once the target holds every write — makes every request for the slots
/// `-ASK slot target` and releases the parked writes into that answer. When the new layout
/// arrives the slots are no longer this node's: requests get `-MOVED` and the rows of the
/// slots are deleted here.
///
/// **Target** (the leader receiving them): `SHALE.SLOTMOVE IMPORT` marks the slots
/// *incoming* and starts a ``SlotImporter``; a client that sent ASKING may use them (the
/// requests the source sends here with `-ASK`); when the new layout makes them this node's,
/// the mark goes.
///
/// **No write slips past the pause.** Every keyed request (and EXEC) counts itself in flight
/// (``enter()``) before its routing check and out after it ran. PAUSE publishes the outgoing
/// slots, flips the counters' epoch and answers only once the old epoch's count is 0: a
/// request either saw the pause in its check, or was counted and has committed before the
/// source reports its sequence numbers. (Sequentially consistent atomics: the publication
/// precedes the count's read, the count's increment precedes the check.)
final class SlotMoves: Sendable {
    private struct Outgoing {
        var slots: [Bool]
        /// The target's `host:port` (named in `-ASK`).
        var target: String
        var handedOff = false
        /// Connections waiting for the switch to end.
        var parked: [@Sendable () -> Void] = []
        /// Ends an abandoned pause (the move is cancelled).
        var timer: Scheduled<Void>?
    }
    private struct Incoming {
        var slots: [Bool]
        var importer: SlotImporter
    }
    private struct State {
        var outgoing: Outgoing?
        var incoming: Incoming?
        /// Slot purges running (rows of slots that left, or of a cancelled import).
        var purging = 0
        /// Rows deleted by purges since start.
        var purged = 0
        var lastPurgeError = ""
        /// PAUSE's answer, run when the requests counted before the pause have finished.
        var drainWaiter: (epoch: Int, done: @Sendable () -> Void)?
    }
    private let state = Mutex(State())
    /// Some move state is set (the per-request check loads only this).
    private let active = Atomic<Bool>(false)
    /// Outgoing slots' writes wait (set from PAUSE to HANDOFF or cancel).
    private let pausing = Atomic<Bool>(false)
    private let epoch = Atomic<Int>(0)
    private let inflight0 = Atomic<Int>(0)
    private let inflight1 = Atomic<Int>(0)
    /// A drain waiter is registered (``leave(_:)`` loads only this).
    private let drainWaiting = Atomic<Bool>(false)

    static let tryAgain = "TRYAGAIN Multiple keys request during rehashing of slot"
    static let tryAgainSingle = "TRYAGAIN Slot is being moved; try again"

    /// Counts a request in flight; pass the result to ``leave(_:)`` after it ran.
    @inline(__always)
    func enter() -> Int {
        let e = epoch.load(ordering: .sequentiallyConsistent) & 1
        if e == 0 { inflight0.add(1, ordering: .sequentiallyConsistent) } else { inflight1.add(1, ordering: .sequentiallyConsistent) }
        return e
    }

    /// Ends what ``enter()`` began; the last request of a drained epoch runs its waiter.
    @inline(__always)
    func leave(_ e: Int) {
        let left = e == 0 ? inflight0.subtract(1, ordering: .sequentiallyConsistent).newValue
            : inflight1.subtract(1, ordering: .sequentiallyConsistent).newValue
        if left == 0 && drainWaiting.load(ordering: .sequentiallyConsistent) { runDrainWaiter(e) }
    }

    /// Runs `done` once the requests of epoch `e` have all finished: at once when they have,
    /// else from the ``leave(_:)`` of the last one. No thread waits, no timer polls.
    func whenDrained(_ e: Int, _ done: @escaping @Sendable () -> Void) {
        state.withLock { $0.drainWaiter = (e, done) }
        drainWaiting.store(true, ordering: .sequentiallyConsistent)
        // A leave that reached 0 before the waiter was there did not see it.
        if drained(e) { runDrainWaiter(e) }
    }

    /// Drops a waiter of ``whenDrained(_:_:)`` that was not run; returns whether there was one.
    func cancelDrainWaiter() -> Bool {
        state.withLock { s in
            defer { s.drainWaiter = nil; drainWaiting.store(false, ordering: .sequentiallyConsistent) }
            return s.drainWaiter != nil
        }
    }

    private func runDrainWaiter(_ e: Int) {
        let done = state.withLock { s -> (@Sendable () -> Void)? in
            guard let w = s.drainWaiter, w.epoch == e, drained(e) else { return nil }
            s.drainWaiter = nil
            drainWaiting.store(false, ordering: .sequentiallyConsistent)
            return w.done
        }
        done?()
    }

    /// How a request for `slot` is served while moves run: nil to route it as usual,
    /// `.success(())` to serve it here (an ASKING client's request for an incoming slot), or
    /// the error that sends it elsewhere (`-ASK`, `-TRYAGAIN`).
    func route(slot: Int, isWrite: Bool, keys: Int, asking: Bool) -> Result<Void, RedirectError>? {
        guard active.load(ordering: .sequentiallyConsistent) else { return nil }
        return state.withLock { s -> Result<Void, RedirectError>? in
            if let o = s.outgoing, o.slots[slot] {
                if o.handedOff { return .failure(RedirectError(text: "ASK \(slot) \(o.target)")) }
                if isWrite { return .failure(RedirectError(text: keys > 1 ? Self.tryAgain : Self.tryAgainSingle)) }
                return nil
            }
            if let i = s.incoming, i.slots[slot], asking { return .success(()) }
            return nil
        }
    }

    /// An error reply that sends a request elsewhere.
    struct RedirectError: Error {
        let text: String
    }

    /// Whether a request must wait for the switch of an outgoing slot: a write whose keys
    /// are all in one outgoing slot, before the handoff.
    func holds(_ args: [[UInt8]], spec: CommandSpec) -> Bool {
        guard pausing.load(ordering: .relaxed), spec.isWrite else { return false }
        let positions = spec.keyPositions(args)
        guard positions.count == 1 else { return false }
        let slot = HashSlot.slot(of: args[positions[0]])
        return state.withLock { s in
            guard let o = s.outgoing, !o.handedOff else { return false }
            return o.slots[slot]
        }
    }

    /// Parks a connection held by ``holds(_:spec:)`` until the switch ends; runs `resume` at
    /// once when it has already ended.
    func park(_ resume: @escaping @Sendable () -> Void) {
        let parked = state.withLock { s -> Bool in
            guard s.outgoing != nil, !(s.outgoing!.handedOff) else { return false }
            s.outgoing!.parked.append(resume)
            return true
        }
        if !parked { resume() }
    }

    /// Connections parked by a switch (INFO's `blocked_clients`).
    var parkedCount: Int { state.withLock { $0.outgoing?.parked.count ?? 0 } }

    private func refreshActive(_ s: State) {
        active.store(s.outgoing != nil || s.incoming != nil, ordering: .sequentiallyConsistent)
        pausing.store(s.outgoing.map { !$0.handedOff } ?? false, ordering: .sequentiallyConsistent)
    }

    // MARK: source

    /// Starts the switch of `slots` to `target` (PAUSE): returns the epoch whose requests must
    /// drain (``drained(_:)``) before the source's sequence numbers cover every write. The
    /// pause cancels itself after `millis` unless handed off by then.
    func pause(slots: [Bool], target: String, millis: Int64, loop: any EventLoop) throws(CommandError) -> Int {
        try state.withLock { (s) throws(CommandError) in
            if s.outgoing != nil { throw CommandError("ERR a slot move is already switching on this node") }
            if let i = s.incoming, zip(i.slots, slots).contains(where: { $0 && $1 }) {
                throw CommandError("ERR these slots are being imported by this node")
            }
            s.outgoing = Outgoing(slots: slots, target: target)
            refreshActive(s)
        }
        let old = epoch.add(1, ordering: .sequentiallyConsistent).oldValue
        let timer = loop.scheduleTask(in: .milliseconds(min(max(millis, 1), 1 << 40))) { [self] () -> Void in
            cancelOutgoing(unlessHandedOff: true)
        }
        let armed = state.withLock { s -> Bool in
            guard s.outgoing != nil else { return false }
            s.outgoing!.timer = timer
            return true
        }
        if !armed { timer.cancel() }
        return old & 1
    }

    /// Whether the requests of epoch `e` (counted before a pause) have all finished.
    func drained(_ e: Int) -> Bool {
        e == 0 ? inflight0.load(ordering: .sequentiallyConsistent) == 0 : inflight1.load(ordering: .sequentiallyConsistent) == 0
    }

    /// HANDOFF: the target holds every write; requests for the slots now get `-ASK`.
    func handOff() throws(CommandError) {
        let parked = try state.withLock { (s) throws(CommandError) -> [@Sendable () -> Void] in
            guard s.outgoing != nil else { throw CommandError("ERR no slot move is switching on this node") }
            s.outgoing!.handedOff = true
            s.outgoing!.timer?.cancel()
            s.outgoing!.timer = nil
            defer { s.outgoing!.parked = [] }
            refreshActive(s)
            return s.outgoing!.parked
        }
        for resume in parked { resume() }
    }

    /// Ends the source's part without a handoff (cancel, or the pause's timer): the slots
    /// serve here again and the parked writes run. Returns whether there was one.
    @discardableResult
    func cancelOutgoing(unlessHandedOff: Bool = false) -> Bool {
        let parked = state.withLock { s -> [@Sendable () -> Void]? in
            guard let o = s.outgoing, !(unlessHandedOff && o.handedOff) else { return nil }
            o.timer?.cancel()
            s.outgoing = nil
            refreshActive(s)
            return o.parked
        }
        for resume in parked ?? [] { resume() }
        return parked != nil
    }

    // MARK: target

    /// IMPORT: marks `slots` incoming and starts `importer`.
    func startImport(slots: [Bool], importer: SlotImporter) throws(CommandError) {
        try state.withLock { (s) throws(CommandError) in
            if s.incoming != nil { throw CommandError("ERR a slot import is already running on this node") }
            // A purge decides what to delete by the layout, not by the import: it would take
            // rows the import brings.
            if s.purging > 0 { throw CommandError("ERR rows of slots that left this node are still being deleted; try again shortly") }
            if let o = s.outgoing, zip(o.slots, slots).contains(where: { $0 && $1 }) {
                throw CommandError("ERR these slots are being moved away from this node")
            }
            s.incoming = Incoming(slots: slots, importer: importer)
            refreshActive(s)
        }
        importer.start()
    }

    /// The running import.
    var importer: SlotImporter? { state.withLock { $0.incoming?.importer } }

    /// Ends the target's part without the layout change: the importer stops and the slots'
    /// rows imported so far are deleted. Returns the slots, or nil when none was running.
    func cancelIncoming() -> [Bool]? {
        let incoming = state.withLock { s -> Incoming? in
            defer { s.incoming = nil; refreshActive(s) }
            return s.incoming
        }
        guard let incoming else { return nil }
        incoming.importer.stop()
        return incoming.slots
    }

    // MARK: both

    /// A new layout arrived in which this node's shard is `mine` (nil: no role): outgoing
    /// slots now served elsewhere are done (their rows are returned for deletion), incoming
    /// slots now served here are done.
    func settle(owners: [Int?], mine: Int?) -> [Bool]? {
        let (parked, purge, importer) = state.withLock { s -> ([@Sendable () -> Void], [Bool]?, SlotImporter?) in
            var parked: [@Sendable () -> Void] = []
            var purge: [Bool]?
            var importer: SlotImporter?
            if let o = s.outgoing, owners.count == o.slots.count,
               o.slots.indices.allSatisfy({ !o.slots[$0] || (owners[$0] != nil && owners[$0] != mine) }) {
                o.timer?.cancel()
                parked = o.parked
                purge = o.slots
                s.outgoing = nil
            }
            if let i = s.incoming, let mine, owners.count == i.slots.count,
               i.slots.indices.allSatisfy({ !i.slots[$0] || owners[$0] == mine }) {
                importer = i.importer
                s.incoming = nil
            }
            refreshActive(s)
            return (parked, purge, importer)
        }
        importer?.stop()
        for resume in parked { resume() }
        return purge
    }

    /// Whether the leftover check at start has been done (``purgeLeftovers(owners:mine:store:)``).
    private let leftoversChecked = Atomic<Bool>(false)

    /// Once per start, when the node first leads a shard: deletes rows of slots the layout
    /// gives to other shards — a purge cut short by a crash, or an import the node was
    /// running when it stopped. Returns whether it started one.
    @discardableResult
    func purgeLeftovers(owners: [Int?], mine: Int, store: ShardedStore) -> Bool {
        guard owners.count == HashSlot.count, !leftoversChecked.exchange(true, ordering: .acquiringAndReleasing) else { return false }
        let others = owners.map { $0 != nil && $0 != mine }
        guard others.contains(true) else { return false }
        purge(others, store: store)
        return true
    }

    /// Deletes, on a thread of its own, this node's rows of `slots` (they left it).
    func purge(_ slots: [Bool], store: ShardedStore) {
        state.withLock { $0.purging += 1 }
        startThread(name: "shale-slot-purge") { [self] in
            var deleted = 0
            var problem = ""
            do {
                deleted = try SlotRows.deleteRows(of: slots, in: store)
            } catch {
                problem = "\(error)"
            }
            state.withLock { s in
                s.purging -= 1
                s.purged += deleted
                if !problem.isEmpty { s.lastPurgeError = problem }
            }
        }
    }

    /// `SHALE.SLOTMOVE STATUS`: `field:value` lines (as INFO).
    func status() -> String {
        let (role, importer, handedOff, purging, purged, purgeError) = state.withLock { s in
            (s.outgoing != nil ? "exporting" : s.incoming != nil ? "importing" : "none", s.incoming?.importer,
             s.outgoing?.handedOff ?? false, s.purging, s.purged, s.lastPurgeError)
        }
        var lines = ["role:\(role)", "handed_off:\(handedOff ? 1 : 0)", "purging:\(purging)", "purged_keys:\(purged)",
                     "purge_error:\(purgeError)"]
        if let p = importer?.progress {
            lines += ["state:\(p.phase.rawValue)", "keys:\(p.keys)",
                      "applied:\(p.applied.indices.map { i in p.relevant.count > i && p.relevant[i] ? String(p.applied[i]) : "-" }.joined(separator: ","))", "error:\(p.error)"]
        } else {
            lines += ["state:none", "keys:0", "applied:", "error:"]
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }
}
