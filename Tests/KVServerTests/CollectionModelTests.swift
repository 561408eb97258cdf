import KVBase
import KVEngine
import KVFileSystem
import KVProtocol
@testable import KVServer
import KVStore
import KVTestSupport
import NIOCore
import Testing

/// The four collection types through the command layer against an in-memory model: seeded
/// sequences of hash, list, set and sorted-set commands (with strings, DEL and RENAME mixed
/// in, so WRONGTYPE and overwrites happen), with clean reopens and power losses (every write
/// synced, so nothing acknowledged may be lost); after each, every key's type and contents
/// equal the model's.
private func text(_ s: String) -> [UInt8] { Array(s.utf8) }

@Suite("Collection model")
struct CollectionModelTests {
    static let steps = soakEnabled ? 30_000 : 2_500

    enum Held: Equatable {
        case string([UInt8])
        case hash([[UInt8]: [UInt8]])
        case list([[UInt8]])
        case set(Set<[UInt8]>)
        case zset([[UInt8]: Double])

        var type: String {
            switch self {
            case .string: return "string"
            case .hash: return "hash"
            case .list: return "list"
            case .set: return "set"
            case .zset: return "zset"
            }
        }
    }


    static func bulks(_ v: RESPValue?) -> [[UInt8]] {
        guard case .array(let items?)? = v else { return [] }
        return items.compactMap { if case .bulkString(let b?) = $0 { return Array(b.readableBytesView) } else { return nil } }
    }

    /// The server's view of `key`, as a model value.
    static func observe(_ h: CommandHarness, _ key: [UInt8]) -> Held? {
        guard case .simpleString(let t)? = h.run([text("TYPE"), key]).reply else { return nil }
        switch t {
        case "string":
            guard case .bulkString(let b?)? = h.run([text("GET"), key]).reply else { return nil }
            return .string(Array(b.readableBytesView))
        case "hash":
            let flat = bulks(h.run([text("HGETALL"), key]).reply)
            var m: [[UInt8]: [UInt8]] = [:]
            for i in stride(from: 0, to: flat.count - 1, by: 2) { m[flat[i]] = flat[i + 1] }
            return .hash(m)
        case "list": return .list(bulks(h.run([text("LRANGE"), key, text("0"), text("-1")]).reply))
        case "set": return .set(Set(bulks(h.run([text("SMEMBERS"), key]).reply)))
        case "zset":
            let flat = bulks(h.run([text("ZRANGE"), key, text("0"), text("-1"), text("WITHSCORES")]).reply)
            var m: [[UInt8]: Double] = [:]
            for i in stride(from: 0, to: flat.count - 1, by: 2) { m[flat[i]] = Double(String(decoding: flat[i + 1], as: UTF8.self)) }
            return .zset(m)
        default: return nil
        }
    }

