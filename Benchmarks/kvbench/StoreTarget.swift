import Foundation
import Shale
import Synchronization

/// The in-process sharded store as a ``BenchTarget`` (`--shards N`): N engines under
/// `--db`, keys routed by slot and consistent-hash ring, driven by the same workloads as
/// the single engine. Engine options come from the same flags as ``EngineTarget`` and apply
/// to every shard (so `--cache_size` and `--write_buffer_size` are per shard).
final class StoreTarget: BenchTarget {
    let path: String
    let shardCount: Int
    let options: Options
    let notes: [String]
    private let store: Mutex<ShardedStore?>

    init(config: BenchConfig, fresh: Bool) throws {
        path = config.dbPath
        shardCount = config.shards
        let (o, engineNotes) = EngineTarget.options(for: config)
        options = o
        notes = engineNotes + ["--shards=\(config.shards): engine options apply to each shard"]
        if fresh { try EngineTarget.destroy(path) }
        store = Mutex(try ShardedStore.open(at: path, shards: config.shards, options: o))
    }

    var summary: String {
        "Shale ShardedStore in \(path) (\(shardCount) shards; per shard: write buffer \(options.writeBufferSize) B, "
            + "\(options.compression.rawValue), bloom \(options.bloomBitsPerKey) bits/key, cache \(options.blockCacheCapacity) B, "
            + "durability \(options.durability.rawValue))"
    }

    func unsupportedReason(_ requirement: Benchmark.Requirement) -> String? { nil }

    func makeSession(durability: DurabilityFlag) throws -> StoreSession {
        StoreSession(store: try current(), durability: Durability(rawValue: durability.rawValue) ?? .no)
    }

    func reset() throws {
        try take()?.close()
        try EngineTarget.destroy(path)
        let reopened = try ShardedStore.open(at: path, shards: shardCount, options: options)
        store.withLock { $0 = reopened }
    }

    func compactAll() throws {
        try current().compactRange(nil, nil)
    }

    func diskUsage() -> Int? { directorySize(path) }

    func statistics() -> JSONValue? {
        guard let s = try? current().stats() else { return nil }
        return .object([
            ("shards", .integer(s.shards.count)),
            ("bytes_on_disk", .integer(Int(s.bytesOnDisk))),
            ("level_files", .array(s.levelFiles.map { .integer($0) })),
            ("level_bytes", .array(s.levelBytes.map { .integer(Int($0)) })),
            ("per_shard_bytes", .array(s.shards.map { .integer(Int($0.bytesOnDisk)) })),
        ])
    }

    func close() throws {
        try take()?.close()
    }

    private func take() -> ShardedStore? {
        store.withLock { s in
            defer { s = nil }
            return s
        }
    }

    /// The open store (the index workloads use it directly).
    func current() throws -> ShardedStore {
        guard let s = store.withLock({ $0 }) else { throw BenchError("the store is closed") }
        return s
    }
}

/// One thread's handle on a ``ShardedStore``; every operation completes before it returns.
struct StoreSession: BenchSession {
    let store: ShardedStore
    let durability: Durability

    var batchSize: Int { 1 }

    mutating func put(_ key: [UInt8], _ value: UnsafeRawBufferPointer) throws {
        try store.put(key, Array(value), durability: durability)
    }

    mutating func get(_ key: [UInt8], into recorder: inout Recorder) throws {
        recorder.reads += 1
        if let value = try store.get(key) {
            recorder.found += 1
            recorder.bytes += key.count + value.count
        }
    }

    mutating func delete(_ key: [UInt8]) throws {
        try store.delete(key, durability: durability)
    }

    mutating func flush(into recorder: inout Recorder) throws {}

    mutating func walk(reverse: Bool, limit: Int, _ entry: (_ bytes: Int) -> Void) throws {
        let scan = try store.scan(reverse: reverse)
        var n = 0
        while n < limit, let e = try scan.nextEntry() {
            entry(e.key.count + e.value.count)
            n += 1
        }
    }

    mutating func seek(_ key: [UInt8]) throws -> (exact: Bool, bytes: Int) {
        guard let e = try store.scan(from: key).nextEntry() else { return (false, 0) }
        return (e.key == key, e.key.count + e.value.count)
    }

    mutating func scan(from key: [UInt8], count: Int) throws -> (entries: Int, bytes: Int) {
        let scan = try store.scan(from: key)
        var entries = 0
        var bytes = 0
        while entries < count, let e = try scan.nextEntry() {
            bytes += e.key.count + e.value.count
            entries += 1
        }
        return (entries, bytes)
    }
}
