import KVBase
import KVFileSystem
import KVLog
import Testing

@Suite("Log damage detection")
struct LogCorruptionTests {
    /// Flips one bit at `offset` of a pristine log and checks every mode's promise:
    /// - strict: corruption of this file at the damaged physical record (nothing for a trailer);
    /// - tolerate: the records before the damaged one and a dropped tail, or corruption at the
    ///   damaged record; corruption whenever a valid record certainly follows;
    /// - skipCorrupt: written records only, in order, with everything outside the damaged
    ///   record's block intact.
    func checkFlip(
        at offset: Int, fs: MemoryFileSystem, records: [[UInt8]], layout: [LogFixture.Extent], fileSize: Int
    ) throws {
        let path = LogFixture.path()
        let mask = UInt8(1) << UInt8(offset % 8)
        fs.flipBytes(path, at: offset, mask: mask)
        defer { fs.flipBytes(path, at: offset, mask: mask) }

        let strict = try LogFixture.readAll(fs, mode: .strict)
        let tolerant = try LogFixture.readAll(fs, mode: .tolerateTornTail)
        let salvage = try LogFixture.readAll(fs, mode: .skipCorrupt)

        guard let index = layout.firstIndex(where: { $0.start <= offset && offset < $0.end }) else {
            // A block trailer carries no data.
            for result in [strict, tolerant, salvage] {
                #expect(result.error == nil, "trailer offset \(offset)")
                #expect(result.records == records, "trailer offset \(offset)")
            }
            return
        }
        let damaged = layout[index]
        let start = UInt64(damaged.start)
        let before = Array(records.prefix(max(damaged.record, 0)))

        #expect(
            corruptionOffset(strict.error, path: path) == start,
            "strict, offset \(offset): \(String(describing: strict.error))")
        #expect(strict.records == before, "strict, offset \(offset)")

        let isFinal = index == layout.count - 1
        let lastBlock = (fileSize - 1) / LogFixture.block
        let inLength = offset == damaged.start + 4 || offset == damaged.start + 5
        let mustThrow = !isFinal && (damaged.block < lastBlock || !inLength)
        if let error = tolerant.error {
            #expect(!isFinal, "tolerate, offset \(offset): damage to the final record is a torn tail")
            #expect(corruptionOffset(error, path: path) == start, "tolerate, offset \(offset): \(error)")
        } else {
            #expect(!mustThrow, "tolerate, offset \(offset): damage before valid records was swallowed")
            #expect(tolerant.records == before, "tolerate, offset \(offset)")
            #expect(tolerant.reader.droppedTailBytes > 0, "tolerate, offset \(offset)")
        }
        #expect(LogFixture.isSubsequence(tolerant.records, of: records), "tolerate, offset \(offset)")

