import KVEngine
import Synchronization

/// The secondary indexes of a store, as the write path sees them: which keys they may cover
/// and which entries a row change adds and removes.
final class IndexCatalog: Sendable {
    private let definitions = Mutex<[UInt32: Void]>([:])

    /// Whether any index may cover `key`; when false, writes of `key` skip reading the old row.
    @inline(__always)
    func mayIndex(_ key: [UInt8]) -> Bool {
        definitions.withLock { !$0.isEmpty }
    }

    /// Appends to `batch` the index-entry deletions for `old` and insertions for `new` of `key`.
    func appendUpdates(key: [UInt8], slot: Int, old: StoredEntry?, new: StoredEntry?, into batch: inout WriteBatch, slots: inout [Int]) {
        _ = definitions.withLock { $0.count }
    }
}
