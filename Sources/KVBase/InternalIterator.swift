/// How the keys of a block or table are ordered.
public enum KeyOrder: Sendable {
    /// Plain memcmp order (index blocks, metadata blocks, tests).
    case bytewise
    /// ``InternalKey`` order: user key ascending, then sequence descending.
    case internalKey

    /// Three-way comparison under this order.
    @inlinable
    public func compare(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
        switch self {
        case .bytewise: return compareBytes(a, b)
        case .internalKey: return InternalKey.compare(a, b)
        }
    }
}

/// A cursor over sorted (key, value) entries: memtables, blocks, tables, levels and the
/// merge of them all speak this protocol.
///
/// Contract:
/// - Positioning calls (`seek*`, `next`, `prev`) may throw a ``KVError`` (a corrupt block,
///   a failed read); after a throw the iterator is invalid.
/// - `key` and `value` may be read only while `isValid`; the buffers they return stay valid
///   until the next positioning call or until the iterator is freed.
/// - `next` and `prev` require `isValid`.
/// - Not thread-safe: one iterator is used by one thread at a time.
public protocol InternalIterator: AnyObject {
    /// Whether the iterator is positioned at an entry.
    var isValid: Bool { get }
    /// Positions at the first entry.
    func seekToFirst() throws(KVError)
    /// Positions at the last entry.
    func seekToLast() throws(KVError)
    /// Positions at the first entry whose key is at or after `target`.
    func seek(_ target: UnsafeRawBufferPointer) throws(KVError)
    /// Moves to the next entry (invalid past the last).
    func next() throws(KVError)
    /// Moves to the previous entry (invalid before the first).
    func prev() throws(KVError)
    /// The current key.
    var key: UnsafeRawBufferPointer { get }
    /// The current value.
    var value: UnsafeRawBufferPointer { get }
}

extension InternalIterator {
    /// Positions at the first entry at or after `target`.
    public func seek(_ target: [UInt8]) throws(KVError) {
        try target.withUnsafeBytes { p in Result { () throws(KVError) in try seek(p) } }.get()
    }
}

/// An iterator over nothing, or one that only reports an error when positioned.
public final class EmptyIterator: InternalIterator {
    let error: KVError?

    public init(error: KVError? = nil) { self.error = error }

    public var isValid: Bool { false }
    public func seekToFirst() throws(KVError) { if let error { throw error } }
    public func seekToLast() throws(KVError) { if let error { throw error } }
    public func seek(_ target: UnsafeRawBufferPointer) throws(KVError) { if let error { throw error } }
    public func next() throws(KVError) { preconditionFailure("next on an invalid iterator") }
    public func prev() throws(KVError) { preconditionFailure("prev on an invalid iterator") }
    public var key: UnsafeRawBufferPointer { preconditionFailure("key of an invalid iterator") }
    public var value: UnsafeRawBufferPointer { preconditionFailure("value of an invalid iterator") }
}
