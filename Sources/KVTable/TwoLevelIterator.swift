import KVBase

/// Iterates a table: a cursor over the index block picks data blocks, a second cursor walks
/// the current data block. Empty positions in either direction move on to the neighbouring
/// block.
///
/// Invariants: when valid, the data cursor is positioned in the block named by the index
/// cursor's current entry (`dataHandle`). Any thrown error leaves the iterator invalid.
/// Not thread-safe; holds the table reader (and the current block) alive.
package final class TwoLevelIterator: InternalIterator {
    private let table: TableReader
    private let fillCache: Bool
    // Unchecked exclusivity: an iterator is used by one thread at a time and no method touches
    // these fields re-entrantly, so the dynamic check on every access would only cost time.
    @exclusivity(unchecked)
    private var index: BlockCursor
    @exclusivity(unchecked)
    private var data: BlockCursor
    @exclusivity(unchecked)
    private var dataHandle: BlockHandle?
    /// Larger reads once the iterator walks blocks in file order.
    private let readahead = Readahead()

    init(table: TableReader, fillCache: Bool) {
        self.table = table
        self.fillCache = fillCache
        index = BlockCursor(block: table.indexBlock, order: table.keyOrder)
        data = BlockCursor(order: table.keyOrder)
    }

    package var isValid: Bool { data.isValid }

    package var key: UnsafeRawBufferPointer {
        precondition(data.isValid, "key of an invalid iterator")
        return data.key
    }

    package var value: UnsafeRawBufferPointer {
        precondition(data.isValid, "value of an invalid iterator")
        return data.value
    }

    package func seekToFirst() throws(KVError) {
        try guarded { () throws(KVError) in
            try index.seekToFirst()
            try loadDataBlock()
            if data.block != nil { try data.seekToFirst() }
            try skipEmptyForward()
        }
    }

    package func seekToLast() throws(KVError) {
        try guarded { () throws(KVError) in
            try index.seekToLast()
            try loadDataBlock()
            if data.block != nil { try data.seekToLast() }
            try skipEmptyBackward()
        }
    }

    package func seek(_ target: UnsafeRawBufferPointer) throws(KVError) {
        try guarded { () throws(KVError) in
            try index.seek(target)
            try loadDataBlock()
            if data.block != nil { try data.seek(target) }
            try skipEmptyForward()
        }
    }

    package func next() throws(KVError) {
        precondition(data.isValid, "next on an invalid iterator")
        try guarded { () throws(KVError) in
            try data.next()
            try skipEmptyForward()
        }
    }

    package func prev() throws(KVError) {
        precondition(data.isValid, "prev on an invalid iterator")
        try guarded { () throws(KVError) in
            try data.prev()
            try skipEmptyBackward()
        }
    }

    // MARK: helpers

    @inline(__always)
    private func guarded(_ body: () throws(KVError) -> Void) throws(KVError) {
        do {
            try body()
        } catch {
            index.invalidate()
            clearData()
            throw error
        }
    }

    private func clearData() {
        data.reset(nil)
        dataHandle = nil
    }

    /// Points the data cursor at the block of the index cursor's entry (unpositioned), or at
    /// nothing when the index cursor is invalid.
    private func loadDataBlock() throws(KVError) {
        guard index.isValid else { return clearData() }
        let handle = try table.dataHandle(index.value)
        if handle == dataHandle, data.block != nil {
            data.invalidate()
            return
        }
        data.reset(try table.dataBlock(handle, fillCache: fillCache, readahead: readahead))
        dataHandle = handle
    }

    private func skipEmptyForward() throws(KVError) {
        while !data.isValid {
            guard index.isValid else { return clearData() }
            try index.next()
            try loadDataBlock()
            if data.block != nil { try data.seekToFirst() }
        }
    }

    private func skipEmptyBackward() throws(KVError) {
        while !data.isValid {
            guard index.isValid else { return clearData() }
            try index.prev()
            try loadDataBlock()
            if data.block != nil { try data.seekToLast() }
        }
    }
}
