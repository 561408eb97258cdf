/// Distinct byte-string keys in the order first seen, each with its position: for a batch or a
/// pipelined run of commands that may name a key more than once.
///
/// Keys are told apart by ``keyHash64(_:)`` first, so adding a key hashes it once with a
/// word-at-a-time hash instead of feeding its bytes one by one to `Hasher` (what a
/// `[[UInt8]: Int]` dictionary does); a key whose hash is already taken is compared with the
/// keys seen so far.
package struct DistinctKeys: Sendable {
    /// The distinct keys, in the order first seen.
    package private(set) var keys: [[UInt8]] = []
    private var firstWithHash: [UInt64: Int] = [:]

    /// An empty set with room for `capacity` keys.
    package init(capacity: Int = 0) {
        keys.reserveCapacity(capacity)
        firstWithHash.reserveCapacity(capacity)
    }

    /// The position of `key` in ``keys``, appending it when new.
    package mutating func position(of key: UnsafeRawBufferPointer) -> (index: Int, inserted: Bool) {
        let h = keyHash64(key)
        if let i = firstWithHash[h] {
            if keys[i].withUnsafeBytes({ compareBytes($0, key) }) == 0 { return (i, false) }
            // Another key with the same hash (rare): compare with every key so far.
            if let j = keys.firstIndex(where: { $0.withUnsafeBytes { compareBytes($0, key) } == 0 }) { return (j, false) }
        } else {
            firstWithHash[h] = keys.count
        }
        keys.append(Array(key))
        return (keys.count - 1, true)
    }

    /// The position of `key` in ``keys``, appending it when new.
    package mutating func position(of key: [UInt8]) -> (index: Int, inserted: Bool) {
        key.withUnsafeBytes { position(of: $0) }
    }

    /// The number of distinct keys.
    package var count: Int { keys.count }

    /// The distinct keys of `keys` in the order first seen, and for each of `keys` its
    /// position among them.
    package static func of(_ keys: [[UInt8]]) -> (distinct: [[UInt8]], positions: [Int]) {
        var d = DistinctKeys(capacity: keys.count)
        let positions = keys.map { d.position(of: $0).index }
        return (d.keys, positions)
    }
}
