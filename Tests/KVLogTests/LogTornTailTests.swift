import KVBase
import KVFileSystem
import KVLog
import Testing

@Suite("Log torn tails")
struct LogTornTailTests {
    /// Cuts a copy of `bytes` at `cut` and checks that tolerate mode returns exactly the
    /// records that end at or before the cut, drops the rest, and reports no error.
    func checkCut(
        _ cut: Int, bytes: [UInt8], records: [[UInt8]], ends: [UInt64], fs: MemoryFileSystem, _ comment: String
    ) throws {
        try LogFixture.store(Array(bytes[0..<cut]), in: fs)
        let result = try LogFixture.readAll(fs, mode: .tolerateTornTail)
        let complete = ends.filter { $0 <= UInt64(cut) }.count
        #expect(result.error == nil, "\(comment) cut \(cut): \(String(describing: result.error))")
        #expect(result.records == Array(records.prefix(complete)), "\(comment) cut \(cut)")

        // The dropped bytes begin where the first incomplete record begins.
        var lastEnd = complete > 0 ? Int(ends[complete - 1]) : (cut >= LogFormat.fileHeaderRecordSize ? LogFormat.fileHeaderRecordSize : 0)
        let block = LogFixture.block
        if block - lastEnd % block < LogFormat.headerSize && cut >= (lastEnd / block + 1) * block {
            lastEnd = (lastEnd / block + 1) * block
        }
        #expect(result.reader.droppedTailBytes == UInt64(cut - lastEnd), "\(comment) cut \(cut)")
        #expect((result.reader.droppedTailReason != nil) == (cut > lastEnd), "\(comment) cut \(cut)")

        // Strict mode reports the same cut as corruption, unless it fell on a record boundary.
        let strict = try LogFixture.readAll(fs, mode: .strict)
        // Zero bytes where a header would begin read as zero-filled space, not as a cut.
        let onlyZeros = bytes[lastEnd..<max(lastEnd, cut)].allSatisfy { $0 == 0 }
        let strictFails = cut < LogFormat.fileHeaderRecordSize || (cut > lastEnd && !onlyZeros)
        #expect((strict.error != nil) == strictFails, "\(comment) cut \(cut)")
        #expect(strict.records == Array(records.prefix(complete)), "\(comment) cut \(cut)")
    }

    func writeLog(_ records: [[UInt8]]) throws -> (MemoryFileSystem, [UInt8], [UInt64]) {
        let fs = try LogFixture.makeFileSystem()
        let ends = try LogFixture.write(records, to: fs)
        return (fs, try fs.readFile(LogFixture.path()), ends)
    }

    /// Every cut inside the last record of a one-block log, and inside the file header.
    @Test func everyCutOfTheLastRecordInOneBlock() throws {
        let records = LogFixture.payloads([10, 0, 300, 700])
        let (fs, bytes, ends) = try writeLog(records)
        for cut in 0...bytes.count where cut <= LogFormat.fileHeaderRecordSize + 20 || cut >= Int(ends[2]) {
            try checkCut(cut, bytes: bytes, records: records, ends: ends, fs: fs, "one block")
        }
    }

    /// Cuts inside a last record whose fragments straddle a block boundary: every offset
    /// around the zero trailer, the block boundaries and the fragment headers, and a stride
    /// through the payloads.
    @Test func cutsOfALastRecordAcrossABlockBoundary() throws {
        let fill = LogFixture.block - LogFormat.fileHeaderRecordSize - 7 - 4 - 7 - 3
        // Record 1 leaves a 3-byte trailer; record 2 begins in block 1 and its second
        // fragment lies in block 2.
        let records = LogFixture.payloads([4, fill, LogFormat.maxFragmentSize + 1500])
        let (fs, bytes, ends) = try writeLog(records)
        let tail = Int(ends[1])
        let secondBlockEnd = 2 * LogFixture.block
        var cuts = Set(stride(from: tail, through: bytes.count, by: 211))
        cuts.formUnion(tail...(LogFixture.block + 40))
        cuts.formUnion((secondBlockEnd - 20)...(secondBlockEnd + 40))
        cuts.formUnion((bytes.count - 20)...bytes.count)
        for cut in cuts.sorted() {
            try checkCut(cut, bytes: bytes, records: records, ends: ends, fs: fs, "across blocks")
        }
    }

    /// Random cuts over a larger log with random record sizes.
    @Test func randomCutsOfABigLog() throws {
        let seed = LogFixture.seed()
        print("randomCutsOfABigLog seed \(seed)")
        var rng = SplitMix64(seed: seed)
        let sizes = (0..<300).map { _ in rng.next() % 10 == 0 ? Int(rng.next() % 40_000) : Int(rng.next() % 500) }
        let records = LogFixture.payloads(sizes, seed: seed)
        let (fs, bytes, ends) = try writeLog(records)
        for _ in 0..<30 {
            let cut = Int(rng.next() % UInt64(bytes.count + 1))
            try checkCut(cut, bytes: bytes, records: records, ends: ends, fs: fs, "seed \(seed)")
        }
    }

