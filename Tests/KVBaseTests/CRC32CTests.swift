import KVBase
import Testing

/// Bit-at-a-time CRC-32C, the reference the table-driven implementation is checked against.
private func referenceCRC32C(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 {
            crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1
        }
    }
    return ~crc
}

private func update(_ crc: UInt32, _ bytes: ArraySlice<UInt8>) -> UInt32 {
    bytes.withUnsafeBytes { CRC32C.update(crc, $0) }
}

@Suite("CRC32C")
struct CRC32CTests {
    struct Vector: Sendable, CustomTestStringConvertible {
        let name: String
        let bytes: [UInt8]
        let crc: UInt32
        var testDescription: String { name }
    }

    /// RFC 3720 (iSCSI) appendix B.4 vectors, plus the common "123456789" check value.
    static let vectors: [Vector] = [
        Vector(name: "32 zero bytes", bytes: [UInt8](repeating: 0, count: 32), crc: 0x8A91_36AA),
        Vector(name: "32 0xFF bytes", bytes: [UInt8](repeating: 0xFF, count: 32), crc: 0x62A8_AB43),
        Vector(name: "0..31 ascending", bytes: (0..<32).map { UInt8($0) }, crc: 0x46DD_794E),
        Vector(name: "31..0 descending", bytes: (0..<32).reversed().map { UInt8($0) }, crc: 0x113F_DB5C),
        Vector(name: "\"123456789\"", bytes: Array("123456789".utf8), crc: 0xE306_9283),
        Vector(name: "empty", bytes: [], crc: 0),
    ]

    @Test("standard vectors", arguments: vectors)
    func standardVector(_ v: Vector) {
        #expect(CRC32C.checksum(v.bytes) == v.crc)
        #expect(v.bytes.withUnsafeBytes { CRC32C.checksum($0) } == v.crc)
        #expect(referenceCRC32C(v.bytes) == v.crc)
    }

    @Test("matches the bitwise reference at every length and alignment")
    func matchesReference() {
        let seed = testSeed("CRC32C.matchesReference")
        var rng = TestRandom(seed: seed)
        let data = rng.bytes(300)
        for start in 0..<9 {
            for end in stride(from: start, through: data.count, by: 7) {
                let slice = data[start..<end]
                #expect(
                    update(0, slice) == referenceCRC32C(Array(slice)),
                    "seed \(seed), range \(start)..<\(end)")
            }
        }
    }

    @Test("the software path matches the bitwise reference (the hardware path is checked above when the CPU has one)")
    func softwareMatchesReference() {
        let seed = testSeed("CRC32C.softwareMatchesReference")
        var rng = TestRandom(seed: seed)
        let data = rng.bytes(300)
        for start in 0..<9 {
            for end in stride(from: start, through: data.count, by: 5) {
                let slice = data[start..<end]
                let software = slice.withUnsafeBytes { CRC32C.software(0, $0) }
                #expect(software == referenceCRC32C(Array(slice)), "seed \(seed), range \(start)..<\(end)")
                #expect(software == update(0, slice), "seed \(seed), range \(start)..<\(end): hardware \(CRC32C.usesHardware)")
            }
        }
    }

    @Test("incremental update over random splits equals one-shot")
    func incrementalEqualsOneShot() {
        let seed = testSeed("CRC32C.incrementalEqualsOneShot")
        var rng = TestRandom(seed: seed)
        for round in 0..<200 {
            let data = rng.bytes(Int.random(in: 0...600, using: &rng))
            let whole = CRC32C.checksum(data)
            var cuts = (0..<Int.random(in: 0...6, using: &rng)).map { _ in Int.random(in: 0...data.count, using: &rng) }
            cuts.append(contentsOf: [0, data.count])
            cuts.sort()
            var crc: UInt32 = 0
            for (a, b) in zip(cuts, cuts.dropFirst()) {
                crc = update(crc, data[a..<b])
            }
            #expect(crc == whole, "seed \(seed), round \(round), cuts \(cuts)")
        }
    }

    @Test("extending a checksum: crc(\"hello \") + \"world\" == crc(\"hello world\")")
    func extend() {
        let hello = CRC32C.checksum(Array("hello ".utf8))
        #expect(update(hello, Array("world".utf8)[...]) == CRC32C.checksum(Array("hello world".utf8)))
    }

    @Test("updating with no bytes leaves the checksum unchanged")
    func emptyUpdate() {
        let crc = CRC32C.checksum(Array("abc".utf8))
        #expect(CRC32C.update(crc, UnsafeRawBufferPointer(start: nil, count: 0)) == crc)
        #expect(update(crc, [][...]) == crc)
    }

    @Test("mask/unmask round trip and mask changes the value")
    func maskRoundTrip() {
        let seed = testSeed("CRC32C.maskRoundTrip")
        var rng = TestRandom(seed: seed)
        var values: [UInt32] = Self.vectors.map(\.crc) + [1, 0x8000_0000, UInt32.max, 0xA282_EAD8]
        values += (0..<1000).map { _ in UInt32.random(in: 0...UInt32.max, using: &rng) }
        for crc in values {
            #expect(CRC32C.unmask(CRC32C.mask(crc)) == crc, "seed \(seed), crc \(crc)")
            #expect(CRC32C.unmask(CRC32C.unmask(CRC32C.mask(CRC32C.mask(crc)))) == crc, "seed \(seed), crc \(crc)")
        }
        for crc in Self.vectors.map(\.crc) + [CRC32C.checksum(Array("foo".utf8))] {
            #expect(CRC32C.mask(crc) != crc)
            #expect(CRC32C.mask(CRC32C.mask(crc)) != crc)
        }
        // The LevelDB definition: rotate right by 15, then add 0xa282ead8.
        #expect(CRC32C.mask(0) == 0xA282_EAD8)
        #expect(CRC32C.mask(1) == (1 << 17) &+ 0xA282_EAD8)
        #expect(CRC32C.mask(0x8000) == 1 &+ 0xA282_EAD8)
    }
}
