import KVEngine

/// A write batch whose every record carries the slot it belongs to, so the store can route
/// each record to the shard owning that slot (and a reshard can tell which records touch
/// moving slots). The pairing is kept by construction: records are only added together with
/// their slot.
///
/// Shard-local records (metadata without a slot of their own) are added with any slot the
/// target shard owns.
public struct RoutedBatch: Sendable {
    /// The records, in order.
    public private(set) var batch = WriteBatch()
    /// `slots[i]` is the slot of the batch's i-th record.
    public private(set) var slots: [Int] = []

    /// An empty batch.
    public init() {}

    /// An empty batch with room for `records` records.
    public init(reservingCapacity records: Int) {
        slots.reserveCapacity(records)
    }

    /// Adds a put of `key` → `value` in `slot`.
    public mutating func put(_ key: [UInt8], _ value: [UInt8], slot: Int) {
        batch.put(key, value)
        slots.append(slot)
    }

    /// Adds a put of `key` → `value` in `slot`.
    public mutating func put(_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, slot: Int) {
        batch.put(key, value)
        slots.append(slot)
    }

    /// Adds a put of `key` → `value` followed by `suffix`, in `slot`.
    public mutating func put<S: Collection>(_ key: [UInt8], _ value: [UInt8], suffix: S, slot: Int) where S.Element == UInt8 {
        batch.put(key, value, suffix: suffix)
        slots.append(slot)
    }

    /// Adds a deletion of `key` in `slot`.
    public mutating func delete(_ key: [UInt8], slot: Int) {
        batch.delete(key)
        slots.append(slot)
    }

    /// Adds a deletion of `key` in `slot`.
    public mutating func delete(_ key: UnsafeRawBufferPointer, slot: Int) {
        batch.delete(Array(key))
        slots.append(slot)
    }

    /// Appends every record of `other` (with its slot) after this batch's.
    public mutating func append(_ other: RoutedBatch) {
        batch.append(other.batch)
        slots.append(contentsOf: other.slots)
    }

    /// The number of records.
    public var count: Int { slots.count }
    /// Whether the batch holds no record.
    public var isEmpty: Bool { slots.isEmpty }
    /// About how many bytes the records take.
    public var approximateSize: Int { batch.approximateSize }
}
