import Dispatch
import KVProtocol
import KVReplication
import KVStore
import Logging
import Synchronization

/// The target side of a slot move: a thread that copies the rows of some slots from the
/// source leader into this node's store and keeps them current until the switch
/// (DESIGN.md "Slot moves").
///
/// 1. Deletes any rows of the slots this node holds (left by an earlier, cancelled move).
/// 2. Reads the source's layout (`SHALE.REPLLAYOUT`, which also starts its backlog).
/// 3. For each source shard owning some of the slots, pages through a snapshot of that shard
///    restricted to the slots' rows (`SHALE.REPLSNAP … slots`), writing each row here
///    through the store's write path (so this node's indexes, expiry entries and followers
///    see them), and notes the snapshot's sequence.
/// 4. Pulls the source's write groups after those sequences (`SHALE.SLOTPULL`, which does not
///    count as a follower) and applies their row changes of the slots, until stopped.
///
/// A source that no longer holds a position in its backlog, or changes its history, ends the
/// import with an error (the move is then cancelled and tried again).
final class SlotImporter: Sendable {
    /// Where the import stands.
    enum Phase: String, Sendable {
        case starting, purging, snapshot, streaming, stopped, failed
    }

    /// What `SHALE.SLOTMOVE STATUS` reports.
    struct Progress: Sendable {
        var phase = Phase.starting
        /// Rows written here (snapshot rows and streamed changes).
        var keys = 0
        /// The source's sequence applied through, by source shard (0: a shard holding none
        /// of the slots).
        var applied: [UInt64] = []
        /// The source shards holding some of the slots.
        var relevant: [Bool] = []
        var error = ""
    }

    let server: ServerState
    let host: String
    let port: Int
    let slots: [Bool]
    /// The slots as `first-last` ranges (sent to the source).
    let rangeArguments: [String]
    let id = "import-" + ReplicationState.newID()
    private let state = Mutex(Progress())
    private let stopped = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    init(server: ServerState, host: String, port: Int, slots: [Bool]) {
        self.server = server
        self.host = host
        self.port = port
        self.slots = slots
        var ranges: [String] = []
        var i = 0
        while i < slots.count {
            guard slots[i] else { i += 1; continue }
            var j = i
            while j + 1 < slots.count && slots[j + 1] { j += 1 }
            ranges.append("\(i)-\(j)")
            i = j + 1
        }
        rangeArguments = ranges
    }

    var progress: Progress { state.withLock { $0 } }

    func start() {
        startThread(name: "shale-slot-import") { [self] in
            do {
                try run()
            } catch {
                if !stopped.load(ordering: .acquiring) {
                    server.logger.warning("slot import failed", metadata: ["source": "\(host):\(port)", "error": "\(error)"])
                    state.withLock { $0.phase = .failed; $0.error = "\(error)" }
                }
            }
            state.withLock { if $0.phase != .failed { $0.phase = .stopped } }
            finished.signal()
        }
    }

    /// Stops the thread and waits (at most 12 s: a blocked read times out in 10 s).
    func stop() {
        if stopped.exchange(true, ordering: .acquiringAndReleasing) { return }
        _ = finished.wait(timeout: .now() + .seconds(12))
    }

    /// Stops the thread without waiting for it (FINISH): a pull it has out (up to 100 ms) is
    /// answered, then nothing more is applied. What it may still be applying is a group the
    /// caller knows holds no row of the slots (it is past the source's paused sequences).
    func requestStop() {
        stopped.store(true, ordering: .releasing)
    }

    private var isStopped: Bool { stopped.load(ordering: .acquiring) }