    @Test func randomCommandsMatchModelAcrossReopensAndCrashes() throws {
        let seed = testSeed("collection model")
        var r = TestRandom(seed: seed)
        let fs = MemoryFileSystem()
        var h = try CommandHarness(fileSystem: fs, shards: 3, durability: .always)
        var model: [[UInt8]: Held] = [:]
        let keys = (0..<8).map { text("k\($0)") }
        let members = (0..<6).map { text("m\($0)") }
        func wrongType(_ reply: RESPValue?) -> Bool {
            if case .simpleError(let e)? = reply { return e.hasPrefix("WRONGTYPE") }
            return false
        }
        func check(_ what: String, _ step: Int) {
            for k in keys {
                let got = Self.observe(h, k)
                #expect(got == model[k], "seed \(seed) step \(step) (\(what)): \(String(decoding: k, as: UTF8.self)) is \(String(describing: got)), model \(String(describing: model[k]))")
            }
        }
        for step in 0..<Self.steps {
            let k = keys[r.next(keys.count)]
            let m = members[r.next(members.count)]
            let v = text("v\(r.next(50))")
            let held = model[k]
            switch r.next(22) {
            case 0, 1:
                let reply = h.run([text("HSET"), k, m, v]).reply
                if let held, held.type != "hash" { #expect(wrongType(reply), "seed \(seed) step \(step)"); continue }
                var f: [[UInt8]: [UInt8]] = [:]
                if case .hash(let x)? = held { f = x }
                f[m] = v
                model[k] = .hash(f)
            case 2:
                let reply = h.run([text("HDEL"), k, m]).reply
                if let held, held.type != "hash" { #expect(wrongType(reply)); continue }
                if case .hash(var f)? = held { f[m] = nil; model[k] = f.isEmpty ? nil : .hash(f) }
            case 3, 4:
                let left = r.chance(50)
                let reply = h.run([text(left ? "LPUSH" : "RPUSH"), k, v]).reply
                if let held, held.type != "list" { #expect(wrongType(reply)); continue }
                var l: [[UInt8]] = []
                if case .list(let x)? = held { l = x }
                if left { l.insert(v, at: 0) } else { l.append(v) }
                model[k] = .list(l)
            case 5:
                let left = r.chance(50)
                let reply = h.run([text(left ? "LPOP" : "RPOP"), k]).reply
                if let held, held.type != "list" { #expect(wrongType(reply)); continue }
                if case .list(var l)? = held {
                    let popped = left ? l.removeFirst() : l.removeLast()
                    #expect(reply == .bulk(popped), "seed \(seed) step \(step): pop")
                    model[k] = l.isEmpty ? nil : .list(l)
                }
            case 6:
                // LINSERT before a random item, or LREM of one value.
                guard case .list(var l)? = held, !l.isEmpty else { continue }
                if r.chance(50) {
                    let pivot = l[r.next(l.count)]
                    _ = h.run([text("LINSERT"), k, text("BEFORE"), pivot, v])
                    l.insert(v, at: l.firstIndex(of: pivot)!)
                } else {
                    let target = l[r.next(l.count)]
                    _ = h.run([text("LREM"), k, text("1"), target])
                    l.remove(at: l.firstIndex(of: target)!)
                }
                model[k] = l.isEmpty ? nil : .list(l)
            case 7:
                guard case .list(let l)? = held, !l.isEmpty else { continue }
                let a = r.next(l.count), b = a + r.next(l.count - a)
                _ = h.run([text("LTRIM"), k, text("\(a)"), text("\(b)")])
                model[k] = .list(Array(l[a...b]))
            case 8, 9:
                let reply = h.run([text("SADD"), k, m]).reply
                if let held, held.type != "set" { #expect(wrongType(reply)); continue }
                var s: Set<[UInt8]> = []
                if case .set(let x)? = held { s = x }
                s.insert(m)
                model[k] = .set(s)
            case 10:
                let reply = h.run([text("SREM"), k, m]).reply
                if let held, held.type != "set" { #expect(wrongType(reply)); continue }
                if case .set(var s)? = held { s.remove(m); model[k] = s.isEmpty ? nil : .set(s) }
            case 11, 12:
                let score = Double(r.next(200)) / 4 - 10
                let reply = h.run([text("ZADD"), k, text("\(score)"), m]).reply
                if let held, held.type != "zset" { #expect(wrongType(reply)); continue }
                var z: [[UInt8]: Double] = [:]
                if case .zset(let x)? = held { z = x }
                z[m] = score
                model[k] = .zset(z)
            case 13:
                let reply = h.run([text("ZINCRBY"), k, text("1.5"), m]).reply
                if let held, held.type != "zset" { #expect(wrongType(reply)); continue }
                var z: [[UInt8]: Double] = [:]
                if case .zset(let x)? = held { z = x }
                z[m] = (z[m] ?? 0) + 1.5
                model[k] = .zset(z)
            case 14:
                let reply = h.run([text("ZPOPMIN"), k]).reply
                if let held, held.type != "zset" { #expect(wrongType(reply)); continue }
                if case .zset(var z)? = held, let low = z.min(by: { $0.value != $1.value ? $0.value < $1.value : $0.key.lexicographicallyPrecedes($1.key) }) {
                    #expect(Self.bulks(reply).first == low.key, "seed \(seed) step \(step): zpopmin")
                    z[low.key] = nil
                    model[k] = z.isEmpty ? nil : .zset(z)
                }
            case 15:
                _ = h.run([text("DEL"), k])
                model[k] = nil
            case 16:
                _ = h.run([text("SET"), k, v])
                model[k] = .string(v)
            case 17:
                let to = keys[r.next(keys.count)]
                _ = h.run([text("RENAME"), k, to])
                if k != to, let held {
                    model[to] = held
                    model[k] = nil
                }
            case 18:
                let to = keys[r.next(keys.count)]
                let reply = h.run([text("SUNIONSTORE"), to, k, to]).reply
                let a = held, b = model[to]
                if (a.map { $0.type != "set" } ?? false) || (b.map { $0.type != "set" } ?? false) { #expect(wrongType(reply)); continue }
                var u: Set<[UInt8]> = []
                if case .set(let x)? = a { u.formUnion(x) }
                if case .set(let x)? = b { u.formUnion(x) }
                model[to] = u.isEmpty ? nil : .set(u)
            case 19:
                try h.store.close()
                h = try CommandHarness(fileSystem: fs, shards: 3, durability: .always)
                check("after a reopen", step)
            case 20:
                h.store.haltForCrashTest()
                fs.simulatePowerLoss()
                h = try CommandHarness(fileSystem: fs, shards: 3, durability: .always)
                check("after a power loss", step)
            default:
                check("now", step)
            }
        }
        check("at the end", Self.steps)
        try h.store.close()
    }

    /// Random picks spread over the members. Members shaped as redis-benchmark makes them
    /// (`element:` and 12 digits, sparse over the number range): probes built from arbitrary
    /// bytes landed on the first member after a digit boundary almost every time, so a few
    /// members took nearly every pick and SPOP walked an ever longer run of its own deletions.
    @Test func randomPicksSpreadOverDigitMembers() throws {
        let seed = testSeed("random picks")
        var r = TestRandom(seed: seed)
        let h = try CommandHarness(fileSystem: MemoryFileSystem())
        var members = Set<String>()
        while members.count < 2_000 {
            let n = r.next(1_000_000)
            members.insert("element:" + String(repeating: "0", count: 12 - String(n).count) + String(n))
        }
        let all = Array(members)
        for start in stride(from: 0, to: all.count, by: 500) {
            _ = h.run([text("SADD"), text("s")] + all[start..<min(start + 500, all.count)].map { text($0) })
        }
        var picked: [String: Int] = [:]
        for _ in 0..<4_000 {
            guard case .bulkString(let b?)? = h.run([text("SRANDMEMBER"), text("s")]).reply else {
                Issue.record("SRANDMEMBER answered no member (seed \(seed))")
                return
            }
            picked[String(decoding: b.readableBytesView, as: UTF8.self), default: 0] += 1
        }
        // A probe picks the first member at or after it, so a member's chance is the gap before
        // it: with members spread at random the gaps are about exponential, and 4,000 draws
        // reach about two thirds of 2,000 members (1 - 1/(1 + 2)), the widest gap some 15-30
        // times. The earlier probes reached fewer than a hundred, one of them over 400 times.
        print("random picks: \(picked.count) distinct of \(members.count), at most \(picked.values.max() ?? 0) of one (seed \(seed))")
        #expect(picked.count > 1_000, "distinct picks \(picked.count) (seed \(seed))")
        #expect((picked.values.max() ?? 0) < 80, "most picks of one member \(picked.values.max() ?? 0) (seed \(seed))")
        #expect(picked.keys.allSatisfy { members.contains($0) })
        // Popping them all empties the set, each member once.
        var popped = Set<String>()
        for _ in 0..<members.count {
            guard case .bulkString(let b?)? = h.run([text("SPOP"), text("s")]).reply else { break }
            popped.insert(String(decoding: b.readableBytesView, as: UTF8.self))
        }
        #expect(popped == members, "seed \(seed)")
        #expect(h.run([text("EXISTS"), text("s")]).reply == .integer(0))
        try h.store.close()
    }

    /// A small set whose range still holds many deleted members (not compacted away yet):
    /// every random pick is one of the live members, and a pick that needs all of them gets
    /// all of them.
    @Test func randomPicksOverManyDeletedMembers() throws {
        let h = try CommandHarness(fileSystem: MemoryFileSystem())
        func member(_ i: Int) -> [UInt8] { text("m" + String(repeating: "0", count: 5 - String(i).count) + String(i)) }
        let n = 1_500
        for start in stride(from: 0, to: n, by: 500) {
            _ = h.run([text("SADD"), text("s")] + (start..<min(start + 500, n)).map(member))
        }
        _ = h.run([text("SREM"), text("s")] + (1..<(n - 1)).map(member))
        #expect(h.run([text("SCARD"), text("s")]).reply == .integer(2))
        let live: Set<[UInt8]> = [member(0), member(n - 1)]
        for _ in 0..<50 {
            guard case .bulkString(let b?)? = h.run([text("SRANDMEMBER"), text("s")]).reply else {
                Issue.record("SRANDMEMBER answered no member")
                return
            }
            #expect(live.contains(Array(b.readableBytesView)))
        }
        let repeats = Self.bulks(h.run([text("SRANDMEMBER"), text("s"), text("-7")]).reply)
        #expect(repeats.count == 7 && repeats.allSatisfy { live.contains($0) })
        #expect(Set(Self.bulks(h.run([text("SRANDMEMBER"), text("s"), text("5")]).reply)) == live)
        var popped = Set<[UInt8]>()
        for _ in 0..<2 {
            if case .bulkString(let b?)? = h.run([text("SPOP"), text("s")]).reply { popped.insert(Array(b.readableBytesView)) }
        }
        #expect(popped == live)
        #expect(h.run([text("EXISTS"), text("s")]).reply == .integer(0))
        try h.store.close()
    }
}
