import KVProtocol
import NIOCore

/// Any RESP server (redis-server, kvserver) as a ``BenchTarget``, driven with SET, GET and
/// DEL (and, for the collection workloads, HSET, HGET, LPUSH, RPUSH, LPOP, RPOP, LRANGE,
/// SADD, SISMEMBER, ZADD, ZRANGE and ZRANGEBYSCORE) over `--connections` connections, each
/// with its own thread and `--pipeline` requests in flight per round trip.
///
/// A fresh database (before fillseq, fillrandom) is made with FLUSHDB. Ordered scans,
/// manual compaction and sync writes are not part of the protocol subset used, so
/// benchmarks that need them are skipped.
final class RESPTarget: BenchTarget {
    let endpoint: String
    let pipeline: Int
    let keySize: Int
    let notes: [String]
    let connections: Int

    init(config: BenchConfig) throws {
        endpoint = config.server!
        pipeline = config.pipeline
        keySize = config.keySize
        connections = config.connections
        var notes = ["benchmarks that start from an empty database send FLUSHDB to \(endpoint)"]
        notes.append("--compression_type, --cache_size, --bloom_bits, --block_size, --write_buffer_size, --sync: not applied (server-side settings)")
        self.notes = notes
        // Fail early, before printing anything else, if the server is unreachable.
        let probe = try RESPConnection(endpoint: endpoint)
        let pong = try probe.command(["PING"])
        if case .simpleError(let message) = pong { throw BenchError("\(endpoint) answered PING with: \(message)") }
    }

    var summary: String {
        "RESP server \(endpoint) (\(connections) connections, pipeline \(pipeline))"
    }

    func unsupportedReason(_ requirement: Benchmark.Requirement) -> String? {
        switch requirement {
        case .pointOperations: return nil
        case .orderedScans: return "needs ordered iteration, not available over RESP"
        case .compaction: return "manual compaction is not available over RESP"
        case .syncWrites: return "per-write fsync is a server setting over RESP"
        case .collections: return nil
        }
    }

    func makeSession(durability: DurabilityFlag) throws -> RESPSession {
        RESPSession(connection: try RESPConnection(endpoint: endpoint), pipeline: pipeline, keySize: keySize)
    }

    func reset() throws {
        let reply = try RESPConnection(endpoint: endpoint).command(["FLUSHDB"])
        if case .simpleError(let message) = reply { throw BenchError("FLUSHDB failed: \(message)") }
    }

    func compactAll() throws {
        throw BenchError("manual compaction is not available over RESP")
    }

    func diskUsage() -> Int? { nil }

    func statistics() -> JSONValue? { nil }

    func close() throws {}
}

/// One connection's pipelined request stream.
///
/// Requests are encoded as they are issued; ``flush(into:)`` sends them in one write and
/// reads one reply per request, checking each against what its request expects.
struct RESPSession: BenchSession {
    private let connection: RESPConnection
    let batchSize: Int
    private let keySize: Int
    /// What each request in flight expects back, in order.
    private var expected: [Expect] = []

    private enum Expect {
        case ok, value, integer
        /// A collection read: a bulk string or null (HGET, LPOP).
        case element
        /// SISMEMBER: 1 when the member is there.
        case member
        /// A range: an array of bulk strings (LRANGE, ZRANGE, ZRANGEBYSCORE).
        case range

        /// Whether the request is a collection read (counted in `Recorder.reads`).
        var isRead: Bool {
            switch self {
            case .element, .member, .range: return true
            case .ok, .value, .integer: return false
            }
        }
    }

    private static let set = Array("SET".utf8)
    private static let get = Array("GET".utf8)
    private static let del = Array("DEL".utf8)

    init(connection: RESPConnection, pipeline: Int, keySize: Int) {
        self.connection = connection
        batchSize = pipeline
        self.keySize = keySize
        expected.reserveCapacity(2 * pipeline)
    }

    mutating func put(_ key: [UInt8], _ value: UnsafeRawBufferPointer) throws {
        let e = connection.encoder
        e.writeArrayHeader(count: 3, into: &connection.output)
        e.writeBulkString(Self.set, into: &connection.output)
        e.writeBulkString(key, into: &connection.output)
        e.writeBulkString(value, into: &connection.output)
        expected.append(.ok)
    }

    mutating func get(_ key: [UInt8], into recorder: inout Recorder) throws {
        let e = connection.encoder
        e.writeArrayHeader(count: 2, into: &connection.output)
        e.writeBulkString(Self.get, into: &connection.output)
        e.writeBulkString(key, into: &connection.output)
        expected.append(.value)
        recorder.reads += 1
    }