    private func run() throws {
        let store = server.store
        state.withLock { $0.phase = .purging }
        _ = try SlotRows.deleteRows(of: slots, in: store)
        let conn = try BlockingRESPClient(host: host, port: port, timeoutMillis: 10_000)
        if let pass = server.config.masterAuth {
            if case .simpleError(let e) = try conn.call("AUTH", pass) { throw ReplicationError("AUTH at \(host):\(port): \(e)") }
        }
        guard case .array(let parts?) = try conn.call("SHALE.REPLLAYOUT"), parts.count == 4,
              case .bulkString(let ridBuf?) = parts[0], case .integer(let generation) = parts[1],
              case .integer(let count) = parts[2], case .bulkString(let ownersBuf?) = parts[3]
        else { throw ReplicationError("\(host):\(port) does not answer SHALE.REPLLAYOUT") }
        let replid = String(buffer: ridBuf)
        let ownerBytes = Array(ownersBuf.readableBytesView)
        let shards = Int(count)
        var relevant = [Bool](repeating: false, count: shards)
        for slot in 0..<min(slots.count, ownerBytes.count / 2) where slots[slot] {
            let owner = Int(ownerBytes[2 * slot]) | Int(ownerBytes[2 * slot + 1]) << 8
            if owner < shards { relevant[owner] = true }
        }
        var applied = [UInt64](repeating: 0, count: shards)
        state.withLock { [relevant] in $0.phase = .snapshot; $0.applied = applied; $0.relevant = relevant }
        for shard in 0..<shards where relevant[shard] {
            var restart = "1"
            var end: UInt64?
            while end == nil {
                if isStopped { return }
                let reply = try conn.call([Array("SHALE.REPLSNAP".utf8), Array(replid.utf8), Array(id.utf8), Array(String(shard).utf8),
                                           Array(restart.utf8)] + rangeArguments.map { Array($0.utf8) })
                restart = "0"
                if case .simpleError(let e) = reply { throw ReplicationError("snapshot of shard \(shard) at \(host):\(port) refused: \(e)") }
                guard case .bulkString(let buf?) = reply else { throw ReplicationError("unexpected reply to SHALE.REPLSNAP") }
                for frame in try ReplicationFrame.decodeAll(Array(buf.readableBytesView)) {
                    switch frame {
                    case .snapshotChunk(let s, let records) where s == shard:
                        try applySnapshot(records, store: store)
                    case .snapshotEnd(let s, let sequence) where s == shard:
                        end = sequence
                    default:
                        throw ReplicationError("unexpected frame in the snapshot of shard \(shard)")
                    }
                }
            }
            applied[shard] = end!
            let now = applied
            state.withLock { $0.applied = now }
        }
        // The hashes' index entries (their rows came before their elements).
        try SlotRows(store: store, slots: slots).finishSnapshot()
        state.withLock { $0.phase = .streaming }
        while !isStopped {
            var args: [[UInt8]] = [Array("SHALE.SLOTPULL".utf8), Array(replid.utf8), Array(String(generation).utf8)]
            for shard in 0..<shards { args.append(Array(String(relevant[shard] ? applied[shard] + 1 : 0).utf8)) }
            let reply = try conn.call(args)
            if isStopped { return }
            if case .simpleError(let e) = reply { throw ReplicationError("\(host):\(port) refused the pull: \(e)") }
            guard case .bulkString(let buf?) = reply else { throw ReplicationError("unexpected reply to SHALE.SLOTPULL") }
            for frame in try ReplicationFrame.decodeAll(Array(buf.readableBytesView)) {
                switch frame {
                case .group(let shard, let first, let last, let batch):
                    guard shard < shards, relevant[shard], first == applied[shard] + 1 else {
                        throw ReplicationError("out-of-order group \(first)...\(last) of shard \(shard) from \(host):\(port)")
                    }
                    if isStopped { return }
                    try applyGroup(batch, store: store)
                    applied[shard] = last
                case .resync(let shard):
                    throw ReplicationError("the backlog of \(host):\(port) no longer holds shard \(shard)'s position \(applied[shard] + 1)")
                default:
                    throw ReplicationError("unexpected snapshot frame in a pull reply")
                }
            }
            let now = applied
            state.withLock { $0.applied = now }
        }
    }

    /// Writes snapshot rows (engine key, row envelope) of the slots.
    private func applySnapshot(_ records: [(key: [UInt8], value: [UInt8])], store: ShardedStore) throws {
        var rows = SlotRows(store: store, slots: slots)
        let n = try rows.applySnapshot(records)
        state.withLock { $0.keys += n }
    }

    /// Applies the row changes of the slots in one write group of the source.
    private func applyGroup(_ batch: [UInt8], store: ShardedStore) throws {
        var rows = SlotRows(store: store, slots: slots)
        let n = try rows.applyGroup(batch, from: "\(host):\(port)")
        state.withLock { $0.keys += n }
    }
}
