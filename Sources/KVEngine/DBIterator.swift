import KVBase

/// A cursor over the user-visible contents of a database at one snapshot: for each user key,
/// the newest version at or below the snapshot, with deleted keys hidden. LevelDB's DBIter
/// logic; supports moving forward and backward and changing direction at any point.
///
/// Keys are returned in ascending byte order. Not thread-safe: use one iterator per thread.
/// The iterator keeps the memtables and tables it reads alive until it is freed.
public final class DBIterator {
    private let iter: MergingIterator
    private let sequence: SequenceNumber
    /// Keeps the snapshot (and so the versions it needs) registered while iterating.
    private let snapshot: Snapshot?
    // Unchecked exclusivity: one thread uses an iterator at a time and no method re-enters.
    @exclusivity(unchecked)
    private var forward = true
    @exclusivity(unchecked)
    private var valid = false
    /// Reverse mode: the current entry. Forward mode: scratch for the key to skip.
    private let savedKey = ScratchBuffer()
    private let savedValue = ScratchBuffer()
    private let lookup = ScratchBuffer()

    /// Keeps the version's table files from being deleted while iterating.
    private let pinned: AnyObject?

    /// Keys at or above this one are out of range: a forward move stops at the first of them
    /// instead of stepping over deleted entries beyond it (RocksDB's `iterate_upper_bound`).
    /// Set before positioning. (Unchecked exclusivity, as the other state: read on every step.)
    @exclusivity(unchecked)
    package var upperBound: [UInt8]?
    /// Keys below this one are out of range for backward moves (`iterate_lower_bound`).
    @exclusivity(unchecked)
    package var lowerBound: [UInt8]?

    init(_ iter: MergingIterator, sequence: SequenceNumber, snapshot: Snapshot?, pinned: AnyObject? = nil) {
        self.iter = iter
        self.pinned = pinned
        self.sequence = sequence
        self.snapshot = snapshot
    }

    /// Whether the iterator is positioned at an entry.
    public var isValid: Bool { valid }

    /// The current key (a copy).
    public var key: [UInt8] { Array(keyView) }

    /// The current value (a copy).
    public var value: [UInt8] { Array(valueView) }

    /// The current key without copying; valid until the iterator moves.
    package var keyView: UnsafeRawBufferPointer {
        precondition(valid, "key of an invalid iterator")
        if forward { return InternalKey.userKey(iter.key) }
        return savedKey.bytes
    }

    /// The current value without copying; valid until the iterator moves.
    package var valueView: UnsafeRawBufferPointer {
        precondition(valid, "value of an invalid iterator")
        if forward { return iter.value }
        return savedValue.bytes
    }

    /// Positions at the smallest key.
    public func seekToFirst() throws(KVError) {
        forward = true
        savedValue.removeAll()
        try iter.seekToFirst()
        if iter.isValid { try findNextUserEntry(skipping: false) } else { valid = false }
    }

    /// Positions at the largest key.
    public func seekToLast() throws(KVError) {
        forward = false
        savedValue.removeAll()
        try iter.seekToLast()
        try findPrevUserEntry()
    }

    /// Positions at the first key at or after `target`.
    public func seek(_ target: [UInt8]) throws(KVError) {
        forward = true
        savedValue.removeAll()
        lookup.removeAll()
        target.withUnsafeBytes { lookup.append($0) }
        lookup.appendFixed64(packTrailer(sequence, .value))
        try iter.seek(lookup.bytes)
        if iter.isValid { try findNextUserEntry(skipping: false) } else { valid = false }
    }

