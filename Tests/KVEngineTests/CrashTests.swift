import KVBase
import KVFileSystem
import KVTestSupport
import Testing

@testable import KVEngine

/// Crash tests on the in-memory file system: write, crash at a random point (process crash or
/// power loss with torn tails), recover, and check the recovered state equals the state after
/// some prefix of the acknowledged writes — containing every write acknowledged with
/// `.always` (and, for a process crash, every acknowledged write).
@Suite("Crash recovery")
struct CrashTests {
    enum Crash: String, CaseIterable, Sendable {
        case process, powerLoss, powerLossTorn
    }

    static let rounds = soakEnabled ? 400 : 40

    @Test(arguments: Crash.allCases)
    func recoveredStateIsAPrefixOfAcknowledgedWrites(crash: Crash) throws {
        let seed = testSeed("crash \(crash.rawValue)")
        var r = TestRandom(seed: seed)
        for round in 0..<Self.rounds {
            let fs = MemoryFileSystem()
            var options = memoryOptions(fs)
            options.writeBufferSize = r.chance(50) ? 4 << 10 : 64 << 20
            // Some history that is already durable (closed cleanly).
            var states: [ModelStore] = [ModelStore()]
            var model = ModelStore()
            do {
                let db = try Database.open(at: "/db", options: options)
                for _ in 0..<r.next(50) {
                    let k = r.key(space: 40)
                    let v = r.value(maxLength: 40)
                    try db.put(k, v)
                    model.put(k, v)
                }
                try db.close()
            }
            states = [model]
            var lastAlways = 0
            let db = try Database.open(at: "/db", options: options)
            let n = 1 + r.next(120)
            for i in 1...n {
                var batch = WriteBatch()
                for _ in 0..<(1 + r.next(4)) {
                    let k = r.key(space: 40)
                    if r.chance(75) {
                        let v = r.value(maxLength: 100)
                        batch.put(k, v)
                        model.put(k, v)
                    } else {
                        batch.delete(k)
                        model.delete(k)
                    }
                }
                let mode: Durability = [.always, .everysec, .no][r.next(3)]
                try db.write(batch, durability: mode)
                if mode == .always { lastAlways = i }
                states.append(model)
            }
            db.haltForCrashTest()
            switch crash {
            case .process: fs.simulateProcessCrash()
            case .powerLoss: fs.simulatePowerLoss()
            case .powerLossTorn: fs.simulatePowerLoss(tornTailSeed: r.rng.next())
            }
            let recovered = try Database.open(at: "/db", options: options)
            var got = ModelStore()
            for (k, v) in try recovered.scan() { got.put(k, v) }
            let minimum = crash == .process ? n : lastAlways
            let matches = (minimum...n).filter { states[$0] == got }
            #expect(!matches.isEmpty, "seed \(seed) round \(round): recovered \(got.count) keys; no prefix in \(minimum)...\(n) matches")
            // The recovered database accepts writes and keeps them.
            try recovered.put("after", "crash")
            try recovered.close()
            let again = try Database.open(at: "/db", options: options)
            #expect(try again.get("after") == Array("crash".utf8), "seed \(seed) round \(round)")
            try again.close()
            _ = db
        }
    }
}
