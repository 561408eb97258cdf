import KVFileSystem
import KVProtocol
@testable import KVServer
import NIOCore
import Synchronization
import Testing

/// MULTI/EXEC/DISCARD/WATCH/UNWATCH through the command executor: queueing and Redis's
/// refusals, EXECABORT, runtime errors in place, WATCH aborts by other clients' writes and
/// not by unrelated ones, keyspace events held until EXEC committed (none for an aborted
/// EXEC), state released by RESET and by a client going away.
@Suite("Transaction commands")
struct TransactionCommandTests {
    func args(_ a: String...) -> [[UInt8]] { a.map { Array($0.utf8) } }

    func run(_ h: CommandHarness, _ a: String...) -> RESPValue {
        h.run(a.map { Array($0.utf8) }).reply ?? .null
    }

    let queued = RESPValue.simpleString("QUEUED")
    let okReply = RESPValue.simpleString("OK")

    @Test func queuesAndExecutesInOrder() throws {
        let h = try CommandHarness(fileSystem: MemoryFileSystem(), shards: 4)
        #expect(run(h, "SET", "s", "abc") == okReply)
        #expect(run(h, "MULTI") == okReply)
        #expect(run(h, "SET", "a", "1") == queued)
        #expect(run(h, "INCR", "a") == queued)
        #expect(run(h, "INCR", "s") == queued)
        #expect(run(h, "MSET", "b", "2", "c", "3") == queued)
        #expect(run(h, "GET", "a") == queued)
        let inMulti = h.session.inMulti.load(ordering: .relaxed)
        #expect(inMulti)
        #expect(run(h, "EXEC") == RESPValue.array([okReply, .integer(2), .simpleError("ERR value is not an integer or out of range"), okReply, bulk("2")]))
        let stillInMulti = h.session.inMulti.load(ordering: .relaxed)
        #expect(!stillInMulti)
        #expect(run(h, "MGET", "a", "b", "c") == RESPValue.array([bulk("2"), bulk("2"), bulk("3")]))
    }

    @Test func refusalsAbortTheTransaction() throws {
        let h = try CommandHarness(fileSystem: MemoryFileSystem())
        #expect(run(h, "EXEC") == RESPValue.simpleError("ERR EXEC without MULTI"))
        #expect(run(h, "DISCARD") == RESPValue.simpleError("ERR DISCARD without MULTI"))
        #expect(run(h, "MULTI") == okReply)
        #expect(run(h, "MULTI") == RESPValue.simpleError("ERR MULTI calls can not be nested"))
        #expect(run(h, "WATCH", "k") == RESPValue.simpleError("ERR WATCH inside MULTI is not allowed"))
        #expect(run(h, "SET", "k", "v") == queued)
        #expect(run(h, "GET") == RESPValue.simpleError("ERR wrong number of arguments for 'get' command"))
        #expect(run(h, "EXEC") == RESPValue.simpleError("EXECABORT Transaction discarded because of previous errors."))
        #expect(run(h, "GET", "k") == RESPValue.nullBulk)
        #expect(run(h, "MULTI") == okReply)
        #expect(run(h, "SAVE") == RESPValue.simpleError("ERR Command not allowed inside a transaction"))
        #expect(run(h, "EXEC") == RESPValue.simpleError("EXECABORT Transaction discarded because of previous errors."))
        #expect(run(h, "MULTI") == okReply)
        #expect(run(h, "SET", "k", "v") == queued)
        #expect(run(h, "DISCARD") == okReply)
        #expect(run(h, "GET", "k") == RESPValue.nullBulk)
    }

    @Test func watchAbortsOnOtherClientsWrites() throws {
        let h = try CommandHarness(fileSystem: MemoryFileSystem(), shards: 3)
        let other = try #require(h.server.register(remote: "127.0.0.1:3", local: "127.0.0.1:2"))
        func byOther(_ a: String...) { _ = Commands.execute(a.map { Array($0.utf8) }, server: h.server, session: other) }
        #expect(run(h, "SET", "w", "1") == okReply)
        #expect(run(h, "WATCH", "w") == okReply)
        byOther("SET", "unrelated", "1")
        #expect(run(h, "MULTI") == okReply)
        #expect(run(h, "SET", "out", "1") == queued)
        #expect(run(h, "EXEC") == RESPValue.array([okReply]), "another key's write does not abort")
        #expect(run(h, "WATCH", "w") == okReply)
        byOther("SET", "w", "1")
        #expect(run(h, "MULTI") == okReply)
        #expect(run(h, "SET", "out", "2") == queued)
        #expect(run(h, "EXEC") == RESPValue.array(nil), "the same value again aborts")
        #expect(run(h, "GET", "out") == bulk("1"))
        // UNWATCH forgets; the store's watch registrations go with it.
        #expect(run(h, "WATCH", "w", "x", "y") == okReply)
        #expect(h.server.store.transactionsWatching == 3)
        #expect(run(h, "UNWATCH") == okReply)
        #expect(h.server.store.transactionsWatching == 0)
        #expect(run(h, "WATCH", "w") == okReply)
        #expect(run(h, "RESET") == RESPValue.simpleString("RESET"))
        #expect(h.server.store.transactionsWatching == 0)
        #expect(run(h, "WATCH", "w") == okReply)
        h.server.unregister(h.session)
        #expect(h.server.store.transactionsWatching == 0, "a client going away drops its watches")
    }

    @Test func keyspaceEventsWaitForTheCommit() throws {
        let h = try CommandHarness(fileSystem: MemoryFileSystem(), shards: 4)
        let sub = try #require(h.server.register(remote: "127.0.0.1:3", local: "127.0.0.1:2"))
        let inbox = Mutex<[RESPValue]>([])
        sub.setDelivery { m in inbox.withLock { $0.append(m.value) } }
        #expect(run(h, "CONFIG", "SET", "notify-keyspace-events", "KA") == okReply)
        _ = Commands.execute(args("PSUBSCRIBE", "__keyspace@0__:*"), server: h.server, session: sub)
        #expect(run(h, "MULTI") == okReply)
        #expect(run(h, "SET", "a", "1") == queued)
        #expect(run(h, "INCR", "a") == queued)
        #expect(inbox.withLock { $0.isEmpty })
        #expect(run(h, "EXEC") == RESPValue.array([okReply, .integer(2)]))
        let events = inbox.withLock { $0 }.compactMap { v -> String? in
            guard case .push(let parts) = v, parts.count == 4, case .bulkString(let b?) = parts[3] else { return nil }
            return String(buffer: b)
        }
        #expect(events == ["set", "incrby"])
        // An aborted EXEC publishes nothing.
        inbox.withLock { $0 = [] }
        #expect(run(h, "WATCH", "a") == okReply)
        let other = try #require(h.server.register(remote: "127.0.0.1:4", local: "127.0.0.1:2"))
        _ = Commands.execute(args("DEL", "a"), server: h.server, session: other)
        inbox.withLock { $0 = [] }
        #expect(run(h, "MULTI") == okReply)
        #expect(run(h, "SET", "a", "9") == queued)
        #expect(run(h, "EXEC") == RESPValue.array(nil))
        #expect(inbox.withLock { $0.isEmpty })
    }
}
