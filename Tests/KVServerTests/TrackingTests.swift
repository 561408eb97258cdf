import KVFileSystem
import KVProtocol
@testable import KVServer
import Synchronization
import Testing

/// Client-side caching through the command executor: CLIENT TRACKING and its options and
/// errors, invalidations in default and BCAST mode (captured in place of a connection, or
/// placed around the reply for the client's own changes), NOLOOP, OPTIN/OPTOUT with CLIENT
/// CACHING, redirection, the table's bound, flushes and clients going away. Every expected
/// reply is what redis-server 7.0 sends (the e2e module test_tracking checks the same
/// against both servers).
@Suite("Client-side caching")
struct TrackingTests {
    /// Messages delivered to one session.
    final class Inbox: Sendable {
        let messages = Mutex<[RESPValue]>([])
        var all: [RESPValue] { messages.withLock { $0 } }
        /// Takes what arrived.
        func take() -> [RESPValue] { messages.withLock { m in defer { m = [] }; return m } }
    }

    func listen(_ session: ClientSession) -> Inbox {
        let inbox = Inbox()
        session.setDelivery { m in inbox.messages.withLock { $0.append(m.value) } }
        return inbox
    }

    func args(_ a: [String]) -> [[UInt8]] { a.map { Array($0.utf8) } }

    /// Runs a request as `session` and returns every reply it makes, in order.
    func exec(_ h: CommandHarness, _ session: ClientSession, _ a: String...) -> [RESPValue] {
        exec(h, session, a)
    }

    func exec(_ h: CommandHarness, _ session: ClientSession, _ a: [String]) -> [RESPValue] {
        let (reply, action) = Commands.execute(args(a), server: h.server, session: session)
        var out: [RESPValue] = reply.map { [$0] } ?? []
        if case .more(let extra) = action { out += extra }
        return out
    }

    func invalidate(_ keys: String...) -> RESPValue {
        .push([bulk("invalidate"), .array(keys.map { bulk($0) })])
    }

    let okReply = RESPValue.simpleString("OK")

    let invalidateAll = RESPValue.push([bulk("invalidate"), .bulkString(nil)])

    func info(_ h: CommandHarness, _ field: String) -> String? {
        let text: String
        switch h.run(args(["INFO", "everything"])).reply {
        case .bulkString(let b?): text = String(buffer: b)
        case .verbatimString(_, let b): text = String(buffer: b)
        default: return nil
        }
        for line in text.split(separator: "\r\n") where line.hasPrefix(field + ":") {
            return String(line.dropFirst(field.count + 1))
        }
        return nil
    }

    func trackingInfo(flags: [String], redirect: Int64, prefixes: [String] = []) -> RESPValue {
        .map([
            .init(key: bulk("flags"), value: .set(flags.map { bulk($0) })),
            .init(key: bulk("redirect"), value: .integer(redirect)),
            .init(key: bulk("prefixes"), value: .array(prefixes.map { bulk($0) })),
        ])
    }

    /// A RESP3 client that listens, registered beside the harness's own session.
    func client(_ h: CommandHarness, port: Int, resp3: Bool = true) throws -> (ClientSession, Inbox) {
        let s = try #require(h.server.register(remote: "127.0.0.1:\(port)", local: "127.0.0.1:2"))
        if resp3 { s.protocolVersion = 3 }
        return (s, listen(s))
    }

