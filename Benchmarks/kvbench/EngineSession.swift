#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Shale

/// One thread's handle on an in-process ``Database``. Every operation completes before it
/// returns (batch size 1).
///
/// Writes reuse one ``WriteBatch`` holding a single put or delete — exactly what
/// `Database.put` builds internally — so the hot loop does not allocate; iterator reads
/// look at keys and values in place instead of copying them.
struct EngineSession: BenchSession {
    let db: Database
    let durability: Durability
    private var batch = WriteBatch()

    init(db: Database, durability: Durability) {
        self.db = db
        self.durability = durability
    }

    var batchSize: Int { 1 }

    @inline(__always)
    mutating func put(_ key: [UInt8], _ value: UnsafeRawBufferPointer) throws {
        batch.removeAll()
        key.withUnsafeBytes { batch.put($0, value) }
        try db.write(batch, durability: durability)
    }

    @inline(__always)
    mutating func get(_ key: [UInt8], into recorder: inout Recorder) throws {
        recorder.reads += 1
        if let value = try db.get(key) {
            recorder.found += 1
            recorder.bytes += key.count + value.count
        }
    }

    @inline(__always)
    mutating func delete(_ key: [UInt8]) throws {
        batch.removeAll()
        batch.delete(key)
        try db.write(batch, durability: durability)
    }

    @inline(__always)
    mutating func flush(into recorder: inout Recorder) throws {}

    mutating func walk(reverse: Bool, limit: Int, _ entry: (_ bytes: Int) -> Void) throws {
        let it = try db.makeIterator()
        if reverse { try it.seekToLast() } else { try it.seekToFirst() }
        var n = 0
        while n < limit && it.isValid {
            entry(it.keyView.count + it.valueView.count)
            n += 1
            if reverse { try it.prev() } else { try it.next() }
        }
    }

    mutating func seek(_ key: [UInt8]) throws -> (exact: Bool, bytes: Int) {
        let it = try db.makeIterator()
        try it.seek(key)
        guard it.isValid else { return (false, 0) }
        let k = it.keyView
        let exact = key.withUnsafeBytes { target in
            k.count == target.count && memcmp(k.baseAddress!, target.baseAddress!, k.count) == 0
        }
        return (exact, k.count + it.valueView.count)
    }

    mutating func scan(from key: [UInt8], count: Int) throws -> (entries: Int, bytes: Int) {
        let it = try db.makeIterator()
        try it.seek(key)
        var entries = 0
        var bytes = 0
        while entries < count && it.isValid {
            bytes += it.keyView.count + it.valueView.count
            entries += 1
            try it.next()
        }
        return (entries, bytes)
    }
}