        #expect(salvage.error == nil, "skip, offset \(offset): \(String(describing: salvage.error))")
        #expect(LogFixture.isSubsequence(salvage.records, of: records), "skip, offset \(offset)")
        // Every record that begins after the damaged block survives salvage.
        var expected: [[UInt8]] = before
        for (k, record) in records.enumerated() where k > damaged.record {
            let first = layout.first(where: { $0.record == k })!
            if first.block > damaged.block { expected.append(record) }
        }
        #expect(LogFixture.isSubsequence(expected, of: salvage.records), "skip, offset \(offset)")
        #expect(salvage.reader.skippedBytes > 0 || salvage.reader.droppedTailBytes > 0, "skip, offset \(offset)")
    }

    /// Every byte of a small single-block log.
    @Test func everyByteOfASmallLog() throws {
        let fs = try LogFixture.makeFileSystem()
        let records = LogFixture.payloads([0, 1, 10, 100, 7, 0, 300, 1000, 50, 2])
        try LogFixture.write(records, to: fs)
        let bytes = try fs.readFile(LogFixture.path())
        let layout = LogFixture.layout(bytes)
        for offset in bytes.indices {
            try checkFlip(at: offset, fs: fs, records: records, layout: layout, fileSize: bytes.count)
        }
    }

    /// A log over three blocks with a zero trailer and fragmented records: every header and
    /// trailer byte, the edges and middle of every payload, and random payload bytes.
    @Test func sampledBytesOfAMultiBlockLog() throws {
        let seed = LogFixture.seed()
        print("sampledBytesOfAMultiBlockLog seed \(seed)")
        let fs = try LogFixture.makeFileSystem()
        let fill = LogFixture.block - LogFormat.fileHeaderRecordSize - 107 - LogFormat.headerSize - 3
        let records = LogFixture.payloads([100, fill, 50_000, 20, 0, 300])
        try LogFixture.write(records, to: fs)
        let bytes = try fs.readFile(LogFixture.path())
        let layout = LogFixture.layout(bytes)
        #expect(layout.contains { $0.end == LogFixture.block - 3 }, "the layout has a 3-byte trailer")

        var offsets = Set<Int>()
        for e in layout {
            for i in 0..<min(e.length, LogFormat.headerSize + 2) { offsets.insert(e.start + i) }
            offsets.insert(e.end - 1)
            offsets.insert(e.start + e.length / 2)
        }
        for i in (LogFixture.block - 3)..<LogFixture.block { offsets.insert(i) }
        var rng = SplitMix64(seed: seed)
        for _ in 0..<100 { offsets.insert(Int(rng.next() % UInt64(bytes.count))) }
        for offset in offsets.sorted() {
            try checkFlip(at: offset, fs: fs, records: records, layout: layout, fileSize: bytes.count)
        }
    }

    /// Damage in the middle of a log, followed by valid records, is reported, not swallowed.
    @Test func midFileDamageIsReportedWhenTolerating() throws {
        let fs = try LogFixture.makeFileSystem()
        let path = LogFixture.path()
        let records = LogFixture.payloads([200, 300, 40_000, 100, 100])
        try LogFixture.write(records, to: fs)
        let layout = LogFixture.layout(try fs.readFile(path))
        let second = layout[2]  // header, record 0, record 1

        // A payload byte: the next record in the same block is found through the length.
        fs.flipBytes(path, at: second.start + 20)
        var result = try LogFixture.readAll(fs, mode: .tolerateTornTail)
        #expect(corruptionOffset(result.error, path: path) == UInt64(second.start))
        #expect(result.records == [records[0]])
        fs.flipBytes(path, at: second.start + 20)

        // A length byte: found through the next block.
        fs.flipBytes(path, at: second.start + 5, mask: 0x40)
        result = try LogFixture.readAll(fs, mode: .tolerateTornTail)
        #expect(corruptionOffset(result.error, path: path) == UInt64(second.start))
        fs.flipBytes(path, at: second.start + 5, mask: 0x40)

        // The last record of the file: a torn tail.
        let last = layout[layout.count - 1]
        fs.flipBytes(path, at: last.start + 30)
        result = try LogFixture.readAll(fs, mode: .tolerateTornTail)
        #expect(result.error == nil)
        #expect(result.records == Array(records.dropLast()))
        #expect(result.reader.droppedTailBytes == UInt64(last.length))
        #expect(result.reader.droppedTailReason != nil)
        fs.flipBytes(path, at: last.start + 30)
    }

    /// A zero-filled hole followed by valid records is damage, not a zero-filled tail.
    @Test func zeroHoleBeforeValidRecords() throws {
        let fs = try LogFixture.makeFileSystem()
        let path = LogFixture.path()
        let records = LogFixture.payloads([100, 100, 40_000, 10])
        try LogFixture.write(records, to: fs)
        var bytes = try fs.readFile(path)
        let layout = LogFixture.layout(bytes)
        for i in layout[2].start..<layout[2].end { bytes[i] = 0 }
        try LogFixture.store(bytes, in: fs)
        for mode in [RecoveryMode.strict, .tolerateTornTail] {
            let result = try LogFixture.readAll(fs, mode: mode)
            #expect(corruptionOffset(result.error, path: path) == UInt64(layout[2].start), "\(mode)")
            #expect(result.records == [records[0]], "\(mode)")
        }
        let salvage = try LogFixture.readAll(fs, mode: .skipCorrupt)
        #expect(salvage.error == nil)
        #expect(salvage.records == [records[0], records[3]])
        #expect(salvage.reader.skippedRegions >= 1)
    }

    /// Fragments out of sequence, with valid checksums.
    @Test func fragmentSequenceErrors() throws {
        let fs = try LogFixture.makeFileSystem()
        let path = LogFixture.path()
        let header = LogFixture.fileHeader()
        let h = header.count
        let a = LogFixture.physical(type: 1, [1, 2, 3])
        let cases: [(name: String, bytes: [UInt8], badOffset: Int, salvaged: [[UInt8]])] = [
            ("FIRST then FULL", LogFixture.physical(type: 2, [9]) + a, h + 8, [[1, 2, 3]]),
            (
                "FIRST then FIRST",
                LogFixture.physical(type: 2, [9]) + LogFixture.physical(type: 2, [8])
                    + LogFixture.physical(type: 4, [7]) + a,
                h + 8, [[8, 7], [1, 2, 3]]
            ),
            ("MIDDLE without FIRST", LogFixture.physical(type: 3, [9]) + a, h, [[1, 2, 3]]),
            ("LAST without FIRST", LogFixture.physical(type: 4, [9]) + a, h, [[1, 2, 3]]),
            ("second file header", LogFixture.fileHeader() + a, h, [[1, 2, 3]]),
        ]
        for c in cases {
            try LogFixture.store(header + a + c.bytes, in: fs)
            for mode in [RecoveryMode.strict, .tolerateTornTail] {
                let result = try LogFixture.readAll(fs, mode: mode)
                #expect(
                    corruptionOffset(result.error, path: path) == UInt64(a.count + c.badOffset), "\(c.name), \(mode)")
                #expect(result.records == [[1, 2, 3]], "\(c.name), \(mode)")
            }
            let salvage = try LogFixture.readAll(fs, mode: .skipCorrupt)
            #expect(salvage.error == nil, "\(c.name)")
            #expect(salvage.records == [[1, 2, 3]] + c.salvaged, "\(c.name)")
            #expect(salvage.reader.skippedRegions == 1, "\(c.name)")
        }
    }

    /// A record with a valid checksum but an unknown type is never a torn write.
    @Test func unknownTypeIsCorruptionEvenAtTheEnd() throws {
        let fs = try LogFixture.makeFileSystem()
        let header = LogFixture.fileHeader()
        try LogFixture.store(header + LogFixture.physical(type: 9, [1]), in: fs)
        for mode in [RecoveryMode.strict, .tolerateTornTail] {
            let result = try LogFixture.readAll(fs, mode: mode)
            #expect(corruptionOffset(result.error, path: LogFixture.path()) == UInt64(header.count), "\(mode)")
        }
        let salvage = try LogFixture.readAll(fs, mode: .skipCorrupt)
        #expect(salvage.error == nil)
        #expect(salvage.records.isEmpty)
        #expect(salvage.reader.skippedRegions == 1)
    }

    /// Salvage keeps going after damage in an early block.
    @Test func skipCorruptSalvagesLaterBlocks() throws {
        let fs = try LogFixture.makeFileSystem()
        let path = LogFixture.path()
        let records = LogFixture.payloads([1000, 1000, 60_000, 500, 40_000, 10])
        try LogFixture.write(records, to: fs)
        let layout = LogFixture.layout(try fs.readFile(path))
        fs.flipBytes(path, at: layout[1].start + 100)
        let salvage = try LogFixture.readAll(fs, mode: .skipCorrupt)
        #expect(salvage.error == nil)
        // Record 0 and everything in block 0 after it are lost; record 2's LAST fragment in
        // block 1 is an orphan; records 3, 4 and 5 start in block 1 or later.
        #expect(salvage.records == Array(records[3...]))
        #expect(salvage.reader.skippedRegions == 2)
        #expect(salvage.reader.skippedBytes > UInt64(LogFixture.block - layout[1].start))
    }
}