    /// Positions at the last key strictly before `target` (or the last key when none is after):
    /// the internal iterator is placed at the last entry before `target` directly, so only the
    /// deleted entries just below it are stepped over.
    package func seekBefore(_ target: [UInt8]) throws(KVError) {
        forward = false
        savedValue.removeAll()
        lookup.removeAll()
        target.withUnsafeBytes { lookup.append($0) }
        lookup.appendFixed64(packTrailer(sequence, .value))
        try iter.seek(lookup.bytes)
        if iter.isValid {
            setSaved(target.withUnsafeBytes { $0 })
            while iter.isValid && compareToSaved(InternalKey.userKey(iter.key)) >= 0 { try iter.prev() }
        } else {
            try iter.seekToLast()
        }
        savedKey.removeAll()
        try findPrevUserEntry()
    }

    /// Moves to the next key.
    public func next() throws(KVError) {
        precondition(valid, "next on an invalid iterator")
        if !forward {
            forward = true
            // The internal iterator sits just before the entries of savedKey.
            if !iter.isValid { try iter.seekToFirst() } else { try iter.next() }
            if !iter.isValid {
                valid = false
                savedKey.removeAll()
                return
            }
        } else {
            setSaved(InternalKey.userKey(iter.key))
            try iter.next()
            if !iter.isValid {
                valid = false
                savedKey.removeAll()
                return
            }
        }
        try findNextUserEntry(skipping: true)
    }

    /// Moves to the previous key.
    public func prev() throws(KVError) {
        precondition(valid, "prev on an invalid iterator")
        if forward {
            // Step back until the user key changes.
            setSaved(InternalKey.userKey(iter.key))
            while true {
                try iter.prev()
                if !iter.isValid {
                    valid = false
                    savedKey.removeAll()
                    savedValue.removeAll()
                    return
                }
                if compareToSaved(InternalKey.userKey(iter.key)) < 0 { break }
            }
            forward = false
        }
        try findPrevUserEntry()
    }

    private func setSaved(_ k: UnsafeRawBufferPointer) {
        savedKey.assign(k)
    }

    private func compareToSaved(_ k: UnsafeRawBufferPointer) -> Int {
        compareBytes(k, savedKey.bytes)
    }

    /// Forward: skip to the first visible, live entry; with `skipping`, also past `savedKey`.
    private func findNextUserEntry(skipping initialSkipping: Bool) throws(KVError) {
        var skipping = initialSkipping
        repeat {
            let k = iter.key
            if let upperBound, upperBound.withUnsafeBytes({ compareBytes(InternalKey.userKey(k), $0) }) >= 0 { break }
            if InternalKey.sequence(k) <= sequence {
                let user = InternalKey.userKey(k)
                switch InternalKey.kind(k) {
                case .deletion:
                    setSaved(user)
                    skipping = true
                case .value:
                    if !(skipping && compareToSaved(user) <= 0) {
                        valid = true
                        savedKey.removeAll()
                        return
                    }
                case .none:
                    throw .corruption(file: "iterator", offset: 0, reason: "unknown entry kind")
                }
            }
            try iter.next()
        } while iter.isValid
        savedKey.removeAll()
        valid = false
    }

    /// Backward: collect the newest visible entry of the previous user key into saved*.
    private func findPrevUserEntry() throws(KVError) {
        var kind = ValueKind.deletion
        if iter.isValid {
            repeat {
                let k = iter.key
                if let lowerBound, lowerBound.withUnsafeBytes({ compareBytes(InternalKey.userKey(k), $0) }) < 0 { break }
                if InternalKey.sequence(k) <= sequence {
                    let user = InternalKey.userKey(k)
                    if kind != .deletion && compareToSaved(user) < 0 { break }
                    guard let entryKind = InternalKey.kind(k) else {
                        throw .corruption(file: "iterator", offset: 0, reason: "unknown entry kind")
                    }
                    kind = entryKind
                    if kind == .deletion {
                        savedKey.removeAll()
                        savedValue.removeAll()
                    } else {
                        setSaved(user)
                        savedValue.assign(iter.value)
                    }
                }
                try iter.prev()
            } while iter.isValid
        }
        if kind == .deletion {
            valid = false
            savedKey.removeAll()
            savedValue.removeAll()
            forward = true
        } else {
            valid = true
        }
    }
}
