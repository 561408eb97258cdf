import KVBase
import KVEngine
import Testing
@testable import KVReplication

/// The replication stream's frames: every kind round-trips, and any damage — a flipped bit
/// anywhere (header included), a cut — is refused with a description, never decoded into
/// other frames.
@Suite("Replication frames")
struct ReplicationFrameTests {
    static func sample() -> [ReplicationFrame] {
        var batch = WriteBatch()
        batch.put(Array("user:1".utf8), Array("{\"a\":1}".utf8))
        batch.delete(Array("user:2".utf8))
        var encoded = batch.rep
        // Sequence numbers of the group: 41 and 42.
        encoded.withUnsafeMutableBytes { $0.storeBytes(of: UInt64(41).littleEndian, toByteOffset: 0, as: UInt64.self) }
        return [
            .group(shard: 3, first: 41, last: 42, batch: encoded),
            .snapshotChunk(shard: 1, records: [(Array("k".utf8), Array("v".utf8)), ([0xFF, 0x01, 0x69], [1, 2, 3, 4]), ([], [])]),
            .snapshotEnd(shard: 1, sequence: 1 << 40),
            .resync(shard: 65535),
        ]
    }

    static func encode(_ frames: [ReplicationFrame]) -> [UInt8] {
        var out: [UInt8] = []
        for f in frames { f.encode(into: &out) }
        return out
    }

    @Test func roundTrip() throws {
        let frames = Self.sample()
        #expect(try ReplicationFrame.decodeAll(Self.encode(frames)) == frames)
        #expect(try ReplicationFrame.decodeAll([]) == [])
    }

    @Test("every flipped bit is refused")
    func flips() {
        let bytes = Self.encode(Self.sample())
        var refused = 0
        for offset in 0..<bytes.count {
            for bit in 0..<8 {
                var damaged = bytes
                damaged[offset] ^= UInt8(1 << bit)
                do {
                    let got = try ReplicationFrame.decodeAll(damaged)
                    Issue.record("flip of bit \(bit) at \(offset) decoded into \(got.count) frames")
                } catch {
                    #expect(error is ReplicationError)
                    refused += 1
                }
            }
        }
        #expect(refused == bytes.count * 8)
    }

    @Test("a cut stream is refused unless it ends between frames")
    func cuts() throws {
        let frames = Self.sample()
        var boundaries: [Int: Int] = [0: 0]
        var total = 0
        for (i, f) in frames.enumerated() {
            var one: [UInt8] = []
            f.encode(into: &one)
            total += one.count
            boundaries[total] = i + 1
        }
        let bytes = Self.encode(frames)
        for cut in 0..<bytes.count {
            let prefix = Array(bytes[..<cut])
            if let n = boundaries[cut] {
                #expect(try ReplicationFrame.decodeAll(prefix) == Array(frames.prefix(n)))
            } else {
                #expect(throws: ReplicationError.self, "cut at \(cut)") { try ReplicationFrame.decodeAll(prefix) }
            }
        }
    }
}
