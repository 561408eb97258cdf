import KVLayout
import Testing

/// CRC16 and key → slot mapping against Redis Cluster reference values.
@Suite("Hash slots")
struct HashSlotTests {
    @Test func crc16MatchesXmodemCheckValue() {
        #expect(CRC16.checksum(bytes("123456789")) == 0x31C3)
        #expect(CRC16.checksum([]) == 0)
    }

    @Test(arguments: [
        ("foo", 12182), ("bar", 5061), ("somekey", 11058), ("foo{hash_tag}", 2515), ("bar{hash_tag}", 2515),
    ])
    func slotsMatchRedisCluster(key: String, slot: Int) {
        #expect(HashSlot.slot(of: key) == slot, "CLUSTER KEYSLOT \(key)")
    }

    @Test func hashTags() {
        func crcSlot(_ s: String) -> Int { Int(CRC16.checksum(bytes(s))) % 16384 }
        #expect(HashSlot.slot(of: "{user1000}.following") == HashSlot.slot(of: "{user1000}.followers"))
        #expect(HashSlot.slot(of: "{user1000}.following") == crcSlot("user1000"))
        // An empty first tag: the whole key is hashed.
        #expect(HashSlot.slot(of: "foo{}{bar}") == crcSlot("foo{}{bar}"))
        // The tag runs from the first '{' to the first '}' after it.
        #expect(HashSlot.slot(of: "foo{{bar}}zap") == crcSlot("{bar"))
        #expect(HashSlot.slot(of: "foo{bar}{zap}") == crcSlot("bar"))
        // No closing brace, or only a closing brace: the whole key.
        #expect(HashSlot.slot(of: "foo{bar") == crcSlot("foo{bar"))
        #expect(HashSlot.slot(of: "foo}bar{") == crcSlot("foo}bar{"))
        #expect(HashSlot.slot(of: "}{x}") == crcSlot("x"))
    }

    @Test func slotsCoverTheRange() {
        var seen = Set<Int>()
        for i in 0..<200_000 {
            let s = HashSlot.slot(of: "key:\(i)")
            #expect(s >= 0 && s < HashSlot.count)
            seen.insert(s)
        }
        #expect(seen.count == HashSlot.count)
    }
}

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
