import KVBase
import KVFileSystem
import KVLog
import Synchronization
import Testing

@Suite("Log round trips")
struct LogRoundTripTests {
    /// Writes `records`, reads them back in every mode and checks they are identical.
    func roundTrip(_ records: [[UInt8]], _ comment: Comment? = nil) throws {
        let fs = try LogFixture.makeFileSystem()
        let ends = try LogFixture.write(records, to: fs)
        for mode in [RecoveryMode.strict, .tolerateTornTail, .skipCorrupt] {
            let result = try LogFixture.readAll(fs, mode: mode)
            #expect(result.error == nil, comment)
            #expect(result.records.count == records.count, comment)
            #expect(result.records == records, comment)
            #expect(result.reader.droppedTailBytes == 0, comment)
            #expect(result.reader.skippedBytes == 0, comment)
            #expect(result.reader.logNumber == 7, comment)
            #expect(result.reader.endOfLastRecord == (ends.last ?? UInt64(LogFormat.fileHeaderRecordSize)), comment)
        }
    }

    @Test func emptyLogHasOnlyTheHeader() throws {
        let fs = try LogFixture.makeFileSystem()
        try LogFixture.write([], to: fs)
        #expect(try fs.fileSize(LogFixture.path()) == UInt64(LogFormat.fileHeaderRecordSize))
        try roundTrip([])
    }

    @Test func emptyRecords() throws {
        try roundTrip([[]])
        try roundTrip([[], [], [1], []])
    }

    @Test func smallRecords() throws {
        try roundTrip(LogFixture.payloads([1, 2, 3, 10, 100, 1000, 5000]))
    }

    /// Sizes that end a record exactly at a block end, or fill whole blocks with fragments.
    @Test(arguments: [
        LogFormat.blockSize - LogFormat.fileHeaderRecordSize - LogFormat.headerSize,
        LogFormat.maxFragmentSize,
        2 * LogFormat.maxFragmentSize,
        3 * LogFormat.maxFragmentSize,
        LogFormat.blockSize,
    ])
    func blockFillingSizes(size: Int) throws {
        try roundTrip(LogFixture.payloads([size, size, 0, 5, size]), "size \(size)")
    }

    /// Records spanning one, two and many blocks.
    @Test(arguments: [40_000, 65_600, 100_000, 1_000_000])
    func multiBlockRecords(size: Int) throws {
        try roundTrip(LogFixture.payloads([10, size, 3, size]), "size \(size)")
    }

    /// After the first record, `leftover` bytes (0...8) remain in block 0, so the next header
    /// fits exactly, barely, or not at all (zero trailer).
    @Test(arguments: 0...8)
    func headerStraddlesBlockEnd(leftover: Int) throws {
        let first = LogFormat.blockSize - LogFormat.fileHeaderRecordSize - LogFormat.headerSize - leftover
        try roundTrip(LogFixture.payloads([first, 0]), "leftover \(leftover)")
        try roundTrip(LogFixture.payloads([first, 1, 2]), "leftover \(leftover)")
        try roundTrip(LogFixture.payloads([first, 40_000, 7]), "leftover \(leftover)")
        // The same in the second block, after a record of one block's size that ends
        // with a LAST fragment early in block 1.
        let big = LogFormat.blockSize
        let bigEnd = LogFormat.blockSize + LogFormat.headerSize + (big - (first + leftover))
        let second = 2 * LogFormat.blockSize - bigEnd - LogFormat.headerSize - leftover
        try roundTrip(LogFixture.payloads([big, second, 9]), "leftover \(leftover)")
    }

    @Test func thousandsOfRandomSizes() throws {
        let seed = LogFixture.seed()
        print("thousandsOfRandomSizes seed \(seed)")
        var rng = SplitMix64(seed: seed)
        var sizes: [Int] = []
        for _ in 0..<3000 {
            switch rng.next() % 100 {
            case 0..<60: sizes.append(Int(rng.next() % 64))
            case 60..<90: sizes.append(Int(rng.next() % 2000))
            case 90..<99: sizes.append(Int(rng.next() % 40_000))
            default: sizes.append(Int(rng.next() % 120_000))
            }
        }
        try roundTrip(LogFixture.payloads(sizes, seed: seed), "seed \(seed)")
    }

    @Test func recordOffsetsMatchTheWriter() throws {
        let fs = try LogFixture.makeFileSystem()
        let records = LogFixture.payloads([5, 40_000, 0, 32_000, 900])
        let ends = try LogFixture.write(records, to: fs)
        var reader = LogReader(file: try fs.openReadable(LogFixture.path()), expectedLogNumber: 7, mode: .strict)
        var previousEnd = UInt64(LogFormat.fileHeaderRecordSize)
        let block = UInt64(LogFormat.blockSize)
        for i in records.indices {
            #expect(try reader.next() == records[i])
            // A record begins where the previous one ended, or at the next block when fewer
            // than seven bytes were left.
            let expectedStart = block - previousEnd % block < 7 ? (previousEnd / block + 1) * block : previousEnd
            #expect(reader.lastRecordOffset == expectedStart, "record \(i)")
            #expect(reader.endOfLastRecord == ends[i], "record \(i)")
            previousEnd = ends[i]
        }
        #expect(try reader.next() == nil)
        #expect(try reader.next() == nil)
    }

    @Test func readsOneBlockAtATime() throws {
        let fs = try LogFixture.makeFileSystem()
        let records = LogFixture.payloads([100_000, 5, 70_000])
        try LogFixture.write(records, to: fs)
        let file = CountingFile(try fs.openReadable(LogFixture.path()))
        let result = LogFixture.readAll(file, mode: .strict)
        #expect(result.error == nil)
        #expect(result.records == records)
        #expect(file.largestRead.load(ordering: .relaxed) <= LogFormat.blockSize)
        #expect(file.reads.load(ordering: .relaxed) == (Int(file.size) + LogFormat.blockSize - 1) / LogFormat.blockSize)
    }

    @Test func writerReportsItsSize() throws {
        let fs = try LogFixture.makeFileSystem()
        let writer = try LogWriter(file: try fs.createWritable(LogFixture.path()), logNumber: 3)
        #expect(writer.size == UInt64(LogFormat.fileHeaderRecordSize))
        try writer.addRecord([1, 2, 3])
        #expect(writer.size == UInt64(LogFormat.fileHeaderRecordSize + 7 + 3))
        try writer.flush()
        #expect(try fs.fileSize(LogFixture.path()) == writer.size)
        try writer.close()
    }

    @Test func newLogNeedsAnEmptyFile() throws {
        let fs = try LogFixture.makeFileSystem()
        try LogFixture.write([[1]], to: fs)
        let file = try fs.openAppendable(LogFixture.path())
        #expect(throws: KVError.self) { try LogWriter(file: file, logNumber: 7) }
    }
}

/// Wraps a readable file and records how it is read.
final class CountingFile: ReadableFile {
    let base: any ReadableFile
    let reads = Atomic<Int>(0)
    let largestRead = Atomic<Int>(0)

    init(_ base: any ReadableFile) { self.base = base }

    func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(KVError) -> Int {
        reads.add(1, ordering: .relaxed)
        largestRead.max(buffer.count, ordering: .relaxed)
        return try base.read(at: offset, into: buffer)
    }

    var size: UInt64 { base.size }
    var path: String { base.path }
}
