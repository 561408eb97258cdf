import KVStore
import NIOCore
import Synchronization

/// One connected client, as commands and `CLIENT LIST` see it. What each request touches
/// (protocol, authentication, last command and interaction, waiting output) is atomic; what
/// only `CLIENT SETNAME`/`SETINFO` change sits behind `info`.
public final class ClientSession: Sendable {
    /// The client id (`CLIENT ID`), unique for the server's life.
    public let id: Int64
    let remoteAddress: String
    let localAddress: String
    let createdAt: Int64
    /// The connection, for closing it from outside its handler (idle timeout).
    let channel: (any Channel)?

    /// What `CLIENT SETNAME`/`SETINFO` set (rarely changed, so behind a lock).
    struct Info {
        var name: [UInt8]?
        var libName: [UInt8]?
        var libVersion: [UInt8]?
    }
    let info: Mutex<Info>

    // What every request reads or writes is atomic, so a request takes no lock for it.
    private let protocolState = Atomic<Int>(2)
    private let authState: Atomic<Bool>
    /// Monotonic milliseconds of the last request read or reply written.
    let lastInteraction: Atomic<Int64>
    /// A batch of its requests is running (the idle timeout does not apply meanwhile).
    let executing = Atomic<Bool>(false)
    /// Reply bytes handed to the connection and not yet taken by the socket.
    let outputBytes = Atomic<Int>(0)
    /// ``CommandSpec/index`` of the last command run; -1 before the first, or after an
    /// unknown one (`cmd=NULL` in `CLIENT LIST`, as Redis says).
    let lastCommandIndex = Atomic<Int>(-1)

    /// The channels and patterns the client is subscribed to (``PubSubHub``).
    struct Subscriptions {
        var channels: Set<[UInt8]> = []
        var patterns: Set<[UInt8]> = []
        var count: Int { channels.count + patterns.count }
    }
    let pubsub = Mutex(Subscriptions())
    /// `pubsub`'s count, read by every request (a RESP2 client with subscriptions may only
    /// run the pub/sub commands, PING, QUIT and RESET).
    let subscriptionCount = Atomic<Int>(0)
    /// The connection is a follower pulling replication (it sent SHALE.REPLPULL): Redis's
    /// `replica` client type.
    let isReplica = Atomic<Bool>(false)
    /// `CLIENT NO-EVICT` (recorded and shown; this server never evicts clients).
    let noEvict = Atomic<Bool>(false)
    /// `CLIENT REPLY`: 0 on, 1 off, 2 skip the next reply.
    let replyMode = Atomic<Int>(0)
    /// Client-side caching (`CLIENT TRACKING`).
    let tracking = ClientTracking()
    /// MULTI/EXEC and WATCH (``ClientTransaction``).
    let transaction = Mutex(ClientTransaction())
    /// Between MULTI and EXEC/DISCARD: requests are queued (read by every request).
    package let inMulti = Atomic<Bool>(false)
    /// Cluster mode: the client sent READONLY, so a follower serves its reads of the slots it
    /// copies instead of redirecting them to the leader.
    let clusterReadOnly = Atomic<Bool>(false)
    /// Cluster mode: the client sent ASKING, so its next command may use a slot this node is
    /// importing (Redis's one-shot flag, cleared by the next command).
    let asking = Atomic<Bool>(false)
    /// EXEC is running the client's queue (WAIT then answers at once, as Redis does).
    let runningExec = Atomic<Bool>(false)
    /// Hands a published message to the connection (set by its handler when it starts).
    private let delivery = Mutex<(@Sendable (PubSubMessage) -> Void)?>(nil)

    init(id: Int64, remoteAddress: String, localAddress: String, authenticated: Bool, channel: (any Channel)? = nil) {
        self.id = id
        self.remoteAddress = remoteAddress
        self.localAddress = localAddress
        self.channel = channel
        self.createdAt = monotonicMillis()
        self.info = Mutex(Info())
        self.authState = Atomic(authenticated)
        self.lastInteraction = Atomic(monotonicMillis())
    }

