import KVBase

extension Database {
    /// Called with the mutex held after a memtable joined the immutable list.
    func memtableBecameImmutable(_ s: UnsafeMutablePointer<State>) {}
}
