// libFuzzer target for the record log reader (KVLog.LogReader: WAL and MANIFEST files) and the
// write-batch decoder the WAL replay runs on each record (KVEngine.WriteBatch.decode).
//
// Input layout: byte 0 = flags (bit 0: recompute every physical record's checksum first, so
// the fuzzer reaches the fragment, header and batch parsers instead of stopping at checksum
// mismatches; bit 1: require log number 7 in the file header), the rest = the log file.
//
// Beyond "no crash, no sanitizer report, no hang", the three recovery modes must agree on
// what they can read: the records strict mode returns before it stops are a prefix of what
// tolerateTornTail returns, which are a prefix of what skipCorrupt returns.
//
// `SHALE_FUZZ_SEEDS=DIR` writes the seed corpus to DIR and exits (Tools/fuzz.sh seeds).
// Built only by Tools/fuzz.sh (SHALE_FUZZ=1 swift build -Xswiftc -sanitize=fuzzer,address).

import FuzzSupport
import KVBase
import KVEngine
import KVFileSystem
import KVLog

#if canImport(Glibc)
import Glibc
#endif

let blockSize = 32768
let headerSize = 7

/// Rewrites the checksum of every physical record that fits its block.
func fixChecksums(_ bytes: inout [UInt8]) {
    var pos = 0
    while pos + headerSize <= bytes.count {
        let blockEnd = min((pos / blockSize + 1) * blockSize, bytes.count)
        if blockEnd - pos < headerSize {
            pos = blockEnd
            continue
        }
        let length = Int(bytes[pos + 4]) | Int(bytes[pos + 5]) << 8
        let end = pos + headerSize + length
        if end > blockEnd { break }
        let crc = bytes.withUnsafeBytes { p in
            CRC32C.mask(CRC32C.checksum(UnsafeRawBufferPointer(rebasing: p[(pos + 6)..<end])))
        }
        for i in 0..<4 { bytes[pos + i] = UInt8(truncatingIfNeeded: crc >> (8 * i)) }
        pos = end
    }
}

/// Reads every record in `mode`; returns the records read before the end or the error.
func readAll(_ file: any ReadableFile, mode: RecoveryMode, expected: UInt64?) -> [[UInt8]] {
    var reader = LogReader(file: file, expectedLogNumber: expected, mode: mode)
    var records: [[UInt8]] = []
    do throws(KVError) {
        while records.count < 100_000, let record = try reader.next() {
            records.append(record)
            // What WAL replay does with a record: validate the batch, then walk it.
            let offset = reader.lastRecordOffset
            record.withUnsafeBytes { p in
                do throws(KVError) {
                    try WriteBatch.decode(p, file: file.path, offset: offset) { kind, key, value in
                        if !(key.count <= p.count && value.count <= p.count && (kind == .value || value.isEmpty)) { fail("a batch record overruns its record") }
                    }
                } catch {
                    if case .corruption(let f, _, _) = error, f != file.path { fail("an error names \(f)") }
                }
            }
        }
    } catch {
        if case .corruption(let f, _, _) = error, f != file.path { fail("an error names \(f)") }
    }
    return records
}

func isPrefix(_ a: [[UInt8]], of b: [[UInt8]]) -> Bool {
    a.count <= b.count && zip(a, b).allSatisfy { $0 == $1 }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWAL(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size >= 1 else { return 0 }
    let flags = data[0]
    var bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    if flags & 1 != 0 { fixChecksums(&bytes) }
    let fs = MemoryFileSystem()
    do throws(KVError) {
        try fs.createDirectory("/w")
        let w = try fs.createWritable("/w/000007.log")
        try w.append(bytes)
        try w.close()
        let file = try fs.openReadable("/w/000007.log")
        let expected: UInt64? = flags & 2 != 0 ? 7 : nil
        let strict = readAll(file, mode: .strict, expected: expected)
        let tolerant = readAll(file, mode: .tolerateTornTail, expected: expected)
        let salvage = readAll(file, mode: .skipCorrupt, expected: expected)
        if !isPrefix(strict, of: tolerant) { fail("strict read \(strict.count) records, tolerateTornTail \(tolerant.count), not a prefix") }
        if !isPrefix(tolerant, of: salvage) { fail("tolerateTornTail read \(tolerant.count) records, skipCorrupt \(salvage.count), not a prefix") }
    } catch {
        fail("in-memory file system: \(error)")
    }
    return 0
}

// MARK: seed corpus

func batch(sequence: UInt64, _ ops: [(String, String?)]) -> [UInt8] {
    var out: [UInt8] = []
    out.appendFixed64(sequence)
    out.appendFixed32(UInt32(ops.count))
    for (k, v) in ops {
        out.append(v == nil ? 0 : 1)
        out.appendVarint(UInt64(k.utf8.count))
        out.append(contentsOf: Array(k.utf8))
        if let v {
            out.appendVarint(UInt64(v.utf8.count))
            out.append(contentsOf: Array(v.utf8))
        }
    }
    return out
}

func writeSeeds(_ dir: String) throws(KVError) {
    let mem = MemoryFileSystem()
    try mem.createDirectory("/s")
    func log(_ records: [[UInt8]]) throws(KVError) -> [UInt8] {
        let f = try mem.createWritable("/s/000007.log")
        let w = try LogWriter(file: f, logNumber: 7)
        for r in records { try w.addRecord(r) }
        try w.flush()
        try f.close()
        return try mem.readFile("/s/000007.log")
    }
    let small = [batch(sequence: 1, [("a", "1"), ("b", "2")]), batch(sequence: 3, [("a", nil)]), batch(sequence: 4, [])]
    var seeds: [(String, [UInt8])] = []
    seeds.append(("empty-log", [0] + (try log([]))))
    seeds.append(("three-batches", [2] + (try log(small))))
    seeds.append(("three-batches-fix", [3] + (try log(small))))
    let long = batch(sequence: 10, [("big", String(repeating: "x", count: 40_000)), ("k", "v")])
    seeds.append(("fragmented-fix", [1] + (try log([long] + small))))
    var torn = try log(small)
    torn.removeLast(5)
    seeds.append(("torn-tail", [0] + torn))
    let posix = POSIXFileSystem()
    try posix.createDirectory(dir)
    for (name, bytes) in seeds { try posix.writeFileAtomically(joinPath(dir, name), bytes) }
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> CInt {
    if let dir = getenv("SHALE_FUZZ_SEEDS") {
        do throws(KVError) {
            try writeSeeds(String(cString: dir))
        } catch {
            fail("writing seeds: \(error)")
        }
        exit(0)
    }
    return 0
}

// MARK: entry point

/// The executable's entry point in debug builds (see `runFuzzer`).
@_cdecl("FuzzWAL_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzWAL)
}
