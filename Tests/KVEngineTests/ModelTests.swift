import KVBase
import KVFileSystem
import KVTestSupport
import Testing

@testable import KVEngine

/// Randomized model test: long seeded sequences of puts, deletes, batches, gets, scans,
/// snapshots and reopens against the engine and a dictionary, compared after every step.
@Suite("Model")
struct ModelTests {
    struct Config: Sendable, CustomStringConvertible {
        var steps: Int
        var keySpace: Int
        var writeBufferSize: Int
        var description: String { "steps=\(steps) keys=\(keySpace) buffer=\(writeBufferSize)" }
    }

    static let configs: [Config] = [
        Config(steps: soakEnabled ? 100_000 : 4000, keySpace: 300, writeBufferSize: 64 << 20),
        Config(steps: soakEnabled ? 100_000 : 4000, keySpace: 3000, writeBufferSize: 8 << 10),
    ]

    @Test(arguments: configs)
    func randomOperationsMatchModel(config: Config) throws {
        let seed = testSeed("model \(config)")
        var r = TestRandom(seed: seed)
        let fs = MemoryFileSystem()
        var options = memoryOptions(fs)
        options.writeBufferSize = config.writeBufferSize
        var db = try Database.open(at: "/db", options: options)
        var model = ModelStore()
        var snaps: [(Snapshot, ModelStore)] = []

        func check(_ cond: Bool, _ what: @autoclosure () -> String, step: Int) {
            #expect(cond, "seed \(seed) step \(step): \(what())")
        }

        for step in 0..<config.steps {
            let dice = r.next(100)
            switch dice {
            case 0..<35:
                let k = r.key(space: config.keySpace)
                let v = r.value(maxLength: 64)
                try db.put(k, v)
                model.put(k, v)
            case 35..<50:
                let k = r.key(space: config.keySpace)
                try db.delete(k)
                model.delete(k)
            case 50..<58:
                var batch = WriteBatch()
                var next = model
                for _ in 0..<(1 + r.next(10)) {
                    let k = r.key(space: config.keySpace)
                    if r.chance(70) {
                        let v = r.value(maxLength: 32)
                        batch.put(k, v)
                        next.put(k, v)
                    } else {
                        batch.delete(k)
                        next.delete(k)
                    }
                }
                try db.write(batch, durability: r.chance(10) ? .always : nil)
                model = next
            case 58..<78:
                let k = r.key(space: config.keySpace)
                let got = try db.get(k)
                check(got == model.get(k), "get \(k)", step: step)
            case 78..<86:
                let a = r.key(space: config.keySpace)
                let b = r.key(space: config.keySpace)
                let (lo, hi) = compareBytes(a, b) <= 0 ? (a, b) : (b, a)
                let reverse = r.chance(50)
                let limit = 1 + r.next(50)
                let lower = r.chance(20) ? nil : lo
                let upper = r.chance(20) ? nil : hi
                let scan = try db.scan(from: lower, to: upper, reverse: reverse)
                let expectedAll = model.range(lower, upper, reverse: reverse)
                var got: [([UInt8], [UInt8])] = []
                while got.count < limit, let e = try scan.nextEntry() { got.append((e.key, e.value)) }
                let expected = Array(expectedAll.prefix(limit))
                check(got.map(\.0) == expected.map(\.0) && got.map(\.1) == expected.map(\.1), "scan", step: step)
            case 86..<90:
                if snaps.count >= 3 { snaps.removeFirst() }
                snaps.append((db.snapshot(), model))
            case 90..<96:
                if let (snap, old) = snaps.randomElement(using: &r.rng) {
                    let k = r.key(space: config.keySpace)
                    check(try db.get(k, snapshot: snap) == old.get(k), "snapshot get", step: step)
                    let all = try db.scan(snapshot: snap).map { ($0.key, $0.value) }
                    let exp = old.range(nil, nil)
                    check(all.map(\.0) == exp.map(\.0) && all.map(\.1) == exp.map(\.1), "snapshot scan", step: step)
                }
            default:
                snaps.removeAll()
                try db.close()
                db = try Database.open(at: "/db", options: options)
            }
        }
        let all = try db.scan().map { ($0.key, $0.value) }
        let exp = model.range(nil, nil)
        #expect(all.map(\.0) == exp.map(\.0) && all.map(\.1) == exp.map(\.1), "seed \(seed): final scan")
        try db.close()
    }
}

