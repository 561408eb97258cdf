import KVBase

extension TableReader {
    /// Reads every block of the table from the file (bypassing the block cache) and checks
    /// every checksum, every entry, the key order inside and across data blocks, that each
    /// block's keys stay at or below its index key, that data blocks are contiguous, and that
    /// the entry count matches the properties.
    ///
    /// - Throws: ``KVError/corruption(file:offset:reason:)`` naming the first bad block, or an
    ///   I/O error.
    public func verify() throws(KVError) {
        let path = file.path
        let footerBytes = try file.readExactly(at: blocksEnd, count: TableFormat.footerSize)
        let footer = try withBytes(footerBytes) { (b) throws(KVError) in try Footer.decode(b, file: path, offset: blocksEnd) }
        let meta = try Block.make(owning: readBlockContents(file, footer.metaindex, limit: blocksEnd), file: path, offset: footer.metaindex.offset)
        var metaCursor = BlockCursor(block: meta, order: .bytewise)
        try metaCursor.seekToFirst()
        while metaCursor.isValid {
            if let handle = BlockHandle.decodeExactly(metaCursor.value) {
                let contents = try readBlockContents(file, handle, limit: blocksEnd)
                contents.pointer.deallocate()
            }
            try metaCursor.next()
        }
        let index = try Block.make(owning: readBlockContents(file, footer.index, limit: blocksEnd), file: path, offset: footer.index.offset)
        var indexCursor = BlockCursor(block: index, order: keyOrder)
        var data = BlockCursor(order: keyOrder)
        var previous: [UInt8] = []
        var entries: UInt64 = 0
        var expectedOffset: UInt64 = 0
        try indexCursor.seekToFirst()
        while indexCursor.isValid {
            let handle = try dataHandle(indexCursor.value)
            guard handle.offset == expectedOffset else {
                throw .corruption(file: path, offset: handle.offset, reason: "data block does not start where the previous one ended (\(expectedOffset))")
            }
            expectedOffset = handle.offset + handle.size + UInt64(TableFormat.blockTrailerSize)
            let block = try Block.make(owning: readBlockContents(file, handle, limit: dataEnd), file: path, offset: handle.offset)
            data.reset(block)
            try data.seekToFirst()
            guard data.isValid else {
                throw .corruption(file: path, offset: handle.offset, reason: "empty data block")
            }
            while data.isValid {
                let outOfOrder = entries > 0 && previous.withUnsafeBytes { compareKeys(keyOrder, $0, data.key) >= 0 }
                if outOfOrder || compareKeys(keyOrder, data.key, indexCursor.key) > 0 {
                    throw .corruption(file: path, offset: handle.offset, reason: "data block keys out of order")
                }
                previous.removeAll(keepingCapacity: true)
                previous.append(contentsOf: data.key)
                entries += 1
                try data.next()
            }
            try indexCursor.next()
        }
        guard expectedOffset == dataEnd else {
            throw .corruption(file: path, offset: expectedOffset, reason: "data blocks end at \(expectedOffset), metadata starts at \(dataEnd)")
        }
        guard entries == properties.entries else {
            throw .corruption(file: path, offset: footer.index.offset, reason: "index covers \(entries) entries, properties say \(properties.entries)")
        }
    }
}
