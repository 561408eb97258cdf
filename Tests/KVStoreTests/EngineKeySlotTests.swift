import KVIndex
import KVLayout
import KVStore
import Testing

/// Which slot (and so which shard) owns each kind of engine key.
@Suite("Engine key slots")
struct EngineKeySlotTests {
    @Test func indexEntriesBelongToTheirRowsSlot() {
        for user in [[UInt8(0)], [0, 0], Array("row:1".utf8), [0xFF, 0x01]] {
            let e = IndexKeys.entry(index: 0x0102_0304, value: .string(Array("ab\u{0}".utf8)), user: user)
            #expect(EngineKey.slot(of: e) == HashSlot.slot(of: user))
        }
        let n = IndexKeys.entry(index: 7, value: .number(-2.5), user: Array("{tag}x".utf8))
        #expect(EngineKey.slot(of: n) == HashSlot.slot(of: "{tag}y"))
    }

    @Test func metadataBelongsToNoSlot() {
        // Metadata records belong to no slot: they never move.
        #expect(EngineKey.slot(of: IndexMetadata.definitionKey(1)) == nil)
        #expect(EngineKey.slot(of: IndexMetadata.nextKey) == nil)
    }

    @Test func rowsBelongToTheirKeysSlot() {
        for user in [Array("a".utf8), [0xFF, 0x00], Array("{u1}.x".utf8)] {
            #expect(EngineKey.slot(of: EngineKey.encode(user)) == HashSlot.slot(of: user))
        }
    }
}
