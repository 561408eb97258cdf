// libFuzzer target for the SSTable reader (KVTable.TableReader): open, iterate both ways,
// seek, point gets, bloom probes, verify, cache warming.
//
// Input layout: byte 0 = flags (bit 0: repair checksums first — the footer's, and those of
// every block the footer, metaindex and (uncompressed) index reach — so the fuzzer gets past checksum
// mismatches into the block, filter, properties and LZ4 parsers; bit 1: bytewise key order;
// bit 2: read through a block cache), the rest = the table file.
//
// Whatever the bytes, the reader must fail with a KVError naming the file or return entries;
// never crash, trip a sanitizer or loop without end.
//
// `SHALE_FUZZ_SEEDS=DIR` writes the seed corpus to DIR and exits (Tools/fuzz.sh seeds).
// Built only by Tools/fuzz.sh (SHALE_FUZZ=1 swift build -Xswiftc -sanitize=fuzzer,address).

import FuzzSupport
import KVBase
import KVCache
import KVFileSystem
import KVTable

#if canImport(Glibc)
import Glibc
#endif

/// Keeps the digest of everything read observable, so the reads are not optimized away.
nonisolated(unsafe) var digestSink: UInt32 = 0

let footerSize = 48
let trailerSize = 5

struct Handle {
    var offset: Int
    var size: Int
}

func varint(_ b: [UInt8], _ pos: inout Int, limit: Int) -> UInt64? {
    var result: UInt64 = 0
    var shift: UInt64 = 0
    while pos < limit && shift < 64 {
        let byte = b[pos]
        pos += 1
        result |= UInt64(byte & 0x7F) << shift
        if byte & 0x80 == 0 { return result }
        shift += 7
    }
    return nil
}

func handle(_ b: [UInt8], _ pos: inout Int, limit: Int) -> Handle? {
    guard let o = varint(b, &pos, limit: limit), let s = varint(b, &pos, limit: limit),
        o < UInt64(b.count), s < UInt64(b.count)
    else { return nil }
    return Handle(offset: Int(o), size: Int(s))
}

func put32(_ b: inout [UInt8], _ at: Int, _ v: UInt32) {
    for i in 0..<4 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) }
}

/// Rewrites the trailer checksum of the block at `h`; returns its bytes when it is stored
/// uncompressed (so its entries can be followed), nil otherwise.
func fixBlock(_ b: inout [UInt8], _ h: Handle, limit: Int) -> [UInt8]? {
    guard h.offset + h.size + trailerSize <= limit else { return nil }
    let crc = b.withUnsafeBytes { p in
        CRC32C.mask(CRC32C.checksum(UnsafeRawBufferPointer(rebasing: p[h.offset..<(h.offset + h.size + 1)])))
    }
    put32(&b, h.offset + h.size + 1, crc)
    return b[h.offset + h.size] == 0 ? Array(b[h.offset..<(h.offset + h.size)]) : nil
}

/// The values of a block's entries (format at the top of KVTable/BlockBuilder.swift).
func blockValues(_ block: [UInt8]) -> [[UInt8]] {
    guard block.count >= 4 else { return [] }
    let n = Int(block[block.count - 4]) | Int(block[block.count - 3]) << 8 | Int(block[block.count - 2]) << 16 | Int(block[block.count - 1]) << 24
    guard n >= 1, n <= (block.count - 4) / 4 else { return [] }
    let end = block.count - 4 - 4 * n
    var pos = 0
    var values: [[UInt8]] = []
    while pos < end && values.count < 10_000 {
        guard varint(block, &pos, limit: end) != nil, let unshared = varint(block, &pos, limit: end),
            let vlen = varint(block, &pos, limit: end), unshared <= UInt64(end - pos), vlen <= UInt64(end - pos) - unshared
        else { break }
        pos += Int(unshared)
        values.append(Array(block[pos..<(pos + Int(vlen))]))
        pos += Int(vlen)
    }
    return values
}

