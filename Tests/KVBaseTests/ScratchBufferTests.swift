import KVBase
import Testing

@Suite("ScratchBuffer")
struct ScratchBufferTests {
    @Test("starts empty")
    func startsEmpty() {
        let b = ScratchBuffer()
        #expect(b.count == 0)
        #expect(b.bytes.count == 0)
        #expect(b.array == [])
    }

    @Test("grows past its capacity and keeps every byte", arguments: [0, 1, 16, 64])
    func growth(_ capacity: Int) {
        let b = ScratchBuffer(capacity: capacity)
        var model: [UInt8] = []
        for i in 0..<300 {
            let chunk = (0..<(i % 37)).map { UInt8(truncatingIfNeeded: i &* 31 &+ $0) }
            chunk.withUnsafeBytes { b.append($0) }
            model += chunk
            #expect(b.count == model.count)
        }
        #expect(b.array == model)
        #expect(Array(b.bytes) == model)
    }

    @Test("a single append larger than double the capacity")
    func bigAppend() {
        let b = ScratchBuffer(capacity: 16)
        let big = (0..<10_000).map { UInt8(truncatingIfNeeded: $0) }
        big.withUnsafeBytes { b.append($0) }
        #expect(b.array == big)
    }

    @Test("assign replaces the contents")
    func assign() {
        let b = ScratchBuffer()
        [UInt8](repeating: 1, count: 100).withUnsafeBytes { b.append($0) }
        [UInt8]([9, 8, 7]).withUnsafeBytes { b.assign($0) }
        #expect(b.array == [9, 8, 7])
        [UInt8]().withUnsafeBytes { b.assign($0) }
        #expect(b.count == 0)
        let long = [UInt8](repeating: 5, count: 500)
        long.withUnsafeBytes { b.assign($0) }
        #expect(b.array == long)
    }

    @Test("truncate and removeAll")
    func truncateAndRemoveAll() {
        let b = ScratchBuffer()
        [UInt8]([1, 2, 3, 4, 5]).withUnsafeBytes { b.append($0) }
        b.truncate(5)
        #expect(b.array == [1, 2, 3, 4, 5])
        b.truncate(2)
        #expect(b.array == [1, 2])
        [UInt8]([6]).withUnsafeBytes { b.append($0) }
        #expect(b.array == [1, 2, 6])
        b.truncate(0)
        #expect(b.count == 0)
        [UInt8]([7, 8]).withUnsafeBytes { b.append($0) }
        b.removeAll()
        #expect(b.array == [])
        [UInt8]([9]).withUnsafeBytes { b.append($0) }
        #expect(b.array == [9])
    }

    @Test("appendFixed64 writes little-endian, also at unaligned offsets and across growth")
    func appendFixed64() {
        let b = ScratchBuffer(capacity: 16)
        [UInt8]([0xAA, 0xBB, 0xCC]).withUnsafeBytes { b.append($0) }
        b.appendFixed64(0x0807_0605_0403_0201)
        b.appendFixed64(packTrailer(5, .value))
        #expect(b.array == [0xAA, 0xBB, 0xCC, 1, 2, 3, 4, 5, 6, 7, 8, 0x01, 0x05, 0, 0, 0, 0, 0, 0])
        #expect(b.bytes.fixed64(at: 3) == 0x0807_0605_0403_0201)
    }

    @Test("random operations match an array model")
    func randomOperations() {
        let seed = testSeed("ScratchBuffer.randomOperations")
        var rng = TestRandom(seed: seed)
        let b = ScratchBuffer(capacity: Int.random(in: 0...32, using: &rng))
        var model: [UInt8] = []
        for step in 0..<2000 {
            switch Int.random(in: 0..<10, using: &rng) {
            case 0..<5:
                let chunk = rng.bytes(Int.random(in: 0...(step % 100 == 0 ? 3000 : 40), using: &rng))
                chunk.withUnsafeBytes { b.append($0) }
                model += chunk
            case 5:
                let chunk = rng.bytes(Int.random(in: 0...64, using: &rng))
                chunk.withUnsafeBytes { b.assign($0) }
                model = chunk
            case 6:
                let n = Int.random(in: 0...model.count, using: &rng)
                b.truncate(n)
                model.removeSubrange(n...)
            case 7:
                let v = rng.next()
                b.appendFixed64(v)
                model.appendFixed64(v)
            case 8:
                b.reserve(Int.random(in: 0...500, using: &rng))
            default:
                if Int.random(in: 0..<10, using: &rng) == 0 {
                    b.removeAll()
                    model.removeAll()
                }
            }
            #expect(b.count == model.count, "seed \(seed), step \(step)")
        }
        #expect(b.array == model, "seed \(seed)")
    }

    @Test("truncating past the end is a precondition failure")
    func truncatePastEnd() async {
        await #expect(processExitsWith: .failure) {
            let b = ScratchBuffer()
            b.truncate(1)
        }
    }
}
