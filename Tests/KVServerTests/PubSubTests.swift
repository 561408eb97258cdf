import KVFileSystem
import KVProtocol
@testable import KVServer
import NIOCore
import Synchronization
import Testing

/// Publish/subscribe through the command executor: confirmations and counts, delivery to
/// channel and pattern subscribers (captured in place of a connection), the RESP2
/// subscribed-mode rule, introspection, and cleanup when a client goes away.
@Suite("Pub/Sub")
struct PubSubTests {
    /// Messages delivered to one session.
    final class Inbox: Sendable {
        let messages = Mutex<[RESPValue]>([])
        var all: [RESPValue] { messages.withLock { $0 } }
    }

    func listen(_ session: ClientSession) -> Inbox {
        let inbox = Inbox()
        session.setDelivery { m in inbox.messages.withLock { $0.append(m.value) } }
        return inbox
    }

    func args(_ a: String...) -> [[UInt8]] { a.map { Array($0.utf8) } }

    func confirm(_ kind: String, _ name: String?, _ count: Int64) -> RESPValue {
        .push([bulk(kind), name.map { bulk($0) } ?? .bulkString(nil), .integer(count)])
    }

    @Test func subscribeConfirmsEveryChannel() throws {
        let h = try CommandHarness(fileSystem: MemoryFileSystem())
        #expect(h.runAll(args("SUBSCRIBE", "a", "b", "a"))
                == [confirm("subscribe", "a", 1), confirm("subscribe", "b", 2), confirm("subscribe", "a", 2)])
        #expect(h.runAll(args("PSUBSCRIBE", "x*")) == [confirm("psubscribe", "x*", 3)])
        #expect(h.runAll(args("UNSUBSCRIBE", "b", "zz")) == [confirm("unsubscribe", "b", 2), confirm("unsubscribe", "zz", 2)])
        #expect(h.runAll(args("PUNSUBSCRIBE")) == [confirm("punsubscribe", "x*", 1)])
        #expect(h.runAll(args("UNSUBSCRIBE")) == [confirm("unsubscribe", "a", 0)])
        #expect(h.runAll(args("UNSUBSCRIBE")) == [confirm("unsubscribe", nil, 0)])
        #expect(h.runAll(args("PUNSUBSCRIBE")) == [confirm("punsubscribe", nil, 0)])
        #expect(!h.session.isSubscribed)
    }

    @Test func publishDeliversToChannelsAndPatterns() throws {
        let h = try CommandHarness(fileSystem: MemoryFileSystem())
        let other = try #require(h.server.register(remote: "127.0.0.1:3", local: "127.0.0.1:2"))
        let publisher = try #require(h.server.register(remote: "127.0.0.1:4", local: "127.0.0.1:2"))
        func publish(_ channel: String, _ message: String) -> RESPValue? {
            Commands.execute(args("PUBLISH", channel, message), server: h.server, session: publisher).0
        }
        let mine = listen(h.session), theirs = listen(other)
        _ = h.runAll(args("SUBSCRIBE", "news"))
        _ = Commands.execute(args("PSUBSCRIBE", "n?ws", "*"), server: h.server, session: other)
        #expect(publish("news", "hi") == .integer(3))
        #expect(mine.all == [.push([bulk("message"), bulk("news"), bulk("hi")])])
        let got = theirs.all
        #expect(got.count == 2)
        #expect(got.contains(.push([bulk("pmessage"), bulk("n?ws"), bulk("news"), bulk("hi")])))
        #expect(got.contains(.push([bulk("pmessage"), bulk("*"), bulk("news"), bulk("hi")])))
        #expect(publish("other", "x") == .integer(1))
        // A client that goes away takes its subscriptions with it.
        h.server.unregister(other)
        #expect(publish("other", "x") == .integer(0))
        #expect(Commands.execute(args("PUBSUB", "NUMPAT"), server: h.server, session: publisher).0 == .integer(0))
    }

    @Test func resp2SubscriberMayOnlyManageSubscriptions() throws {
        let h = try CommandHarness(fileSystem: MemoryFileSystem())
        _ = h.runAll(args("SUBSCRIBE", "c"))
        let refused = "ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
        #expect(h.run(args("GET", "k")).reply == .simpleError(refused))
        #expect(h.run(args("PING")).reply == .array([bulk("pong"), bulk("")]))
        #expect(h.run(args("PING", "x")).reply == .array([bulk("pong"), bulk("x")]))
        // RESP3 has no such rule.
        h.session.protocolVersion = 3
        #expect(h.run(args("SET", "k", "v")).reply == .simpleString("OK"))
        #expect(h.run(args("PING")).reply == .simpleString("PONG"))
        h.session.protocolVersion = 2
        #expect(h.run(args("RESET")).reply == .simpleString("RESET"))
        #expect(!h.session.isSubscribed)
        #expect(h.run(args("GET", "k")).reply == bulk("v"))
    }

    @Test func introspection() throws {
        let h = try CommandHarness(fileSystem: MemoryFileSystem())
        let other = try #require(h.server.register(remote: "127.0.0.1:3", local: "127.0.0.1:2"))
        _ = h.runAll(args("SUBSCRIBE", "a.1", "a.2", "b"))
        _ = Commands.execute(args("SUBSCRIBE", "a.1"), server: h.server, session: other)
        _ = Commands.execute(args("PSUBSCRIBE", "p1", "p2"), server: h.server, session: other)
        let q = try #require(h.server.register(remote: "127.0.0.1:4", local: "127.0.0.1:2"))
        func run(_ a: [[UInt8]]) -> RESPValue? { Commands.execute(a, server: h.server, session: q).0 }
        #expect(run(args("PUBSUB", "NUMSUB", "a.1", "b", "none"))
                == .array([bulk("a.1"), .integer(2), bulk("b"), .integer(1), bulk("none"), .integer(0)]))
        #expect(run(args("PUBSUB", "NUMPAT")) == .integer(2))
        guard case .array(let channels?) = run(args("PUBSUB", "CHANNELS", "a.*")) else {
            Issue.record("PUBSUB CHANNELS did not answer an array")
            return
        }
        #expect(Set(channels.map { "\($0)" }) == Set([bulk("a.1"), bulk("a.2")].map { "\($0)" }))
        #expect(run(args("PUBSUB", "NOPE")) == .simpleError("ERR unknown subcommand 'NOPE'. Try PUBSUB HELP."))
        #expect(h.server.pubsub.channelCount == 3)
        #expect(other.describe().contains(" flags=P db=0 sub=1 psub=2 "))
    }

    @Test func configuresThePubSubOutputLimit() throws {
        var c = ServerConfig()
        try ServerSetting.parseOutputBufferLimits("pubsub 1mb 256kb 5", into: &c)
        #expect(c.pubsubOutputBufferLimit == OutputBufferLimit(hardBytes: 1 << 20, softBytes: 256 << 10, softSeconds: 5))
        #expect(c.outputBufferLimit == OutputBufferLimit())
        try ServerSetting.parseOutputBufferLimits("normal 0 0 0 pubsub 32mb 8mb 60", into: &c)
        #expect(c.outputBufferLimit == OutputBufferLimit(hardBytes: 0, softBytes: 0, softSeconds: 0))
        #expect(c.pubsubOutputBufferLimit == OutputBufferLimit(hardBytes: 32 << 20, softBytes: 8 << 20, softSeconds: 60))
        #expect(throws: SettingError.self) { try ServerSetting.parseOutputBufferLimits("replica 1mb 1mb 1", into: &c) }
        #expect(throws: SettingError.self) { try ServerSetting.parseOutputBufferLimits("pubsub 1mb 1mb", into: &c) }
    }

    @Test func keyspaceEventLettersFollowRedis() {
        #expect(KeyspaceEventFlags(letters: "KEA")?.letters == "AKE")
        #expect(KeyspaceEventFlags(letters: "Kx$g")?.letters == "g$xK")
        #expect(KeyspaceEventFlags(letters: "")?.letters == "")
        #expect(KeyspaceEventFlags(letters: "AmnE")?.letters == "AEm")
        #expect(KeyspaceEventFlags(letters: "gn")?.letters == "gn")
        #expect(KeyspaceEventFlags(letters: "m")?.letters == "m")
        #expect(KeyspaceEventFlags(letters: "KQ") == nil)
        #expect(KeyspaceEventFlags(letters: "g$lshzxetd") == KeyspaceEventFlags.all)
    }

    @Test func keyspaceEventsArePublished() throws {
        let h = try CommandHarness(fileSystem: MemoryFileSystem())
        let listener = try #require(h.server.register(remote: "127.0.0.1:3", local: "127.0.0.1:2"))
        let inbox = listen(listener)
        _ = Commands.execute(args("PSUBSCRIBE", "__key*__:*"), server: h.server, session: listener)
        // Off by default: nothing is published.
        _ = h.run(args("SET", "a", "1"))
        #expect(inbox.all.isEmpty)
        #expect(h.run(args("CONFIG", "SET", "notify-keyspace-events", "KEg$")).reply == .simpleString("OK"))
        _ = h.run(args("SET", "a", "2", "PX", "100000"))
        _ = h.run(args("DEL", "a", "b"))
        func event(_ channel: String, _ message: String) -> RESPValue {
            .push([bulk("pmessage"), bulk("__key*__:*"), bulk(channel), bulk(message)])
        }
        #expect(inbox.all == [
            event("__keyspace@0__:a", "set"), event("__keyevent@0__:set", "a"),
            event("__keyspace@0__:a", "expire"), event("__keyevent@0__:expire", "a"),
            event("__keyspace@0__:a", "del"), event("__keyevent@0__:del", "a"),
        ])
    }
}