    /// The reply protocol, 2 or 3 (HELLO).
    package var protocolVersion: Int {
        get { protocolState.load(ordering: .relaxed) }
        set { protocolState.store(newValue, ordering: .relaxed) }
    }

    /// Whether the client has authenticated (or needs not).
    package var authenticated: Bool {
        get { authState.load(ordering: .relaxed) }
        set { authState.store(newValue, ordering: .relaxed) }
    }

    /// Marks a request read or a reply written now (the coarse clock: idle time is reported
    /// and compared in seconds).
    @inline(__always)
    func touch(_ millis: Int64 = coarseMonotonicMillis()) {
        lastInteraction.store(millis, ordering: .relaxed)
    }

    /// Redis's client type (`CLIENT LIST TYPE`, `CLIENT KILL TYPE`): `replica` for a
    /// follower's pull connection, `pubsub` while subscribed, else `normal`. (No inbound
    /// connection is ever of type `master` here: a follower's link to its leader is outbound.)
    var clientType: String {
        if isReplica.load(ordering: .relaxed) { return "replica" }
        return isSubscribed ? "pubsub" : "normal"
    }

    /// Whether the client has any subscription (Redis's `CLIENT_PUBSUB` flag).
    package var isSubscribed: Bool { subscriptionCount.load(ordering: .relaxed) > 0 }

    /// Installs the connection's delivery of published messages.
    func setDelivery(_ deliver: (@Sendable (PubSubMessage) -> Void)?) {
        delivery.withLock { $0 = deliver }
    }

    /// Hands `message` to the connection; false when the client has no connection to take it.
    func deliver(_ message: PubSubMessage) -> Bool {
        guard let deliver = delivery.withLock({ $0 }) else { return false }
        deliver(message)
        return true
    }

    /// The last command's name as `CLIENT LIST` shows it.
    var lastCommand: String {
        let i = lastCommandIndex.load(ordering: .relaxed)
        return i >= 0 && i < Commands.specs.count ? Commands.specs[i].name : "NULL"
    }

    /// The `CLIENT LIST` / `CLIENT INFO` line of this client.
    func describe() -> String {
        let now = monotonicMillis()
        let idle = (now - lastInteraction.load(ordering: .relaxed)) / 1000
        let omem = outputBytes.load(ordering: .relaxed)
        let cmd = lastCommand
        let resp = protocolVersion
        let (sub, psub) = pubsub.withLock { ($0.channels.count, $0.patterns.count) }
        var flags = ""
        if isReplica.load(ordering: .relaxed) { flags += "S" }
        if sub + psub > 0 { flags += "P" }
        let (queued, dirty) = transaction.withLock { t in (inMulti.load(ordering: .relaxed) ? t.queued.count : -1, t.failed) }
        if queued >= 0 { flags += "x" }
        let mode = tracking.mode
        if mode.contains(.on) { flags += "t" }
        if mode.contains(.brokenRedirect) { flags += "R" }
        if mode.contains(.bcast) { flags += "B" }
        if dirty && queued >= 0 { flags += "d" }
        let redir = mode.contains(.on) ? tracking.redirect : -1
        if noEvict.load(ordering: .relaxed) { flags += "e" }
        if flags.isEmpty { flags = "N" }
        return info.withLock { i in
            let name = i.name.map { String(decoding: $0, as: UTF8.self) } ?? ""
            let lib = i.libName.map { String(decoding: $0, as: UTF8.self) } ?? ""
            let ver = i.libVersion.map { String(decoding: $0, as: UTF8.self) } ?? ""
            return "id=\(id) addr=\(remoteAddress) laddr=\(localAddress) fd=-1 name=\(name) "
                + "age=\((now - createdAt) / 1000) idle=\(idle) flags=\(flags) db=0 sub=\(sub) psub=\(psub) ssub=0 "
                + "multi=\(queued) qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=\(omem) tot-mem=\(omem) "
                + "events=r cmd=\(cmd) user=default redir=\(redir) resp=\(resp) lib-name=\(lib) lib-ver=\(ver)"
        }
    }
}
