import KVBase
import KVFileSystem
import KVLog

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Shared fixtures for the log tests: files on a ``MemoryFileSystem``, deterministic payloads,
/// hand-built physical records and an independent parse of a pristine log's layout.
enum LogFixture {
    static let directory = "/logs"
    static let block = LogFormat.blockSize

    static func path(_ logNumber: UInt64 = 7) -> String {
        joinPath(directory, "\(logNumber).log")
    }

    /// A seed for randomized tests: `SHALE_TEST_SEED` from the environment when set (to
    /// replay a failure), otherwise a fresh random one. Tests print it.
    static func seed() -> UInt64 {
        if let raw = getenv("SHALE_TEST_SEED"), let value = UInt64(String(cString: raw)) { return value }
        return UInt64.random(in: 0...UInt64.max)
    }

    /// `size` bytes derived from `seed`; distinct seeds give distinct payloads.
    static func payload(size: Int, seed: UInt64) -> [UInt8] {
        var rng = SplitMix64(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(size))
        var out = [UInt8](repeating: 0, count: size)
        var i = 0
        while i < size {
            var word = rng.next()
            for _ in 0..<8 where i < size {
                out[i] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                i += 1
            }
        }
        return out
    }

    static func payloads(_ sizes: [Int], seed: UInt64 = 1) -> [[UInt8]] {
        sizes.enumerated().map { payload(size: $0.element, seed: seed &+ UInt64($0.offset)) }
    }

    static func makeFileSystem() throws -> MemoryFileSystem {
        let fs = MemoryFileSystem()
        try fs.createDirectory(directory)
        return fs
    }

    /// Writes `records` to a new log and returns the end offset of each record.
    @discardableResult
    static func write(
        _ records: [[UInt8]], to fs: MemoryFileSystem, path: String = path(), logNumber: UInt64 = 7
    ) throws -> [UInt64] {
        let writer = try LogWriter(file: try fs.createWritable(path), logNumber: logNumber)
        var ends: [UInt64] = []
        for r in records {
            try writer.addRecord(r)
            ends.append(writer.size)
        }
        try writer.close()
        return ends
    }

    /// Replaces the file at `path` with exactly `bytes`.
    static func store(_ bytes: [UInt8], in fs: MemoryFileSystem, path: String = path()) throws {
        let file = try fs.createWritable(path)
        try file.append(bytes)
        try file.close()
    }

    struct ReadResult {
        var records: [[UInt8]]
        var error: KVError?
        var reader: LogReader
    }

    /// Reads every record of the file, stopping at the first error.
    static func readAll(
        _ fs: MemoryFileSystem, path: String = path(), expectedLogNumber: UInt64? = 7, mode: RecoveryMode
    ) throws -> ReadResult {
        readAll(try fs.openReadable(path), expectedLogNumber: expectedLogNumber, mode: mode)
    }

    static func readAll(_ file: any ReadableFile, expectedLogNumber: UInt64? = 7, mode: RecoveryMode) -> ReadResult {
        var reader = LogReader(file: file, expectedLogNumber: expectedLogNumber, mode: mode)
        var records: [[UInt8]] = []
        do {
            while let r = try reader.next() { records.append(r) }
            return ReadResult(records: records, error: nil, reader: reader)
        } catch {
            return ReadResult(records: records, error: error, reader: reader)
        }
    }

    /// A physical record with a correct checksum, built by hand.
    static func physical(type: UInt8, _ payload: [UInt8]) -> [UInt8] {
        let crc = CRC32C.mask(CRC32C.checksum([type] + payload))
        var out: [UInt8] = []
        out.appendFixed32(crc)
        out.append(UInt8(payload.count & 0xFF))
        out.append(UInt8(payload.count >> 8))
        out.append(type)
        return out + payload
    }

    /// A file header record, built by hand.
    static func fileHeader(magic: [UInt8] = Array("SHLG".utf8), version: UInt32 = 1, logNumber: UInt64 = 7) -> [UInt8] {
        var payload = magic
        payload.appendFixed32(version)
        payload.appendFixed64(logNumber)
        return physical(type: 5, payload)
    }

    /// One physical record of a pristine log.
    struct Extent {
        var start: Int
        var length: Int  // header included
        var type: UInt8
        /// Index of the logical record it belongs to; -1 for the file header.
        var record: Int
        var end: Int { start + length }
        var block: Int { start / LogFixture.block }
    }

    /// Parses the physical layout of an undamaged log, independently of `LogReader`.
    static func layout(_ bytes: [UInt8]) -> [Extent] {
        var extents: [Extent] = []
        var pos = 0
        var record = -1
        while pos < bytes.count {
            if block - pos % block < LogFormat.headerSize {
                pos += block - pos % block
                continue
            }
            let length = Int(bytes[pos + 4]) | Int(bytes[pos + 5]) << 8
            let type = bytes[pos + 6]
            if type == 1 || type == 2 { record += 1 }
            extents.append(
                Extent(start: pos, length: LogFormat.headerSize + length, type: type, record: type == 5 ? -1 : record))
            pos += LogFormat.headerSize + length
        }
        return extents
    }

    /// Whether `part` appears in `whole` in order (not necessarily adjacent).
    static func isSubsequence(_ part: [[UInt8]], of whole: [[UInt8]]) -> Bool {
        var i = 0
        for r in whole where i < part.count && part[i] == r { i += 1 }
        return i == part.count
    }
}

/// The corruption offset of an error, or nil when it is not a corruption of `path`.
func corruptionOffset(_ error: KVError?, path: String) -> UInt64? {
    if case .corruption(let file, let offset, _)? = error, file == path { return offset }
    return nil
}