    mutating func delete(_ key: [UInt8]) throws {
        let e = connection.encoder
        e.writeArrayHeader(count: 2, into: &connection.output)
        e.writeBulkString(Self.del, into: &connection.output)
        e.writeBulkString(key, into: &connection.output)
        expected.append(.integer)
    }

    mutating func flush(into recorder: inout Recorder) throws {
        guard !expected.isEmpty else { return }
        try connection.send()
        for expect in expected {
            let reply = try connection.readReply()
            switch (expect, reply) {
            case (.ok, .simpleString):
                break
            case (.value, .bulkString(let value?)):
                recorder.found += 1
                recorder.bytes += keySize + value.readableBytes
            case (.value, .bulkString(nil)), (.value, .null):
                break
            case (.integer, .integer):
                break
            case (.element, .bulkString(let value?)):
                recorder.found += 1
                recorder.bytes += value.readableBytes
            case (.element, .bulkString(nil)), (.element, .null):
                break
            case (.member, .integer(let n)):
                if n == 1 { recorder.found += 1 }
            case (.range, .array(let items)):
                var bytes = 0
                for item in items ?? [] {
                    if case .bulkString(let b?) = item { bytes += b.readableBytes }
                }
                let n = items?.count ?? 0
                if n > 0 { recorder.found += 1 }
                recorder.bytes += bytes
                recorder.count("items", n)
            case (_, .simpleError(let message)):
                throw BenchError("\(connection.endpoint) replied with an error: \(message)")
            default:
                throw BenchError("\(connection.endpoint) sent an unexpected reply: \(reply)")
            }
        }
        expected.removeAll(keepingCapacity: true)
    }

    /// Queues one collection command (see ``CollectionOp``).
    mutating func collection(_ op: CollectionOp, into recorder: inout Recorder) throws {
        let e = connection.encoder
        func command(_ name: String, _ count: Int) {
            e.writeArrayHeader(count: count, into: &connection.output)
            e.writeBulkString(name, into: &connection.output)
        }
        func bulk(_ bytes: [UInt8]) { e.writeBulkString(bytes, into: &connection.output) }
        func text(_ string: String) { e.writeBulkString(string, into: &connection.output) }
        switch op {
        case .hset(let key, let field, let value):
            command("HSET", 4)
            bulk(key)
            bulk(field)
            e.writeBulkString(value, into: &connection.output)
            expected.append(.integer)
        case .hget(let key, let field):
            command("HGET", 3)
            bulk(key)
            bulk(field)
            expected.append(.element)
        case .push(let key, let items, let left):
            command(left ? "LPUSH" : "RPUSH", 2 + items.count)
            bulk(key)
            for item in items { e.writeBulkString(item, into: &connection.output) }
            expected.append(.integer)
        case .pop(let key, let left):
            command(left ? "LPOP" : "RPOP", 2)
            bulk(key)
            expected.append(.element)
        case .lrange(let key, let start, let stop):
            command("LRANGE", 4)
            bulk(key)
            text(String(start))
            text(String(stop))
            expected.append(.range)
        case .sadd(let key, let member):
            command("SADD", 3)
            bulk(key)
            bulk(member)
            expected.append(.integer)
        case .sismember(let key, let member):
            command("SISMEMBER", 3)
            bulk(key)
            bulk(member)
            expected.append(.member)
        case .zadd(let key, let members):
            command("ZADD", 2 + 2 * members.count)
            bulk(key)
            for (score, member) in members {
                text(score.description)
                bulk(member)
            }
            expected.append(.integer)
        case .zrange(let key, let start, let stop):
            command("ZRANGE", 4)
            bulk(key)
            text(String(start))
            text(String(stop))
            expected.append(.range)
        case .zrangeByScore(let key, let min, let limit):
            command("ZRANGEBYSCORE", 7)
            bulk(key)
            text(min.description)
            text("+inf")
            text("LIMIT")
            text("0")
            text(String(limit))
            expected.append(.range)
        }
        if expected[expected.count - 1].isRead { recorder.reads += 1 }
    }

    mutating func walk(reverse: Bool, limit: Int, _ entry: (Int) -> Void) throws {
        throw BenchError("ordered iteration is not available over RESP")
    }

    mutating func seek(_ key: [UInt8]) throws -> (exact: Bool, bytes: Int) {
        throw BenchError("ordered iteration is not available over RESP")
    }

    mutating func scan(from key: [UInt8], count: Int) throws -> (entries: Int, bytes: Int) {
        throw BenchError("ordered iteration is not available over RESP")
    }
}
