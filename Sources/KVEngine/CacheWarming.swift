import KVBase
import KVFileSystem
import KVTable

// The cache-warm list, written at clean close and read (then deleted) at open:
//
//   WARM   := magic "SHWM" | version fixed32 (=1) | count fixed32
//             | (file_number fixed64 | block_offset fixed64) * count | crc fixed32
//   crc    := masked CRC32C of every preceding byte
//
// Entries are the block cache's most recently used blocks, hottest first.

enum WarmList {
    static let magic: [UInt8] = Array("SHWM".utf8)
    static let version: UInt32 = 1

    static func path(_ dir: String) -> String { joinPath(dir, "WARM") }

    static func encode(_ keys: [BlockCacheKey]) -> [UInt8] {
        var out = magic
        out.appendFixed32(version)
        out.appendFixed32(UInt32(keys.count))
        for k in keys {
            out.appendFixed64(k.fileNumber)
            out.appendFixed64(k.blockOffset)
        }
        out.appendFixed32(CRC32C.mask(CRC32C.checksum(out)))
        return out
    }

    static func decode(_ bytes: [UInt8], file: String) throws(KVError) -> [BlockCacheKey] {
        try bytes.withUnsafeBytes { p in
            Result { () throws(KVError) -> [BlockCacheKey] in
                guard p.count >= 16, Array(p[0..<4]) == magic else {
                    throw .corruption(file: file, offset: 0, reason: "not a cache-warm list")
                }
                let v = p.fixed32(at: 4)
                guard v == version else { throw .unsupportedFormat(file: file, version: v) }
                let n = Int(p.fixed32(at: 8))
                guard p.count == 12 + 16 * n + 4 else {
                    throw .corruption(file: file, offset: 8, reason: "cache-warm list length does not match its count")
                }
                let body = UnsafeRawBufferPointer(rebasing: p[0..<(12 + 16 * n)])
                guard CRC32C.mask(CRC32C.checksum(body)) == p.fixed32(at: 12 + 16 * n) else {
                    throw .corruption(file: file, offset: UInt64(12 + 16 * n), reason: "cache-warm list checksum mismatch")
                }
                return (0..<n).map { i in
                    BlockCacheKey(fileNumber: p.fixed64(at: 12 + 16 * i), blockOffset: p.fixed64(at: 20 + 16 * i))
                }
            }
        }.get()
    }
}

extension Database {
    /// Records the hottest blocks of the block cache (at clean close).
    func recordWarmList() {
        guard options.cacheWarming, let cache = tables.blockCache else { return }
        let keys = cache.hottestKeys(limit: max(1, cache.capacity / max(options.blockSize, 1)))
        guard !keys.isEmpty else { return }
        try? fs.writeFileAtomically(WarmList.path(path), WarmList.encode(keys))
    }

    /// Reads (and deletes) the warm list and preloads its blocks on a background thread.
    func startCacheWarming() {
        let file = WarmList.path(path)
        guard fs.fileExists(file) else { return }
        let keys = (try? WarmList.decode(fs.readFile(file), file: file)) ?? []
        try? fs.removeFile(file)
        guard options.cacheWarming, !keys.isEmpty, tables.blockCache != nil else { return }
        let live = state.withLock { $0.version.allFileNumbers }
        var byFile: [UInt64: Set<UInt64>] = [:]
        for k in keys where live.contains(k.fileNumber) { byFile[k.fileNumber, default: []].insert(k.blockOffset) }
        let tables = self.tables
        let done = self.warmingDone
        let plan = byFile
        startThread(name: "shale-cache-warm") {
            var loaded = 0
            for (number, offsets) in plan {
                loaded += (try? tables.reader(number).warmBlockCache(offsets: offsets)) ?? 0
            }
            done.loaded.store(loaded, ordering: .releasing)
        }
    }
}
