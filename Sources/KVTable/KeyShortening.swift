import KVBase

// Index keys. Each index entry's key is a separator s with
//   last key of block i <= s < first key of block i + 1
// (and s >= last key for the final block), shortened as LevelDB's FindShortestSeparator and
// FindShortSuccessor do so that index blocks stay small. For internal-key tables only the
// user-key part is shortened, and a shortened user key gets the largest trailer
// (sequence 2^56 - 1, kind 1), which sorts first among the versions of that user key; when
// nothing can be shortened the full last key is used.

/// A short key `s` with `a <= s < b` bytewise, or nil when `a` itself is the best choice.
func bytewiseSeparator(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> [UInt8]? {
    let n = Swift.min(a.count, b.count)
    let i = sharedPrefixLength(a, b)
    guard i < n else { return nil }  // one is a prefix of the other
    let byte = a[i]
    guard byte < 0xFF, byte + 1 < b[i] else { return nil }
    var s = Array(a[0...i])
    s[i] += 1
    return s
}

/// A short key `s >= a` bytewise, or nil when `a` itself is the best choice.
func bytewiseSuccessor(_ a: UnsafeRawBufferPointer) -> [UInt8]? {
    for i in 0..<a.count where a[i] != 0xFF {
        var s = Array(a[0...i])
        s[i] += 1
        return s
    }
    return nil
}

/// The index key for a block ending with `last`, followed by a block starting with `next`.
func indexSeparator(_ order: KeyOrder, _ last: UnsafeRawBufferPointer, _ next: UnsafeRawBufferPointer) -> [UInt8] {
    switch order {
    case .bytewise:
        return bytewiseSeparator(last, next) ?? Array(last)
    case .internalKey:
        let ua = InternalKey.userKey(last)
        if let s = bytewiseSeparator(ua, InternalKey.userKey(next)), s.count < ua.count {
            return withMaxTrailer(s)
        }
        return Array(last)
    }
}

/// The index key for the final block, which ends with `last`.
func indexSuccessor(_ order: KeyOrder, _ last: UnsafeRawBufferPointer) -> [UInt8] {
    switch order {
    case .bytewise:
        return bytewiseSuccessor(last) ?? Array(last)
    case .internalKey:
        let ua = InternalKey.userKey(last)
        if let s = bytewiseSuccessor(ua), s.count < ua.count {
            return withMaxTrailer(s)
        }
        return Array(last)
    }
}

private func withMaxTrailer(_ userKey: [UInt8]) -> [UInt8] {
    var s = userKey
    s.appendFixed64(packTrailer(maxSequenceNumber, .value))
    return s
}
