import KVProtocol
import NIOCore

/// Any RESP server (redis-server, kvserver) as a ``BenchTarget``, driven with SET, GET and
/// DEL over `--connections` connections, each with its own thread and `--pipeline`
/// requests in flight per round trip.
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
            case (_, .simpleError(let message)):
                throw BenchError("\(connection.endpoint) replied with an error: \(message)")
            default:
                throw BenchError("\(connection.endpoint) sent an unexpected reply: \(reply)")
            }
        }
        expected.removeAll(keepingCapacity: true)
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
