import KVProtocol
@testable import KVServer
import KVStore
import NIOCore
import Testing

@Suite("IDX commands")
struct IndexCommandTests {
    @Test func createQueryInfoDrop() throws {
        let h = try Harness(shards: 3)
        h.run("SET", "product:1", #"{"category":"books","price":12.5}"#)
        h.run("SET", "product:2", #"{"category":"books","price":25}"#)
        h.run("SET", "product:3", #"{"category":"games","price":-3}"#)
        h.run("SET", "other:1", #"{"category":"books","price":1}"#)
        h.run("SET", "product:4", "not json")
        #expect(h.run("IDX.CREATE", "by_cat", "category", "TYPE", "STRING", "PREFIX", "product:") == .simpleString("OK"))
        #expect(h.run("IDX.CREATE", "by_price", "price", "TYPE", "NUMBER") == .simpleString("OK"))
        try h.store.waitForIndexes()
        #expect(h.run("IDX.CREATE", "by_cat", "category").map(isError) == true)
        #expect(h.run("IDX.CREATE", "x", "f", "TYPE", "BLOB") == err("ERR index TYPE must be STRING or NUMBER"))
        #expect(h.run("IDX.LIST") == .array([bulk("by_cat"), bulk("by_price")]))
        #expect(h.run("IDX.QUERY", "by_cat", "EQ", "books") == .array([bulk("product:1"), bulk("product:2")]))
        #expect(h.run("IDX.QUERY", "by_cat", "PREFIX", "gam") == .array([bulk("product:3")]))
        #expect(h.run("IDX.QUERY", "by_price", "RANGE", "-inf", "13") == .array([bulk("product:3"), bulk("other:1"), bulk("product:1")]))
        #expect(h.run("IDX.QUERY", "by_price", "RANGE", "12.5", "+inf", "LIMIT", "1", "1") == .array([bulk("product:2")]))
        #expect(h.run("IDX.QUERY", "by_cat", "EQ", "games", "WITHVALUES") == .array([bulk("product:3"), bulk(#"{"category":"games","price":-3}"#)]))
        #expect(h.run("IDX.QUERY", "by_price", "RANGE", "a", "1") == err("ERR min or max is not a float"))
        #expect(h.run("IDX.QUERY", "by_cat", "BETWEEN", "a") == err("ERR syntax error"))
        #expect(h.run("IDX.QUERY", "nope", "EQ", "a").map(isError) == true)
        // Writes maintain the index at once; deleted and expired rows never appear.
        h.run("SET", "product:2", #"{"category":"games","price":25}"#)
        h.run("DEL", "product:1")
        h.run("SET", "product:5", #"{"category":"books"}"#, "PX", "100")
        #expect(h.run("IDX.QUERY", "by_cat", "EQ", "books") == .array([bulk("product:5")]))
        h.store.advanceClock(by: 200)
        #expect(h.run("IDX.QUERY", "by_cat", "EQ", "books") == .array([]))
        guard case .array(let info?)? = h.run("IDX.INFO", "by_cat") else {
            Issue.record("IDX.INFO gives field/value pairs")
            return
        }
        let fields = stride(from: 0, to: info.count, by: 2).map { info[$0] }
        for name in ["name", "field", "type", "prefix", "state", "progress", "entries"] {
            #expect(fields.contains(bulk(name)), "IDX.INFO has \(name)")
        }
        #expect(info.count >= 14)
        h.run("HELLO", "3")
        if case .map? = h.run("IDX.INFO", "by_cat") {} else { Issue.record("IDX.INFO is a map in RESP3") }
        #expect(h.run("IDX.DROP", "by_cat") == .simpleString("OK"))
        #expect(h.run("IDX.DROP", "by_cat").map(isError) == true)
        #expect(h.run("IDX.LIST") == .array([bulk("by_price")]))
    }

    func isError(_ v: RESPValue) -> Bool {
        if case .simpleError = v { return true }
        return false
    }
}
