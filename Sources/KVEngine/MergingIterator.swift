import KVBase
import KVTable

/// Merges sorted child iterators into one sorted stream (internal-key order), as LevelDB's
/// merging iterator does: a linear scan for the smallest (forward) or largest (backward)
/// child — the number of children is small (memtables + L0 tables + one per level).
///
/// Entries equal under the order may come from several children; the database iterator
/// above resolves versions. Changing direction re-seeks every other child around the
/// current key.
///
/// Each child's current key is cached (``InternalIterator`` promises a key view stays valid
/// until that iterator moves), so choosing the next entry compares cached views instead of
/// calling into every child: a step costs one move and one entry read of the child that moved.
final class MergingIterator: InternalIterator {
    /// Owns the children.
    private let owned: [any InternalIterator]
    /// The children again, unretained (`owned` keeps them alive), so that the calls on every
    /// step do not retain and release them.
    private let children: UnsafeMutableBufferPointer<ChildRef>

    /// An unretained reference to a child of one of the engine's iterator classes (the others
    /// are reached through `owned`).
    private enum ChildRef {
        case memTable(Unmanaged<MemTableIterator>)
        case table(Unmanaged<TwoLevelIterator>)
        case level(Unmanaged<LevelIterator>)
        case other

        init(_ c: any InternalIterator) {
            switch c {
            case let m as MemTableIterator: self = .memTable(.passUnretained(m))
            case let t as TwoLevelIterator: self = .table(.passUnretained(t))
            case let l as LevelIterator: self = .level(.passUnretained(l))
            default: self = .other
            }
        }
    }
    /// `keys[i]` and `values[i]` are child i's current entry; the key view has a nil base
    /// when the child is invalid. Refreshed after every move of child i.
    private let keys: UnsafeMutableBufferPointer<UnsafeRawBufferPointer>
    private let values: UnsafeMutableBufferPointer<UnsafeRawBufferPointer>
    private var current: Int = -1
    private var forward = true
    private let order: KeyOrder
    private let count: Int

    init(_ children: [any InternalIterator], order: KeyOrder = .internalKey) {
        owned = children
        self.children = .allocate(capacity: max(children.count, 1))
        _ = self.children.initialize(from: children.map(ChildRef.init))
        self.order = order
        count = children.count
        keys = .allocate(capacity: max(children.count, 1))
        keys.initialize(repeating: UnsafeRawBufferPointer(start: nil, count: 0))
        values = .allocate(capacity: max(children.count, 1))
        values.initialize(repeating: UnsafeRawBufferPointer(start: nil, count: 0))
    }

    deinit {
        children.deallocate()
        keys.deallocate()
        values.deallocate()
    }

    var isValid: Bool { current >= 0 }
    var key: UnsafeRawBufferPointer { keys[current] }
    var value: UnsafeRawBufferPointer { values[current] }

    /// Runs `body` on child i without retaining it.
    @inline(__always)
    private func child<R>(_ i: Int, _ body: (any InternalIterator) -> R) -> R {
        switch children[i] {
        case .memTable(let u): return u._withUnsafeGuaranteedRef { body($0) }
        case .table(let u): return u._withUnsafeGuaranteedRef { body($0) }
        case .level(let u): return u._withUnsafeGuaranteedRef { body($0) }
        case .other: return body(owned[i])
        }
    }

    /// Moves child i with `move` (not retaining it) and refreshes its cached entry; when the
    /// move throws, the child and this iterator are invalid.
    @inline(__always)
    private func move(_ i: Int, _ move: (any InternalIterator) throws(KVError) -> Void) throws(KVError) {
        let r = child(i) { c in Result { () throws(KVError) in try move(c) } }
        if case .failure(let error) = r {
            keys[i] = UnsafeRawBufferPointer(start: nil, count: 0)
            current = -1
            throw error
        }
        refresh(i)
    }

    /// Re-reads child i's entry after it moved.
    @inline(__always)
    private func refresh(_ i: Int) {
        child(i) { c in
            if c.isValid {
                keys[i] = c.key
                values[i] = c.value
            } else {
                keys[i] = UnsafeRawBufferPointer(start: nil, count: 0)
            }
        }
    }

    func seekToFirst() throws(KVError) {
        for i in 0..<count { try move(i) { c throws(KVError) in try c.seekToFirst() } }
        forward = true
        findSmallest()
    }

    func seekToLast() throws(KVError) {
        for i in 0..<count { try move(i) { c throws(KVError) in try c.seekToLast() } }
        forward = false
        findLargest()
    }

    func seek(_ target: UnsafeRawBufferPointer) throws(KVError) {
        for i in 0..<count { try move(i) { c throws(KVError) in try c.seek(target) } }
        forward = true
        findSmallest()
    }

    func next() throws(KVError) {
        if !forward {
            // Every other child must be positioned after the current key.
            let k = Array(key)
            try k.withUnsafeBytes { (kp) -> Result<Void, KVError> in
                Result { () throws(KVError) in
                    for i in 0..<count where i != current {
                        try move(i) { c throws(KVError) in
                            try c.seek(kp)
                            if c.isValid && order.compare(kp, c.key) == 0 { try c.next() }
                        }
                    }
                }
            }.get()
            forward = true
        }
        let i = current
        try move(i) { c throws(KVError) in try c.next() }
        findSmallest()
    }

    func prev() throws(KVError) {
        if forward {
            // Every other child must be positioned before the current key.
            let k = Array(key)
            try k.withUnsafeBytes { (kp) -> Result<Void, KVError> in
                Result { () throws(KVError) in
                    for i in 0..<count where i != current {
                        try move(i) { c throws(KVError) in
                            try c.seek(kp)
                            if c.isValid { try c.prev() } else { try c.seekToLast() }
                        }
                    }
                }
            }.get()
            forward = false
        }
        let i = current
        try move(i) { c throws(KVError) in try c.prev() }
        findLargest()
    }

    private func findSmallest() {
        var best = -1
        for i in 0..<count where keys[i].baseAddress != nil {
            if best < 0 || order.compare(keys[i], keys[best]) < 0 { best = i }
        }
        current = best
    }

    private func findLargest() {
        var best = -1
        for i in (0..<count).reversed() where keys[i].baseAddress != nil {
            if best < 0 || order.compare(keys[i], keys[best]) > 0 { best = i }
        }
        current = best
    }
}