    @Test func onOffAndIntrospection() throws {
        let h = try CommandHarness(fileSystem: MemoryFileSystem())
        #expect(h.run(args(["CLIENT", "GETREDIR"])).reply == .integer(-1))
        #expect(h.run(args(["CLIENT", "TRACKINGINFO"])).reply == trackingInfo(flags: ["off"], redirect: -1))
        #expect(!h.server.keyspace.hasListeners)
        #expect(h.run(args(["CLIENT", "TRACKING", "ON"])).reply == okReply)
        #expect(h.server.keyspace.hasListeners)
        #expect(h.run(args(["CLIENT", "GETREDIR"])).reply == .integer(0))
        #expect(h.run(args(["CLIENT", "TRACKINGINFO"])).reply == trackingInfo(flags: ["on"], redirect: 0))
        #expect(h.session.describe().contains(" flags=t "))
        #expect(h.session.describe().contains(" redir=0 "))
        #expect(info(h, "tracking_clients") == "1")
        // ON again changes the options, still one tracking client.
        #expect(h.run(args(["CLIENT", "TRACKING", "ON", "NOLOOP"])).reply == okReply)
        #expect(h.run(args(["CLIENT", "TRACKINGINFO"])).reply == trackingInfo(flags: ["on", "noloop"], redirect: 0))
        #expect(info(h, "tracking_clients") == "1")
        #expect(h.run(args(["CLIENT", "TRACKING", "OFF"])).reply == okReply)
        #expect(h.run(args(["CLIENT", "TRACKING", "OFF"])).reply == okReply)
        #expect(!h.server.keyspace.hasListeners)
        #expect(info(h, "tracking_clients") == "0")
        #expect(h.session.describe().contains(" flags=N "))
        #expect(h.session.describe().contains(" redir=-1 "))
        #expect(h.run(args(["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a", "PREFIX", "b"])).reply == okReply)
        #expect(h.run(args(["CLIENT", "TRACKINGINFO"])).reply == trackingInfo(flags: ["on", "bcast"], redirect: 0, prefixes: ["a", "b"]))
        #expect(h.session.describe().contains(" flags=tB "))
        #expect(info(h, "tracking_total_prefixes") == "2")
        // RESET leaves tracking, as in Redis.
        #expect(h.run(args(["RESET"])).reply == .simpleString("RESET"))
        #expect(h.run(args(["CLIENT", "TRACKINGINFO"])).reply == trackingInfo(flags: ["off"], redirect: -1))
        #expect(info(h, "tracking_total_prefixes") == "0")
        #expect(info(h, "tracking_clients") == "0")
    }

