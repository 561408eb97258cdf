import Dispatch
import KVProtocol
import KVReplication
import KVStore
import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A blocking RESP client over a POSIX socket, for the follower's link to its leader (one
/// dedicated thread, so blocking is fine there).
final class BlockingRESPClient {
    private let fd: Int32
    private var decoder = RESPValueDecoder()
    private var buffer = ByteBufferAllocator().buffer(capacity: 64 << 10)
    private var outbound = ByteBufferAllocator().buffer(capacity: 1 << 10)

    init(host: String, port: Int, timeoutMillis: Int) throws {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let info = result else {
            throw ReplicationError("cannot resolve \(host):\(port)")
        }
        defer { freeaddrinfo(result) }
        let s = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
        guard s >= 0 else { throw ReplicationError("socket: errno \(errno)") }
        var tv = timeval(tv_sec: timeoutMillis / 1000, tv_usec: Int((timeoutMillis % 1000) * 1000))
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(s, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        guard connect(s, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            let e = errno
            close(s)
            throw ReplicationError("cannot connect to \(host):\(port): errno \(e)")
        }
        fd = s
    }

    deinit { close(fd) }

    /// Sends a command (encoded by ``RESPEncoder``) and reads its reply (decoded by
    /// ``RESPValueDecoder``); error replies are returned as values.
    func call(_ args: [[UInt8]]) throws -> RESPValue {
        outbound.clear()
        RESPEncoder().writeCommand(args, into: &outbound)
        try outbound.withUnsafeReadableBytes { out in
            var sent = 0
            while sent < out.count {
                let n = send(fd, out.baseAddress! + sent, out.count - sent, Int32(MSG_NOSIGNAL))
                guard n > 0 else { throw ReplicationError("send to leader failed: errno \(errno)") }
                sent += n
            }
        }
        while true {
            if let v = try decoder.decode(buffer: &buffer) {
                if buffer.readableBytes == 0 { buffer.clear() }
                return v
            }
            buffer.reserveCapacity(minimumWritableBytes: 256 << 10)
            let n = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 256 << 10) { recv(fd, $0.baseAddress!, $0.count, 0) }
            guard n > 0 else { throw ReplicationError(n == 0 ? "leader closed the connection" : "read from leader failed: errno \(errno)") }
        }
    }

    func call(_ args: String...) throws -> RESPValue {
        try call(args.map { Array($0.utf8) })
    }
}

/// The follower side: a thread that keeps this server's store equal to the leader's.
///
/// Loop: connect, AUTH (`--masterauth`), read the leader's layout, then pull. A shard whose
/// recorded position belongs to another replication history, or that the leader's backlog
/// no longer covers, is resynchronized from a snapshot (full sync: its slots' records are
/// deleted, the snapshot loaded, the position recorded); otherwise the groups after the
/// recorded position are applied in order, each with its new position in the same batch
/// (partial sync). Any failure drops the link and retries with backoff (0.1 s doubling to
/// 5 s).
final class ReplicationClient: Sendable {
    let server: ServerState
    let host: String
    let port: Int
    let id = ReplicationState.newID()
    private let stopped = Atomic<Bool>(false)
    /// Signalled once by ``stop()``: ends a backoff wait early.
    private let stopRequested = DispatchSemaphore(value: 0)
    /// Signalled once when the link's thread has ended.
    private let finished = DispatchSemaphore(value: 0)
    private let logger: Logger

    init(server: ServerState, host: String, port: Int) {
        self.server = server
        self.host = host
        self.port = port
        self.logger = server.logger
    }

    func start() {
        startThread(name: "shale-repl-link") { [self] in
            run()
            finished.signal()
        }
    }

    /// Stops the link and waits (at most 5 s: a blocked socket read times out in 10 s) for
    /// its thread to end. Only the first call stops and waits.
    func stop() {
        if stopped.exchange(true, ordering: .acquiringAndReleasing) { return }
        stopRequested.signal()
        _ = finished.wait(timeout: .now() + .seconds(5))
    }

    private var isStopped: Bool { stopped.load(ordering: .acquiring) }

    private func setLink(_ body: (inout ReplicationState.Link) -> Void) {
        server.replication.link.withLock { l in
            if l != nil { body(&l!) }
        }
    }

    private func run() {
        var backoff: UInt32 = 100_000
        while !isStopped {
            do {
                try session()
            } catch {
                setLink { l in
                    if l.up { l.downSince = monotonicMillis() }
                    l.up = false
                    l.syncInProgress = false
                    l.lastError = "\(error)"
                }
                if isStopped { break }
                logger.warning("replication link down", metadata: ["leader": "\(host):\(port)", "error": "\(error)"])
                if stopRequested.wait(timeout: .now() + .microseconds(Int(backoff))) == .success { break }
                backoff = min(backoff * 2, 5_000_000)
                continue
            }
            backoff = 100_000
        }
    }

    private func expectOK(_ v: RESPValue, _ what: String) throws {
        if case .simpleError(let e) = v { throw ReplicationError("\(what): \(e)") }
    }

