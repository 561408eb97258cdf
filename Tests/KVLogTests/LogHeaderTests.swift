import KVBase
import KVFileSystem
import KVLog
import Testing

@Suite("Log file header")
struct LogHeaderTests {
    let records: [UInt8] = LogFixture.physical(type: 1, [1, 2, 3])

    func read(_ bytes: [UInt8], expecting logNumber: UInt64? = 7) throws -> [RecoveryMode: LogFixture.ReadResult] {
        let fs = try LogFixture.makeFileSystem()
        try LogFixture.store(bytes, in: fs)
        var results: [RecoveryMode: LogFixture.ReadResult] = [:]
        for mode in [RecoveryMode.strict, .tolerateTornTail, .skipCorrupt] {
            results[mode] = try LogFixture.readAll(fs, expectedLogNumber: logNumber, mode: mode)
        }
        return results
    }

    @Test func writerRecordsTheLogNumber() throws {
        let fs = try LogFixture.makeFileSystem()
        try LogFixture.write([[1]], to: fs, logNumber: 0xDEAD_BEEF_0042)
        let bytes = try fs.readFile(LogFixture.path())
        #expect(Array(bytes[0..<LogFormat.fileHeaderRecordSize]) == LogFixture.fileHeader(logNumber: 0xDEAD_BEEF_0042))
        let result = try LogFixture.readAll(fs, expectedLogNumber: nil, mode: .strict)
        #expect(result.reader.logNumber == 0xDEAD_BEEF_0042)
        #expect(result.records == [[1]])
    }

    @Test func wrongMagicIsCorruption() throws {
        for (mode, result) in try read(LogFixture.fileHeader(magic: Array("LDBG".utf8)) + records) {
            #expect(corruptionOffset(result.error, path: LogFixture.path()) == 0, "\(mode)")
            #expect(result.records.isEmpty, "\(mode)")
        }
    }

    @Test(arguments: [0 as UInt32, 2, 0xFFFF_FFFF])
    func unsupportedVersion(version: UInt32) throws {
        for (mode, result) in try read(LogFixture.fileHeader(version: version) + records) {
            #expect(result.error == .unsupportedFormat(file: LogFixture.path(), version: version), "\(mode)")
            #expect(result.records.isEmpty, "\(mode)")
        }
    }

    @Test func wrongLogNumberIsCorruption() throws {
        for (mode, result) in try read(LogFixture.fileHeader(logNumber: 6) + records, expecting: 7) {
            #expect(corruptionOffset(result.error, path: LogFixture.path()) == 0, "\(mode)")
            #expect(result.records.isEmpty, "\(mode)")
        }
        for (mode, result) in try read(LogFixture.fileHeader(logNumber: 6) + records, expecting: nil) {
            #expect(result.error == nil, "\(mode)")
            #expect(result.reader.logNumber == 6, "\(mode)")
            #expect(result.records == [[1, 2, 3]], "\(mode)")
        }
    }

    @Test func missingHeaderIsCorruption() throws {
        for (mode, result) in try read(records + records) {
            #expect(corruptionOffset(result.error, path: LogFixture.path()) == 0, "\(mode)")
        }
    }

    @Test func headerOfTheWrongSizeIsCorruption() throws {
        var payload = Array("SHLG".utf8)
        payload.appendFixed32(1)
        payload.appendFixed32(7)
        for (mode, result) in try read(LogFixture.physical(type: 5, payload) + records) {
            #expect(corruptionOffset(result.error, path: LogFixture.path()) == 0, "\(mode)")
        }
    }

    @Test func emptyFile() throws {
        let results = try read([])
        #expect(corruptionOffset(results[.strict]!.error, path: LogFixture.path()) == 0)
        for mode in [RecoveryMode.tolerateTornTail, .skipCorrupt] {
            #expect(results[mode]!.error == nil, "\(mode)")
            #expect(results[mode]!.records.isEmpty, "\(mode)")
            #expect(results[mode]!.reader.logNumber == nil, "\(mode)")
        }
    }

    /// A damaged header before valid records: corruption, except that salvage reads on
    /// (without a log number to check).
    @Test func damagedHeader() throws {
        var bytes = LogFixture.fileHeader() + records
        bytes[10] ^= 0x01
        let results = try read(bytes)
        #expect(corruptionOffset(results[.strict]!.error, path: LogFixture.path()) == 0)
        #expect(corruptionOffset(results[.tolerateTornTail]!.error, path: LogFixture.path()) == 0)
        #expect(results[.skipCorrupt]!.error == nil)
        #expect(results[.skipCorrupt]!.reader.logNumber == nil)
        #expect(results[.skipCorrupt]!.reader.skippedRegions == 1)
    }
}
