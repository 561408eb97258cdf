import Dispatch
import KVProtocol
import KVReplication
import KVCluster
import KVStore
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A reply handed from the event loop to the waiting thread.
private final class ReplyBox: Sendable {
    let value = Mutex<RESPValue?>(nil)
}

/// Runs commands against a server state over a store on the in-memory file system, without
/// a network: the command-layer fuzz target and tests drive the executor through it.
///
/// A command whose reply comes later (WAIT, the replication long poll) is waited for at most
/// `deferredWaitMillis`; one that has not answered by then is abandoned (its waiter is
/// cancelled as when the client disconnects) and reported as `nil`.
package final class CommandHarness {
    package let server: ServerState
    package let session: ClientSession
    package let store: ShardedStore
    private let deferredWaitMillis: Int64

    /// A fresh harness: `shards` shards on `fileSystem` (a new in-memory one, from the
    /// caller), a clock frozen at a fixed time, small write buffers (so flushes and
    /// compactions happen).
    /// `cluster`: this node's id, host and port in cluster mode (nil: standalone); tests
    /// install layouts through ``server``'s cluster state.
    /// `durability`: the engine's (`.always` for tests that simulate a crash and expect every
    /// acknowledged write). An existing store on `fileSystem` is opened as it is.
    package init(fileSystem: any FileSystem, shards: Int = 2, requirePass: String? = nil, deferredWaitMillis: Int64 = 50,
                 cluster: (id: String, host: String, port: Int)? = nil, durability: Durability? = nil) throws {
        var o = Options()
        o.fileSystem = fileSystem
        if let durability { o.durability = durability }
        o.writeBufferSize = 64 << 10
        let backlog = ReplicationBacklog()
        store = try ShardedStore.open(at: "/db", shards: shards, options: o, commitFeed: backlog)
        store.freezeClock(at: 1_700_000_000_000)
        var cfg = ServerConfig()
        cfg.dir = "/db"
        cfg.requirePass = requirePass
        var logger = Logger(label: "command-harness")
        logger.logLevel = .critical
        server = ServerState(store: store, backlog: backlog, config: cfg, logger: logger,
                             cluster: cluster.map { ClusterState(myself: ClusterNode(id: $0.id, host: $0.host, port: $0.port)) })
        session = server.register(remote: "127.0.0.1:1", local: "127.0.0.1:2")!
        self.deferredWaitMillis = deferredWaitMillis
    }

    /// The deferred reply, waited for at most `deferredWaitMillis`; then the request is
    /// abandoned as by a client that went away (its waiter answered and dropped).
    private func wait(for future: EventLoopFuture<RESPValue>) -> RESPValue? {
        let done = DispatchSemaphore(value: 0)
        let result = ReplyBox()
        future.whenComplete { r in
            if case .success(let v) = r { result.value.withLock { $0 = v } }
            done.signal()
        }
        if done.wait(timeout: .now() + .milliseconds(Int(deferredWaitMillis))) == .success {
            return result.value.withLock { $0 }
        }
        server.replication.cancelWaits(session: session.id)
        server.blocked.cancel(session: session.id)
        // Long polls answer on their own timer (100 ms); every parked reply ends in bounded time.
        _ = done.wait(timeout: .now() + .seconds(2))
        return nil
    }

    deinit {
        server.unregister(session)
        try? store.close()
    }

    /// Runs one request and returns its reply (nil: no reply, or a deferred reply that did
    /// not come in time) and whether the connection would close after it.
    ///
    /// `REPLICAOF`/`SLAVEOF` with a host would start a link that connects out; the harness
    /// never runs that form (it returns nil), only `REPLICAOF NO ONE`.
    /// Runs one request and returns every reply it makes (SUBSCRIBE confirms each channel
    /// with its own); a deferred reply is not waited for.
    package func runAll(_ arguments: [[UInt8]]) -> [RESPValue] {
        let (reply, action) = Commands.execute(arguments, server: server, session: session)
        var out: [RESPValue] = reply.map { [$0] } ?? []
        if case .more(let extra) = action { out += extra }
        return out
    }

    package func run(_ arguments: [[UInt8]]) -> (reply: RESPValue?, closes: Bool) {
        if let first = arguments.first, arguments.count == 3 {
            let name = RedisText.lower(first)
            if (name == "replicaof" || name == "slaveof")
                && !(RedisText.eq(arguments[1], "no") && RedisText.eq(arguments[2], "one")) {
                return (nil, false)
            }
        }
        let (reply, action) = Commands.execute(arguments, server: server, session: session)
        switch action {
        case .none, .more:
            return (reply, false)
        case .close, .shutdown:
            return (reply, true)
        case .later(let future):
            return (wait(for: future), false)
        }
    }
}