    /// Power loss after syncing some records and flushing more: every synced record comes
    /// back, then a prefix of the others, and nothing else.
    @Test func powerLossKeepsSyncedRecords() throws {
        let seed = LogFixture.seed()
        print("powerLossKeepsSyncedRecords seed \(seed)")
        var rng = SplitMix64(seed: seed)
        for round in 0..<40 {
            let fs = try LogFixture.makeFileSystem()
            let path = LogFixture.path()
            let writer = try LogWriter(file: try fs.createWritable(path), logNumber: 7)
            try fs.syncDirectory(LogFixture.directory)
            let synced = Int(rng.next() % 20)
            let unsynced = 1 + Int(rng.next() % 20)
            let sizes = (0..<(synced + unsynced)).map { _ in
                rng.next() % 8 == 0 ? Int(rng.next() % 70_000) : Int(rng.next() % 3000)
            }
            let records = LogFixture.payloads(sizes, seed: seed &+ UInt64(round) &* 1000)
            for r in records[..<synced] { try writer.addRecord(r) }
            try writer.sync()
            for (i, r) in records[synced...].enumerated() {
                try writer.addRecord(r)
                if i % 3 == 0 { try writer.flush() }
            }
            fs.simulatePowerLoss(tornTailSeed: rng.next())

            let result = try LogFixture.readAll(fs, mode: .tolerateTornTail)
            let comment: Comment = "seed \(seed) round \(round)"
            #expect(result.error == nil, comment)
            #expect(result.records.count >= synced, comment)
            #expect(result.records == Array(records.prefix(result.records.count)), comment)
        }
    }

    /// Power loss before the first sync can leave an empty file or a torn file header.
    @Test func powerLossBeforeTheFirstSync() throws {
        for keep in [0, 1, 6, 7, 10, LogFormat.fileHeaderRecordSize - 1] {
            let fs = try LogFixture.makeFileSystem()
            try LogFixture.write([], to: fs)
            fs.truncate(LogFixture.path(), to: keep)
            let result = try LogFixture.readAll(fs, mode: .tolerateTornTail)
            #expect(result.error == nil, "keep \(keep)")
            #expect(result.records.isEmpty, "keep \(keep)")
            #expect(result.reader.droppedTailBytes == UInt64(keep), "keep \(keep)")
            let strict = try LogFixture.readAll(fs, mode: .strict)
            #expect(corruptionOffset(strict.error, path: LogFixture.path()) == 0, "keep \(keep)")
        }
    }

    /// Zero-filled (preallocated) space after the last record is the end of data.
    @Test(arguments: [1, 7, 100, 40_000, 100_000])
    func zeroFilledTail(zeros: Int) throws {
        let records = LogFixture.payloads([10, 40_000, 5])
        let (fs, bytes, _) = try writeLog(records)
        try LogFixture.store(bytes + [UInt8](repeating: 0, count: zeros), in: fs)
        for mode in [RecoveryMode.strict, .tolerateTornTail, .skipCorrupt] {
            let result = try LogFixture.readAll(fs, mode: mode)
            #expect(result.error == nil, "\(mode), \(zeros) zeros: \(String(describing: result.error))")
            #expect(result.records == records, "\(mode), \(zeros) zeros")
            #expect(result.reader.droppedTailBytes == UInt64(zeros), "\(mode), \(zeros) zeros")
            #expect(result.reader.skippedBytes == 0, "\(mode), \(zeros) zeros")
        }
    }

    /// A FIRST fragment (and MIDDLEs) with no LAST at the end of the file is a torn tail.
    @Test func firstWithoutLastAtTheEnd() throws {
        let fs = try LogFixture.makeFileSystem()
        let path = LogFixture.path()
        let header = LogFixture.fileHeader()
        let a = LogFixture.physical(type: 1, [1, 2, 3])
        let pending = LogFixture.physical(type: 2, [4]) + LogFixture.physical(type: 3, [5])
        try LogFixture.store(header + a + pending, in: fs)
        let tolerant = try LogFixture.readAll(fs, mode: .tolerateTornTail)
        #expect(tolerant.error == nil)
        #expect(tolerant.records == [[1, 2, 3]])
        #expect(tolerant.reader.droppedTailBytes == UInt64(pending.count))
        let salvage = try LogFixture.readAll(fs, mode: .skipCorrupt)
        #expect(salvage.records == [[1, 2, 3]])
        #expect(salvage.reader.droppedTailBytes == UInt64(pending.count))
        let strict = try LogFixture.readAll(fs, mode: .strict)
        #expect(corruptionOffset(strict.error, path: path) == UInt64(header.count + a.count))
        #expect(strict.records == [[1, 2, 3]])
    }
}
