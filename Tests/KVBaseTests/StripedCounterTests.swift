import Foundation
import Testing

@testable import KVBase

@Suite("StripedCounter")
struct StripedCounterTests {
    /// Adds from many threads at once all count, negative adds subtract, and reset zeroes.
    @Test func concurrentAddsSum() {
        let counter = StripedCounter()
        let threads = 24
        let perThread = 10_000
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            for i in 0..<perThread { counter.add(i % 2 == 0 ? 3 : -1) }
            counter.add(t)
        }
        #expect(counter.value == threads * perThread + (0..<threads).reduce(0, +))
        counter.reset()
        #expect(counter.value == 0)
        counter.add()
        #expect(counter.value == 1)
    }
}
