import KVFileSystem
import KVProtocol
@testable import KVServer
import Testing

/// CLIENT REPLY, NO-EVICT, KILL and client types through the command executor.
@Suite("Client control")
struct ClientCommandTests {
    func args(_ a: String...) -> [[UInt8]] { a.map { Array($0.utf8) } }

    @Test func replyModes() throws {
        let h = try CommandHarness(fileSystem: MemoryFileSystem())
        #expect(h.run(args("CLIENT", "REPLY", "OFF")).reply == nil)
        #expect(h.run(args("SET", "k", "v")).reply == nil)
        #expect(h.run(args("CLIENT", "REPLY", "ON")).reply == .simpleString("OK"))
        #expect(h.run(args("CLIENT", "REPLY", "SKIP")).reply == nil)
        #expect(h.run(args("GET", "k")).reply == nil)
        #expect(h.run(args("GET", "k")).reply == bulk("v"))
        #expect(h.run(args("CLIENT", "REPLY", "NO")).reply == .simpleError("ERR syntax error"))
    }

    @Test func typesAndKill() throws {
        let h = try CommandHarness(fileSystem: MemoryFileSystem())
        let other = try #require(h.server.register(remote: "127.0.0.1:9", local: "127.0.0.1:2"))
        #expect(other.clientType == "normal")
        _ = Commands.execute(args("SUBSCRIBE", "c"), server: h.server, session: other)
        #expect(other.clientType == "pubsub")
        other.isReplica.store(true, ordering: .relaxed)
        #expect(other.clientType == "replica")
        #expect(other.describe().contains(" flags=SP "))
        #expect(h.run(args("CLIENT", "KILL", "TYPE", "slave")).reply == .integer(1))
        #expect(h.run(args("CLIENT", "KILL", "127.0.0.1:9")).reply == .simpleString("OK"))
        #expect(h.run(args("CLIENT", "KILL", "127.0.0.1:8")).reply == .simpleError("ERR No such client"))
        #expect(h.run(args("CLIENT", "KILL", "ID", "-1")).reply == .simpleError("ERR client-id should be greater than 0"))
        // Killing itself: the reply comes, then the connection closes.
        let own = h.run(args("CLIENT", "KILL", "ID", String(h.session.id), "SKIPME", "no"))
        #expect(own.reply == .integer(1) && own.closes)
        #expect(h.run(args("CLIENT", "NO-EVICT", "ON")).reply == .simpleString("OK"))
        #expect(h.session.describe().contains(" flags=e "))
    }
}