    @Test func errorsFollowRedis() throws {
        let h = try CommandHarness(fileSystem: MemoryFileSystem())
        func run(_ a: String...) -> RESPValue? { h.run(args(a)).reply }
        func error(_ text: String) -> RESPValue { .simpleError(text) }
        #expect(run("CLIENT", "TRACKING") == error("ERR wrong number of arguments for 'client|tracking' command"))
        #expect(run("CLIENT", "TRACKING", "MAYBE") == error("ERR syntax error"))
        #expect(run("CLIENT", "TRACKING", "ON", "FOO") == error("ERR syntax error"))
        #expect(run("CLIENT", "TRACKING", "ON", "REDIRECT") == error("ERR syntax error"))
        #expect(run("CLIENT", "TRACKING", "ON", "PREFIX") == error("ERR syntax error"))
        #expect(run("CLIENT", "TRACKING", "ON", "REDIRECT", "x") == error("ERR value is not an integer or out of range"))
        #expect(run("CLIENT", "TRACKING", "ON", "REDIRECT", "99999999999999999999") == error("ERR value is not an integer or out of range"))
        let missing = error("ERR The client ID you want redirect to does not exist")
        for id in ["0", "-1", "9223372036854775807", "-9223372036854775808"] {
            #expect(run("CLIENT", "TRACKING", "ON", "REDIRECT", id) == missing)
        }
        #expect(run("CLIENT", "TRACKING", "OFF", "REDIRECT", "12345") == missing)
        let me = String(h.session.id)
        #expect(run("CLIENT", "TRACKING", "ON", "REDIRECT", me, "REDIRECT", me)
                == error("ERR A client can only redirect to a single other client"))
        #expect(run("CLIENT", "TRACKING", "ON", "PREFIX", "y") == error("ERR PREFIX option requires BCAST mode to be enabled"))
        #expect(run("CLIENT", "TRACKING", "ON", "OPTIN", "OPTOUT") == error("ERR You can't specify both OPTIN mode and OPTOUT mode"))
        #expect(run("CLIENT", "TRACKING", "ON", "BCAST", "OPTIN") == error("ERR OPTIN and OPTOUT are not compatible with BCAST"))
        #expect(run("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "ab", "PREFIX", "a")
                == error("ERR Prefix 'ab' overlaps with another provided prefix 'a'. Prefixes for a single client must not overlap."))
        #expect(run("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a", "PREFIX", "b", "PREFIX", "bc")
                == error("ERR Prefix 'b' overlaps with another provided prefix 'bc'. Prefixes for a single client must not overlap."))
        #expect(run("CLIENT", "TRACKINGINFO") == trackingInfo(flags: ["off"], redirect: -1))
        #expect(run("CLIENT", "CACHING", "YES")
                == error("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled"))
        #expect(run("CLIENT", "CACHING") == error("ERR wrong number of arguments for 'client|caching' command"))
        #expect(run("CLIENT", "GETREDIR", "x") == error("ERR wrong number of arguments for 'client|getredir' command"))
        #expect(run("CLIENT", "TRACKINGINFO", "x") == error("ERR wrong number of arguments for 'client|trackinginfo' command"))
        // Options that only ON checks are accepted with OFF.
        #expect(run("CLIENT", "TRACKING", "OFF", "BCAST", "PREFIX", "z", "OPTIN", "OPTOUT") == okReply)
        #expect(run("CLIENT", "TRACKING", "ON", "OPTIN") == okReply)
        #expect(run("CLIENT", "TRACKING", "ON", "OPTOUT")
                == error("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode."))
        #expect(run("CLIENT", "TRACKING", "ON", "BCAST")
                == error("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode."))
        #expect(run("CLIENT", "CACHING", "NO") == error("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."))
        #expect(run("CLIENT", "CACHING", "MAYBE") == error("ERR syntax error"))
        #expect(run("CLIENT", "TRACKING", "OFF") == okReply)
        #expect(run("CLIENT", "TRACKING", "ON", "OPTOUT") == okReply)
        #expect(run("CLIENT", "CACHING", "YES") == error("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode."))
        #expect(run("CLIENT", "TRACKING", "OFF") == okReply)
        #expect(run("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "x") == okReply)
        #expect(run("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "x")
                == error("ERR Prefix 'x' overlaps with an existing prefix 'x'. Prefixes for a single client must not overlap."))
        // No prefix adds the empty one, which then overlaps every other.
        #expect(run("CLIENT", "TRACKING", "ON", "BCAST") == okReply)
        #expect(run("CLIENT", "TRACKINGINFO") == trackingInfo(flags: ["on", "bcast"], redirect: 0, prefixes: ["", "x"]))
        #expect(run("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "y")
                == error("ERR Prefix 'y' overlaps with an existing prefix ''. Prefixes for a single client must not overlap."))
        #expect(run("CLIENT", "TRACKING", "ON") == error("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode."))
    }

    @Test func defaultModeInvalidatesEachReadOnce() throws {
        let h = try CommandHarness(fileSystem: MemoryFileSystem())
        let (reader, inbox) = try client(h, port: 3)
        #expect(exec(h, reader, "CLIENT", "TRACKING", "ON") == [okReply])
        #expect(exec(h, reader, "GET", "k") == [.bulkString(nil)])
        #expect(info(h, "tracking_total_keys") == "1")
        #expect(info(h, "tracking_total_items") == "1")
        #expect(h.run(args(["SET", "k", "1"])).reply == okReply)
        #expect(inbox.take() == [invalidate("k")])
        // Forgotten after the invalidation: the next change sends nothing until a new read.
        #expect(h.run(args(["SET", "k", "2"])).reply == okReply)
        #expect(inbox.take().isEmpty)
        #expect(info(h, "tracking_total_keys") == "0")
        // Every read-only command's keys; a failed read counts, as in Redis.
        _ = exec(h, reader, "MGET", "a", "b")
        _ = exec(h, reader, "STRLEN", "c")
        _ = exec(h, reader, "EXISTS", "d", "d")
        _ = exec(h, reader, "TTL", "e")
        _ = exec(h, reader, "GETRANGE", "f", "x", "y")
        _ = exec(h, reader, "TYPE", "g")
        #expect(info(h, "tracking_total_keys") == "7")
        #expect(h.run(args(["MSET", "a", "1", "b", "2", "z", "3"])).reply == okReply)
        #expect(inbox.take() == [invalidate("a"), invalidate("b")])
        for (cmd, key) in [("DEL", "c"), ("INCR", "d"), ("EXPIRE", "e"), ("APPEND", "f"), ("RENAME", "g")] {
            _ = h.run(args(cmd == "RENAME" ? ["SET", "g", "v"] : ["SET", key, "1"]))
            _ = inbox.take()
            _ = exec(h, reader, "GET", key)
            _ = h.run(args(cmd == "RENAME" ? [cmd, key, "g2"] : cmd == "APPEND" ? [cmd, key, "x"] : cmd == "EXPIRE" ? [cmd, key, "100"] : [cmd, key]))
            #expect(inbox.take() == [invalidate(key)], "\(cmd)")
        }
        // Writes are not reads: a key the reader wrote is not remembered.
        _ = exec(h, reader, "SET", "w", "1")
        _ = h.run(args(["SET", "w", "2"]))
        #expect(inbox.take().isEmpty)
        // A second reader: both hear of it once.
        let (second, inbox2) = try client(h, port: 4)
        _ = exec(h, second, "CLIENT", "TRACKING", "ON")
        _ = h.run(args(["SET", "s", "1"]))
        _ = exec(h, reader, "GET", "s")
        _ = exec(h, second, "GET", "s")
        #expect(info(h, "tracking_total_items") == "2")
        _ = h.run(args(["DEL", "s"]))
        #expect(inbox.take() == [invalidate("s")])
        #expect(inbox2.take() == [invalidate("s")])
    }

    @Test func ownChangesFollowTheReplyAndNoloopSkipsThem() throws {
        let h = try CommandHarness(fileSystem: MemoryFileSystem())
        h.session.protocolVersion = 3
        _ = h.run(args(["CLIENT", "TRACKING", "ON"]))
        #expect(h.runAll(args(["GET", "k"])) == [.bulkString(nil)])
        #expect(h.runAll(args(["SET", "k", "1"])) == [okReply, invalidate("k")])
        #expect(h.runAll(args(["SET", "k", "2"])) == [okReply])
        _ = h.runAll(args(["GET", "k"]))
        #expect(h.runAll(args(["FLUSHALL"])) == [okReply, invalidateAll])
        // NOLOOP: no invalidation for its own change, and the key is forgotten all the same.
        _ = h.run(args(["CLIENT", "TRACKING", "ON", "NOLOOP"]))
        _ = h.runAll(args(["GET", "n"]))
        #expect(h.runAll(args(["SET", "n", "1"])) == [okReply])
        #expect(info(h, "tracking_total_keys") == "0")
        let (other, _) = try client(h, port: 3)
        _ = h.runAll(args(["GET", "n"]))
        #expect(exec(h, other, "SET", "n", "2") == [okReply])
        // The change came from another client: delivered to this one's connection.
        #expect(info(h, "tracking_total_keys") == "0")
        // A RESP2 client without a redirect gets nothing (it cannot take pushes).
        h.session.protocolVersion = 2
        _ = h.runAll(args(["CLIENT", "TRACKING", "ON"]))
        _ = h.runAll(args(["GET", "r"]))
        #expect(h.runAll(args(["SET", "r", "1"])) == [okReply])
    }

    @Test func broadcastPrefixesAndNoloop() throws {
        let h = try CommandHarness(fileSystem: MemoryFileSystem())
        let (bcast, inbox) = try client(h, port: 3)
        #expect(exec(h, bcast, "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "p:", "PREFIX", "q:") == [okReply])
        #expect(h.run(args(["MSET", "p:2", "x", "p:1", "y", "q:1", "z", "r:1", "w"])).reply == okReply)
        #expect(inbox.take() == [invalidate("p:1", "p:2"), invalidate("q:1")])
        // Nothing is remembered, and every change is sent again.
        _ = exec(h, bcast, "GET", "p:1")
        #expect(info(h, "tracking_total_keys") == "0")
        #expect(info(h, "tracking_total_prefixes") == "2")
        _ = h.run(args(["SET", "p:1", "again"]))
        _ = h.run(args(["SET", "p:1", "and again"]))
        #expect(inbox.take() == [invalidate("p:1"), invalidate("p:1")])
        _ = h.run(args(["SET", "other", "1"]))
        #expect(inbox.take().isEmpty)
        // Its own changes follow its reply; NOLOOP leaves them out.
        #expect(exec(h, bcast, "SET", "p:5", "1") == [okReply, invalidate("p:5")])
        _ = exec(h, bcast, "CLIENT", "TRACKING", "OFF")
        #expect(info(h, "tracking_total_prefixes") == "0")
        _ = exec(h, bcast, "CLIENT", "TRACKING", "ON", "BCAST", "NOLOOP")
        #expect(exec(h, bcast, "SET", "p:5", "2") == [okReply])
        _ = h.run(args(["SET", "anything", "1"]))
        #expect(inbox.take() == [invalidate("anything")])
        #expect(h.run(args(["FLUSHALL"])).reply == okReply)
        #expect(inbox.take() == [invalidateAll])
    }

    @Test func optinAndOptoutWithCaching() throws {
        let h = try CommandHarness(fileSystem: MemoryFileSystem())
        let (c, inbox) = try client(h, port: 3)
        func roundTrip(_ before: [String]...) -> [RESPValue] {
            for b in before { _ = exec(h, c, b) }
            _ = exec(h, c, "GET", "o")
            _ = h.run(args(["SET", "o", "x"]))
            return inbox.take()
        }
        _ = exec(h, c, "CLIENT", "TRACKING", "ON", "OPTIN")
        #expect(roundTrip().isEmpty)
        #expect(roundTrip(["CLIENT", "CACHING", "YES"]) == [invalidate("o")])
        #expect(exec(h, c, "CLIENT", "CACHING", "YES") == [okReply])
        #expect(exec(h, c, "CLIENT", "TRACKINGINFO") == [trackingInfo(flags: ["on", "optin", "caching-yes"], redirect: 0)])
        // Another CLIENT subcommand keeps the answer for the next command (Redis); any other
        // command, even a refused one, ends it.
        #expect(roundTrip(["CLIENT", "CACHING", "YES"], ["CLIENT", "ID"]) == [invalidate("o")])
        #expect(roundTrip(["CLIENT", "CACHING", "YES"], ["PING"]).isEmpty)
        #expect(roundTrip(["CLIENT", "CACHING", "YES"], ["NOSUCHCMD"]).isEmpty)
        #expect(roundTrip(["CLIENT", "CACHING", "YES"], ["GET"]).isEmpty)
        _ = exec(h, c, "CLIENT", "TRACKING", "OFF")
        _ = exec(h, c, "CLIENT", "TRACKING", "ON", "OPTOUT")
        #expect(roundTrip() == [invalidate("o")])
        #expect(roundTrip(["CLIENT", "CACHING", "NO"]).isEmpty)
        #expect(roundTrip() == [invalidate("o")])
        _ = exec(h, c, "CLIENT", "CACHING", "NO")
        #expect(exec(h, c, "CLIENT", "TRACKINGINFO") == [trackingInfo(flags: ["on", "optout", "caching-no"], redirect: 0)])
    }

    @Test func redirectToSubscriberOrPushClient() throws {
        let h = try CommandHarness(fileSystem: MemoryFileSystem())
        let (tracker, trackerInbox) = try client(h, port: 3, resp3: false)
        let (target, targetInbox) = try client(h, port: 4, resp3: false)
        // A RESP2 target gets nothing until it has a subscription (any channel, as in Redis).
        #expect(exec(h, tracker, "CLIENT", "TRACKING", "ON", "REDIRECT", String(target.id)) == [okReply])
        #expect(exec(h, tracker, "CLIENT", "GETREDIR") == [.integer(target.id)])
        #expect(tracker.describe().contains(" redir=\(target.id) "))
        _ = exec(h, tracker, "GET", "x")
        _ = h.run(args(["SET", "x", "1"]))
        #expect(targetInbox.take().isEmpty)
        _ = exec(h, target, "SUBSCRIBE", "__redis__:invalidate")
        _ = exec(h, tracker, "GET", "x")
        _ = h.run(args(["SET", "x", "2"]))
        let message = RESPValue.push([bulk("message"), bulk("__redis__:invalidate"), .array([bulk("x")])])
        #expect(targetInbox.take() == [message])
        _ = h.run(args(["FLUSHALL"]))
        #expect(targetInbox.take() == [.push([bulk("message"), bulk("__redis__:invalidate"), .bulkString(nil)])])
        // A RESP3 target gets the push, subscribed or not.
        target.protocolVersion = 3
        _ = exec(h, target, "UNSUBSCRIBE")
        _ = exec(h, tracker, "GET", "x")
        _ = h.run(args(["SET", "x", "3"]))
        #expect(targetInbox.take() == [invalidate("x")])
        #expect(trackerInbox.take().isEmpty)
        // The target goes away: the redirect is broken, a RESP3 tracker is told at the next
        // invalidation, and each time after.
        tracker.protocolVersion = 3
        h.server.unregister(target)
        _ = exec(h, tracker, "GET", "x")
        #expect(trackerInbox.take().isEmpty)
        _ = h.run(args(["SET", "x", "4"]))
        let broken = RESPValue.push([bulk("tracking-redir-broken"), .integer(target.id)])
        #expect(trackerInbox.take() == [broken])
        #expect(exec(h, tracker, "CLIENT", "TRACKINGINFO") == [trackingInfo(flags: ["on", "broken_redirect"], redirect: target.id)])
        #expect(tracker.describe().contains(" flags=tR "))
        _ = h.run(args(["FLUSHALL"]))
        #expect(trackerInbox.take() == [broken])
        // Tracking on again clears the broken flag.
        _ = exec(h, tracker, "CLIENT", "TRACKING", "ON")
        #expect(exec(h, tracker, "CLIENT", "TRACKINGINFO") == [trackingInfo(flags: ["on"], redirect: 0)])
    }

    @Test func theTableIsBoundedByTrackingTableMaxKeys() throws {
        let h = try CommandHarness(fileSystem: MemoryFileSystem())
        func run(_ a: String...) -> RESPValue? { h.run(args(a)).reply }
        let bad = "ERR CONFIG SET failed (possibly related to argument 'tracking-table-max-keys') - "
        #expect(run("CONFIG", "GET", "tracking-table-max-keys") == .array([bulk("tracking-table-max-keys"), bulk("1000000")]))
        #expect(run("CONFIG", "SET", "tracking-table-max-keys", "-1")
                == .simpleError(bad + "argument must be between 0 and 9223372036854775807 inclusive"))
        for v in ["x", "1kb", "99999999999999999999", ""] {
            #expect(run("CONFIG", "SET", "tracking-table-max-keys", v) == .simpleError(bad + "argument couldn't be parsed into an integer"))
        }
        #expect(run("CONFIG", "SET", "tracking-table-max-keys", "9223372036854775807") == okReply)
        #expect(run("CONFIG", "SET", "tracking-table-max-keys", "2") == okReply)
        #expect(run("CONFIG", "GET", "tracking-table-max-keys") == .array([bulk("tracking-table-max-keys"), bulk("2")]))
        h.session.protocolVersion = 3
        _ = run("CLIENT", "TRACKING", "ON")
        var pushes: [RESPValue] = []
        for k in ["e1", "e2", "e3", "e4"] {
            // Before each command the table is brought back under its bound: the evicted
            // keys' invalidations come ahead of the reply.
            let replies = h.runAll(args(["GET", k]))
            #expect(replies.last == .bulkString(nil))
            pushes += replies.dropLast()
        }
        _ = h.runAll(args(["PING"]))
        #expect(info(h, "tracking_total_keys") == "2")
        #expect(pushes.count == 1)
        // Every evicted key was invalidated, and the ones left still are tracked.
        let evicted = Set(pushes.compactMap { p -> String? in
            guard case .push(let parts) = p, parts.count == 2, case .array(let keys?) = parts[1],
                  case .bulkString(let b?) = keys.first else { return nil }
            return String(buffer: b)
        })
        #expect(evicted.count == 1 && evicted.isSubset(of: ["e1", "e2", "e3"]))
        // The periodic check (no current client) evicts too.
        _ = h.runAll(args(["GET", "e5"]))
        let (other, otherInbox) = try client(h, port: 3)
        _ = exec(h, other, "CLIENT", "TRACKING", "ON")
        _ = exec(h, other, "GET", "o1")
        // (Read directly: INFO, as any command, would evict first.)
        #expect(h.server.tracking.totalKeys == 3)
        h.server.tracking.evictIfNeeded(server: h.server, current: nil)
        #expect(h.server.tracking.totalKeys == 2)
        _ = otherInbox.take()
        // 0: no bound.
        #expect(run("CONFIG", "SET", "tracking-table-max-keys", "0") == okReply)
        for i in 0..<20 { _ = h.runAll(args(["GET", "m\(i)"])) }
        #expect(Int(info(h, "tracking_total_keys") ?? "") ?? 0 >= 20)
    }

    @Test func coalescedWritesOfAnotherClientInvalidate() throws {
        let h = try CommandHarness(fileSystem: MemoryFileSystem())
        let (reader, inbox) = try client(h, port: 3)
        _ = exec(h, reader, "CLIENT", "TRACKING", "ON")
        _ = exec(h, reader, "MGET", "a", "b", "n")
        let sets = Commands.executePlainSets([args(["SET", "a", "1"]), args(["SET", "b", "2"])][...], server: h.server, session: h.session)
        #expect(sets == [okReply, okReply])
        let counters = Commands.executeCounters([args(["INCR", "n"]), args(["INCR", "n"])][...], server: h.server, session: h.session)
        #expect(counters == [.integer(1), .integer(2)])
        #expect(inbox.take() == [invalidate("a"), invalidate("b"), invalidate("n")])
        // A tracking client's own runs go one by one (its invalidations follow each reply).
        #expect(Commands.executePlainSets([args(["SET", "a", "1"]), args(["SET", "b", "2"])][...], server: h.server, session: reader) == nil)
    }

    @Test func aClientThatGoesAwayIsReleased() throws {
        let h = try CommandHarness(fileSystem: MemoryFileSystem())
        let (c, _) = try client(h, port: 3)
        _ = exec(h, c, "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a", "PREFIX", "b")
        let (d, _) = try client(h, port: 4)
        _ = exec(h, d, "CLIENT", "TRACKING", "ON")
        _ = exec(h, d, "GET", "k")
        #expect(info(h, "tracking_clients") == "2")
        h.server.unregister(c)
        h.server.unregister(d)
        #expect(info(h, "tracking_clients") == "0")
        #expect(info(h, "tracking_total_prefixes") == "0")
        #expect(!h.server.keyspace.hasListeners)
        #expect(!h.server.tracking.isActive)
        // With no tracking client left, nobody can be told of a key: the table is emptied.
        #expect(info(h, "tracking_total_keys") == "0")
        #expect(info(h, "tracking_total_items") == "0")
    }
}
