import KVBase

/// Merges sorted child iterators into one sorted stream (internal-key order), as LevelDB's
/// merging iterator does: a linear scan for the smallest (forward) or largest (backward)
/// child — the number of children is small (memtables + L0 tables + one per level).
///
/// Entries equal under the order may come from several children; the database iterator
/// above resolves versions. Changing direction re-seeks every other child around the
/// current key.
final class MergingIterator: InternalIterator {
    private let children: [any InternalIterator]
    private var current: Int = -1
    private var forward = true
    private let order: KeyOrder

    init(_ children: [any InternalIterator], order: KeyOrder = .internalKey) {
        self.children = children
        self.order = order
    }

    var isValid: Bool { current >= 0 }
    var key: UnsafeRawBufferPointer { children[current].key }
    var value: UnsafeRawBufferPointer { children[current].value }

    func seekToFirst() throws(KVError) {
        for c in children { try c.seekToFirst() }
        forward = true
        findSmallest()
    }

    func seekToLast() throws(KVError) {
        for c in children { try c.seekToLast() }
        forward = false
        findLargest()
    }

    func seek(_ target: UnsafeRawBufferPointer) throws(KVError) {
        for c in children { try c.seek(target) }
        forward = true
        findSmallest()
    }

    func next() throws(KVError) {
        if !forward {
            // Every other child must be positioned after the current key.
            let k = Array(key)
            try k.withUnsafeBytes { (kp) -> Result<Void, KVError> in
                Result { () throws(KVError) in
                    for (i, c) in children.enumerated() where i != current {
                        try c.seek(kp)
                        if c.isValid && order.compare(kp, c.key) == 0 { try c.next() }
                    }
                }
            }.get()
            forward = true
        }
        try children[current].next()
        findSmallest()
    }

    func prev() throws(KVError) {
        if forward {
            // Every other child must be positioned before the current key.
            let k = Array(key)
            try k.withUnsafeBytes { (kp) -> Result<Void, KVError> in
                Result { () throws(KVError) in
                    for (i, c) in children.enumerated() where i != current {
                        try c.seek(kp)
                        if c.isValid { try c.prev() } else { try c.seekToLast() }
                    }
                }
            }.get()
            forward = false
        }
        try children[current].prev()
        findLargest()
    }

    private func findSmallest() {
        var best = -1
        for i in children.indices where children[i].isValid {
            if best < 0 || order.compare(children[i].key, children[best].key) < 0 { best = i }
        }
        current = best
    }

    private func findLargest() {
        var best = -1
        for i in children.indices.reversed() where children[i].isValid {
            if best < 0 || order.compare(children[i].key, children[best].key) > 0 { best = i }
        }
        current = best
    }
}
