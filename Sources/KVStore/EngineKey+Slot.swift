import KVIndex
import KVLayout

extension EngineKey {
    /// The slot whose owner holds this engine key, or nil for shard-local records that every
    /// shard keeps for itself (metadata), and for reserved keys this build does not know.
    ///
    /// Lives with the store rather than with ``EngineKey`` because an index entry's slot is
    /// its user key's, which only the index's layout (`IndexKeys`) can find.
    public static func slot(of key: UnsafeRawBufferPointer) -> Int? {
        switch kind(key) {
        case .row:
            return slot(ofRow: key)
        case .reserved(indexTag):
            guard let user = IndexKeys.userKey(ofEntry: key) else { return nil }
            return HashSlot.slot(of: user)
        case .reserved(expiryTag):
            guard key.count > 10, let (user, _) = decodeEscaped(key, from: 10) else { return nil }
            return HashSlot.slot(of: user)
        case .reserved(elementTag):
            guard let (user, _) = decodeEscaped(key, from: 2) else { return nil }
            return HashSlot.slot(of: user)
        default:
            return nil
        }
    }

    /// The slot of an engine key held in an array (see ``slot(of:)-(UnsafeRawBufferPointer)``).
    public static func slot(of key: [UInt8]) -> Int? {
        key.withUnsafeBytes { slot(of: $0) }
    }
}
