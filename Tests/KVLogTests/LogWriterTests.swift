import KVBase
import KVFileSystem
import KVLog
import Testing

@Suite("Log writer: reopening and failures")
struct LogWriterTests {
    /// Closing a log, reopening it for appending and adding more records reads back as one log,
    /// whatever block offset the first part ended at. With 32711 the first part ends 3 bytes
    /// before a block boundary, so the reopened writer starts with the zero trailer.
    @Test(arguments: [0, 1, 3000, LogFormat.blockSize - 30 - 23, LogFormat.blockSize - 23 - 7 - 3, 32711, 70_000])
    func reopenAndAppend(firstSize: Int) throws {
        let fs = try LogFixture.makeFileSystem()
        let path = LogFixture.path()
        let first = LogFixture.payloads([firstSize, 17], seed: 1)
        let second = LogFixture.payloads([0, 5, 40_000, 33], seed: 2)
        let third = LogFixture.payloads([1, 2], seed: 3)
        try LogFixture.write(first, to: fs)

        for part in [second, third] {
            let writer = try LogWriter(appendingTo: try fs.openAppendable(path), logNumber: 7)
            for r in part { try writer.addRecord(r) }
            try writer.close()
        }
        for mode in [RecoveryMode.strict, .tolerateTornTail] {
            let result = try LogFixture.readAll(fs, mode: mode)
            #expect(result.error == nil, "\(mode), first \(firstSize)")
            #expect(result.records == first + second + third, "\(mode), first \(firstSize)")
            #expect(result.reader.endOfLastRecord == (try fs.fileSize(path)), "\(mode), first \(firstSize)")
        }
    }

    /// Appending to an empty file starts a new log with a header.
    @Test func appendingToAnEmptyFileWritesTheHeader() throws {
        let fs = try LogFixture.makeFileSystem()
        let writer = try LogWriter(appendingTo: try fs.openAppendable(LogFixture.path()), logNumber: 7)
        try writer.addRecord([42])
        try writer.close()
        let result = try LogFixture.readAll(fs, mode: .strict)
        #expect(result.error == nil)
        #expect(result.records == [[42]])
    }

    /// Failures of the file surface as `KVError.io` naming the file, and are latched.
    @Test(arguments: [MemoryFileSystem.Operation.write, .sync], [Int32(5), 28])
    func injectedFailure(operation: MemoryFileSystem.Operation, errno: Int32) throws {
        let fs = try LogFixture.makeFileSystem()
        let path = LogFixture.path()
        let writer = try LogWriter(file: try fs.createWritable(path), logNumber: 7)
        try fs.syncDirectory(LogFixture.directory)
        try writer.addRecord([1, 2, 3])
        try writer.sync()
        fs.inject(.init(operation, pathContains: path, errno: errno))

        try writer.addRecord(LogFixture.payload(size: 50_000, seed: 9))
        var caught: KVError?
        do {
            try writer.sync()
        } catch {
            caught = error
        }
        guard case .io(let failedPath, _, let code)? = caught else {
            Issue.record("expected an I/O error, got \(String(describing: caught))")
            return
        }
        #expect(failedPath == path)
        #expect(code == errno)

        // The failure is latched even though the injected fault has passed.
        #expect(throws: caught!) { try writer.addRecord([4]) }
        #expect(throws: caught!) { try writer.flush() }
        #expect(throws: caught!) { try writer.sync() }
        #expect(throws: caught!) { try writer.close() }

        // What was synced before the failure is still there.
        fs.simulatePowerLoss()
        let result = try LogFixture.readAll(fs, mode: .tolerateTornTail)
        #expect(result.error == nil)
        #expect(result.records.first == [1, 2, 3])
    }

    /// A failing read surfaces from the reader as the file's I/O error.
    @Test func readFailureSurfaces() throws {
        let fs = try LogFixture.makeFileSystem()
        let path = LogFixture.path()
        try LogFixture.write(LogFixture.payloads([10, 50_000, 10]), to: fs)
        fs.inject(.init(.read, pathContains: path, skip: 1, errno: 5))
        let result = try LogFixture.readAll(fs, mode: .tolerateTornTail)
        #expect(result.records.count == 1)
        guard case .io(let failedPath, _, 5)? = result.error else {
            Issue.record("expected EIO, got \(String(describing: result.error))")
            return
        }
        #expect(failedPath == path)
    }

    /// The header is only buffered by the initializer; a failing disk shows at the first flush.
    @Test func failedFirstFlush() throws {
        let fs = try LogFixture.makeFileSystem()
        let path = LogFixture.path()
        fs.inject(.init(.write, pathContains: path, errno: 28))
        let writer = try LogWriter(file: try fs.createWritable(path), logNumber: 7)
        #expect(throws: KVError.io(path: path, operation: "write (injected)", errno: 28)) { try writer.flush() }
    }
}