    /// One connection's life; returns only when stopped, throws on any failure.
    private func session() throws {
        let conn = try BlockingRESPClient(host: host, port: port, timeoutMillis: 10_000)
        if let pass = server.config.masterAuth {
            try expectOK(try conn.call("AUTH", pass), "AUTH")
        }
        guard case .array(let parts?) = try conn.call("SHALE.REPLLAYOUT"), parts.count == 4,
              case .bulkString(let ridBuf?) = parts[0], case .integer(let generation) = parts[1],
              case .integer(let count) = parts[2], case .bulkString(let ownersBuf?) = parts[3]
        else { throw ReplicationError("the leader does not answer SHALE.REPLLAYOUT") }
        // Positions are kept per history and layout: a reshard on the leader changes what its
        // shard ids hold, so it counts as a new history here.
        let replid = String(buffer: ridBuf) + ":" + String(generation)
        let leaderReplid = String(buffer: ridBuf)
        let ownerBytes = Array(ownersBuf.readableBytesView)
        let owners = stride(from: 0, to: ownerBytes.count - 1, by: 2).map { UInt16(ownerBytes[$0]) | UInt16(ownerBytes[$0 + 1]) << 8 }
        let shards = Int(count)
        let replica = server.replica
        setLink { $0.up = true; $0.lastIO = monotonicMillis(); $0.lastError = "" }
        logger.info("replication link up", metadata: ["leader": "\(host):\(port)", "replid": "\(replid)", "shards": "\(shards)"])
        var applied = [UInt64](repeating: 0, count: shards)
        var resyncs = 0
        for shard in 0..<shards {
            if let pos = try replica.position(leaderShard: shard), pos.replid == replid {
                applied[shard] = pos.sequence
            } else {
                try fullSync(conn, shard: shard, replid: replid, leaderReplid: leaderReplid, owners: owners, applied: &applied)
                resyncs += 1
            }
        }
        if resyncs == 0 { server.replication.syncPartialOK.wrappingAdd(1, ordering: .relaxed) }
        let grouping = TransactionGrouping()
        let myPort = String(server.boundPort.load(ordering: .relaxed))
        while !isStopped {
            var args: [[UInt8]] = [Array("SHALE.REPLPULL".utf8), Array(leaderReplid.utf8), Array(id.utf8), Array(myPort.utf8),
                                   Array(String(generation).utf8)]
            for a in applied { args.append(Array(String(a + 1).utf8)) }
            let reply = try conn.call(args)
            // Stopped (promoted) while the pull was out: apply nothing more.
            if isStopped { break }
            if case .simpleError(let e) = reply {
                // A new history or layout: start over (full sync of what no longer matches).
                throw ReplicationError("leader refused the pull: \(e)")
            }
            guard case .bulkString(let buf?) = reply else { throw ReplicationError("unexpected reply to SHALE.REPLPULL") }
            let frames = try ReplicationFrame.decodeAll(Array(buf.readableBytesView))
            setLink { $0.lastIO = monotonicMillis() }
            // Groups are applied by the grouping: consecutive groups of a shard as one batch
            // (up to about 1 MB), the parts of a leader transaction spanning shards together.
            var pending: [PulledGroup] = []
            var expected = applied
            func flush() throws {
                if try grouping.apply(pending, applier: replica, replid: replid, leaderOwners: owners, applied: &applied) > 0 {
                    setLink { $0.lastGroupMillis = monotonicMillis() }
                }
                pending = []
            }
            for frame in frames {
                switch frame {
                case .group(let shard, let first, let last, let batch):
                    guard shard < shards, first == expected[shard] + 1 else {
                        throw ReplicationError("out-of-order group \(first)...\(last) for shard \(shard) (applied \(shard < shards ? expected[shard] : 0))")
                    }
                    pending.append(PulledGroup(shard: shard, first: first, last: last, batch: batch))
                    expected[shard] = last
                case .resync(let shard):
                    try flush()
                    server.replication.syncPartialErr.wrappingAdd(1, ordering: .relaxed)
                    try fullSync(conn, shard: shard, replid: replid, leaderReplid: leaderReplid, owners: owners, applied: &applied)
                    expected = applied
                default:
                    throw ReplicationError("unexpected snapshot frame in a pull reply")
                }
            }
            try flush()
            let current = applied
            setLink { $0.applied = current }
        }
    }

    private func fullSync(
        _ conn: BlockingRESPClient, shard: Int, replid: String, leaderReplid: String, owners: [UInt16], applied: inout [UInt64]
    ) throws {
        logger.info("full sync of shard", metadata: ["shard": "\(shard)", "leader": "\(host):\(port)"])
        setLink { $0.syncInProgress = true }
        server.replication.syncFull.wrappingAdd(1, ordering: .relaxed)
        let replica = server.replica
        try replica.beginFullSync(leaderShard: shard, leaderOwners: owners)
        var restart = "1"
        var records = 0
        while !isStopped {
            let reply = try conn.call("SHALE.REPLSNAP", leaderReplid, id, String(shard), restart)
            restart = "0"
            if case .simpleError(let e) = reply { throw ReplicationError("snapshot of shard \(shard) refused: \(e)") }
            guard case .bulkString(let buf?) = reply else { throw ReplicationError("unexpected reply to SHALE.REPLSNAP") }
            setLink { $0.lastIO = monotonicMillis() }
            var end: UInt64?
            for frame in try ReplicationFrame.decodeAll(Array(buf.readableBytesView)) {
                switch frame {
                case .snapshotChunk(let s, let recs) where s == shard:
                    try replica.applySnapshotRecords(leaderShard: shard, records: recs, leaderOwners: owners)
                    records += recs.count
                case .snapshotEnd(let s, let seq) where s == shard:
                    end = seq
                default:
                    throw ReplicationError("unexpected frame in the snapshot of shard \(shard)")
                }
            }
            if let end {
                try replica.finishFullSync(leaderShard: shard, replid: replid, sequence: end)
                applied[shard] = end
                setLink { $0.syncInProgress = false }
                logger.info("full sync of shard done", metadata: ["shard": "\(shard)", "records": "\(records)", "sequence": "\(end)"])
                return
            }
        }
        throw ReplicationError("stopped")
    }
}