/// Recomputes the checksums a reader checks, following the footer's handles.
func fixChecksums(_ b: inout [UInt8]) {
    guard b.count >= footerSize else { return }
    let footer = b.count - footerSize
    var pos = footer
    guard let meta = handle(b, &pos, limit: footer + 32), let index = handle(b, &pos, limit: footer + 32) else { return }
    let crc = b.withUnsafeBytes { p in CRC32C.mask(CRC32C.checksum(UnsafeRawBufferPointer(rebasing: p[footer..<(footer + 36)]))) }
    put32(&b, footer + 36, crc)
    for h in [meta, index] {
        guard let block = fixBlock(&b, h, limit: footer) else { continue }
        for v in blockValues(block) {
            var q = 0
            if let inner = handle(v, &q, limit: v.count) { _ = fixBlock(&b, inner, limit: footer) }
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTable(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size >= 1 else { return 0 }
    let flags = data[0]
    var bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    if flags & 1 != 0 { fixChecksums(&bytes) }
    let fs = MemoryFileSystem()
    let path = "/t/000009.sst"
    let file: any ReadableFile
    do throws(KVError) {
        try fs.createDirectory("/t")
        let w = try fs.createWritable(path)
        try w.append(bytes)
        try w.close()
        file = try fs.openReadable(path)
    } catch {
        fail("in-memory file system: \(error)")
    }
    let order: KeyOrder = flags & 2 != 0 ? .bytewise : .internalKey
    let cache: ShardedLRUCache<BlockCacheKey, Block>? = flags & 4 != 0 ? ShardedLRUCache(capacity: 1 << 20) : nil
    func named(_ e: KVError) {
        switch e {
        case .corruption(let f, _, _), .unsupportedFormat(let f, _): if f != path { fail("an error names \(f)") }
        case .invalidArgument: break
        default: fail("unexpected error \(e)")
        }
    }
    let reader: TableReader
    do throws(KVError) {
        reader = try TableReader.open(file: file, fileNumber: 9, options: TableOptions(keyOrder: order), blockCache: cache)
    } catch {
        named(error)
        return 0
    }
    // Every byte of every key and value returned is read (the sanitizer checks those reads).
    var keys: [[UInt8]] = []
    var digest: UInt32 = 0
    do throws(KVError) {
        let it = reader.makeIterator()
        try it.seekToFirst()
        while it.isValid && keys.count < 50_000 {
            keys.append(Array(it.key))
            digest = CRC32C.update(digest, it.value)
            try it.next()
        }
    } catch {
        named(error)
    }
    do throws(KVError) {
        let it = reader.makeIterator(fillCache: false)
        try it.seekToLast()
        var n = 0
        while it.isValid && n < 50_000 {
            digest = CRC32C.update(CRC32C.update(digest, it.key), it.value)
            n += 1
            try it.prev()
        }
    } catch {
        named(error)
    }
    // Lookup keys of an internal-key table are internal keys (at least the 8-byte trailer);
    // the table's own keys may be anything when the fuzzer forged the blocks.
    let probes = keys.prefix(32) + [Array(repeating: 0, count: 8), Array(repeating: 0xFF, count: 10), Array(repeating: 0x61, count: 9)]
    for k in probes where order == .bytewise || k.count >= 8 {
        do throws(KVError) {
            _ = try reader.get(k)
            let it = reader.makeIterator()
            try it.seek(k)
            if it.isValid { try it.next() }
            if k.count >= 8 { _ = reader.mayContain(userKey: Array(k.dropLast(8))) }
            _ = reader.approximateOffset(of: k)
        } catch {
            named(error)
        }
    }
    do throws(KVError) { try reader.verify() } catch { named(error) }
    do throws(KVError) {
        _ = try reader.warmBlockCache(offsets: Set([0, 1, 17] + keys.indices.prefix(4).map { UInt64($0) * 100 }))
    } catch {
        named(error)
    }
    digestSink = digest
    return 0
}

// MARK: seed corpus

func table(_ options: TableOptions, _ entries: [([UInt8], [UInt8])]) throws(KVError) -> [UInt8] {
    let mem = MemoryFileSystem()
    try mem.createDirectory("/s")
    let f = try mem.createWritable("/s/t.sst")
    let builder = TableBuilder(file: f, options: options)
    for (k, v) in entries { try builder.add(k, v) }
    _ = try builder.finish()
    try f.close()
    return try mem.readFile("/s/t.sst")
}

func internalKey(_ user: String, _ seq: UInt64, _ kind: ValueKind = .value) -> [UInt8] {
    var k = Array(user.utf8)
    k.appendFixed64(packTrailer(seq, kind))
    return k
}

func writeSeeds(_ dir: String) throws(KVError) {
    var seeds: [(String, [UInt8])] = []
    let few = (0..<20).map { i in (internalKey("key\(1000 + i)", UInt64(100 - i), i % 5 == 4 ? .deletion : .value), Array("value-\(i)".utf8)) }
    let many = (0..<300).map { i in (internalKey("k\(10_000 + i * 7)", 5), Array(String(repeating: "abc\(i % 10)", count: 1 + i % 6).utf8)) }
    let plain = (0..<40).map { i in (Array("b\(100 + i)".utf8), Array("v\(i)".utf8)) }
    seeds.append(("empty-fix", [1] + (try table(TableOptions(compression: .none), []))))
    seeds.append(("few-uncompressed-fix", [1] + (try table(TableOptions(blockSize: 256, compression: .none), few))))
    seeds.append(("few-uncompressed-cache", [4] + (try table(TableOptions(blockSize: 256, compression: .none), few))))
    seeds.append(("many-lz4-fix", [5] + (try table(TableOptions(blockSize: 512, compression: .lz4), many))))
    seeds.append(("many-uncompressed-fix", [1] + (try table(TableOptions(blockSize: 1024, restartInterval: 4, compression: .none), many))))
    seeds.append(("bytewise-nobloom-fix", [3] + (try table(TableOptions(blockSize: 128, compression: .none, bloomBitsPerKey: 0, keyOrder: .bytewise), plain))))
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
@_cdecl("FuzzTable_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzTable)
}
