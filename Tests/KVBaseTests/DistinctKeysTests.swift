@testable import KVBase
import Testing

@Suite("Distinct keys")
struct DistinctKeysTests {
    @Test("positions follow first appearance; repeats find their first position")
    func positions() {
        var d = DistinctKeys(capacity: 4)
        let names = ["b", "a", "b", "", "a", "c", ""]
        let got = names.map { d.position(of: Array($0.utf8)) }
        #expect(got.map(\.index) == [0, 1, 0, 2, 1, 3, 2])
        #expect(got.map(\.inserted) == [true, true, false, true, false, true, false])
        #expect(d.keys == ["b", "a", "", "c"].map { Array($0.utf8) })
        #expect(d.count == 4)
    }

    @Test("matches a dictionary over many random keys, duplicates included")
    func model() {
        var r = TestRandom(seed: 7)
        var d = DistinctKeys()
        var model: [[UInt8]: Int] = [:]
        for _ in 0..<20_000 {
            let key = (0..<Int(r.next() % 12)).map { _ in UInt8(r.next() % 3) }
            let (i, inserted) = d.position(of: key)
            if let j = model[key] {
                #expect(i == j && !inserted)
            } else {
                #expect(inserted && i == model.count)
                model[key] = i
            }
        }
        #expect(d.count == model.count)
        for (k, i) in model { #expect(d.keys[i] == k) }
    }

    @Test("of: distinct keys and each key's position among them")
    func ofKeys() {
        let (distinct, positions) = DistinctKeys.of(["x", "y", "x", "z", "y"].map { Array($0.utf8) })
        #expect(distinct == ["x", "y", "z"].map { Array($0.utf8) })
        #expect(positions == [0, 1, 0, 2, 1])
        let empty = DistinctKeys.of([])
        #expect(empty.distinct.isEmpty && empty.positions.isEmpty)
    }
}
