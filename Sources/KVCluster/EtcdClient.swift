import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// A client of etcd v3 through its gRPC gateway: JSON over HTTP/1.1 (`POST /v3/kv/range`,
/// `/v3/kv/put`, `/v3/kv/deleterange`, `/v3/kv/txn`, `/v3/lease/grant`, `/v3/lease/keepalive`,
/// `/v3/lease/revoke`, `/v3/watch`), keys and values base64-encoded.
///
/// A request goes to the endpoint that last answered; when it cannot be reached (no
/// connection, the connection dropped, no answer within ``requestTimeout``, or etcd answers
/// 503 "unavailable"), the next endpoint is tried, each at most once per request. Errors are
/// ``ClusterError/etcd(_:)`` naming the operation and the endpoint(s).
///
/// Call ``shutdown()`` when done: it stops the client's event loop thread.
public final class EtcdClient: Sendable {
    /// The endpoints, as given.
    public let endpoints: [String]
    /// How long a connection attempt may take.
    public let connectTimeout: Duration
    /// How long a request may take, connection included.
    public let requestTimeout: Duration

    let parsed: [EtcdEndpoint]
    let group: MultiThreadedEventLoopGroup
    let transport: EtcdTransport
    let preferred = Mutex(0)
    /// The running watches, cancelled and awaited by ``shutdown()``.
    let watches = Mutex<(next: Int, tasks: [Int: Task<Void, Never>])>((0, [:]))
    /// Set by ``shutdown()``: no request starts a connection on the stopped event loop.
    let closed = Atomic<Bool>(false)

    /// A client of the etcd cluster at `endpoints` (`http://127.0.0.1:2379`; at least one).
    public init(endpoints: [String], connectTimeout: Duration = .seconds(1), requestTimeout: Duration = .seconds(3)) {
        precondition(!endpoints.isEmpty, "EtcdClient needs at least one endpoint")
        self.endpoints = endpoints
        self.connectTimeout = connectTimeout
        self.requestTimeout = requestTimeout
        parsed = endpoints.map(EtcdEndpoint.init)
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        transport = EtcdTransport(group: group, connectTimeout: Self.amount(connectTimeout), requestTimeout: Self.amount(requestTimeout))
    }

    static func amount(_ d: Duration) -> TimeAmount {
        .nanoseconds(d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000)
    }

    /// Stops the client's event loop. No request may be made afterwards.
    public func shutdown() async {
        closed.store(true, ordering: .releasing)
        let running = watches.withLock { w in
            let t = Array(w.tasks.values)
            w.tasks = [:]
            return t
        }
        for t in running { t.cancel() }
        for t in running { await t.value }
        try? await group.shutdownGracefully()
    }

    // MARK: Requests

    /// Posts a JSON request to `path`, trying the endpoints in turn (two rounds); returns the decoded answer
    /// (for a streaming path answered with one message, its `result`).
    func call(_ operation: String, _ path: String, _ request: [String: Any]) async throws -> [String: Any] {
        let body: Data
        do {
            body = try JSONSerialization.data(withJSONObject: request)
        } catch {
            throw ClusterError.etcd("\(operation): cannot encode the request: \(error)")
        }
        let start = preferred.withLock { $0 }
        var failures: [String] = []
        // Each endpoint is tried twice, the second round 100 ms after the first: a connection
        // refused or dropped by a busy etcd is usually answered on the next try.
        for i in 0..<(2 * parsed.count) {
            if i == parsed.count { try await Task.sleep(for: .milliseconds(100)) }
            if closed.load(ordering: .acquiring) { throw ClusterError.etcd("\(operation): the client was shut down") }
            let index = (start + i) % parsed.count
            let ep = parsed[index]
            let status: Int
            let reply: Data
            do {
                (status, reply) = try await transport.post(ep, path, body)
            } catch let e as EtcdUnreachable {
                failures.append("\(ep): \(e)")
                continue
            }
            let firstLine = reply.split(separator: 0x0A, maxSplits: 1).first ?? reply[...]
            let json = (try? JSONSerialization.jsonObject(with: Data(firstLine))) as? [String: Any]
            if status == 503 {
                failures.append("\(ep): unavailable (\(Self.message(json) ?? "HTTP 503"))")
                continue
            }
            preferred.withLock { $0 = index }
            guard let json else {
                throw ClusterError.etcd("\(operation) at \(ep): unreadable answer (HTTP \(status))")
            }
            if status != 200 || json["error"] != nil {
                throw ClusterError.etcd("\(operation) at \(ep): \(Self.message(json) ?? "error") (HTTP \(status))")
            }
            if let result = json["result"] as? [String: Any] { return result }
            return json
        }
        throw ClusterError.etcd("\(operation): no endpoint answered (\(failures.joined(separator: "; ")))")
    }

    static func message(_ json: [String: Any]?) -> String? {
        guard let json else { return nil }
        if let m = json["message"] as? String { return m }
        if let e = json["error"] as? [String: Any], let m = e["message"] as? String { return m }
        return json["error"] as? String
    }

    // MARK: Keys

    /// The key `key`, or nil when absent.
    public func get(_ key: String) async throws -> EtcdKeyValue? {
        try await read(key, prefix: false).kvs.first
    }

    /// Every key starting with `prefix`, in key order, and the store's revision at the read
    /// (watch from `revision + 1` to see every later change).
    public func range(prefix: String) async throws -> (kvs: [EtcdKeyValue], revision: Int64) {
        try await read(prefix, prefix: true)
    }

    /// `key` (or the keys starting with it) and the store's revision at the read.
    public func read(_ key: String, prefix: Bool) async throws -> (kvs: [EtcdKeyValue], revision: Int64) {
        let r = try await call("range \(key)", "/v3/kv/range", EtcdJSON.rangeRequest(key, prefix: prefix))
        return (EtcdJSON.keyValues(r["kvs"]), EtcdJSON.headerRevision(r))
    }

    /// Writes `value` at `key`, attached to `lease` when given; returns the new revision.
    @discardableResult
    public func put(_ key: String, _ value: [UInt8], lease: Int64? = nil) async throws -> Int64 {
        let r = try await call("put \(key)", "/v3/kv/put", EtcdJSON.putRequest(key, value, lease: lease))
        return EtcdJSON.headerRevision(r)
    }

    /// Deletes `key`; returns how many keys were deleted (0 or 1).
    @discardableResult
    public func delete(_ key: String) async throws -> Int64 {
        let r = try await call("delete \(key)", "/v3/kv/deleterange", EtcdJSON.rangeRequest(key, prefix: false))
        return EtcdJSON.int64(r["deleted"])
    }

    /// Deletes every key starting with `prefix`; returns how many were deleted.
    @discardableResult
    public func deletePrefix(_ prefix: String) async throws -> Int64 {
        let r = try await call("delete prefix \(prefix)", "/v3/kv/deleterange", EtcdJSON.rangeRequest(prefix, prefix: true))
        return EtcdJSON.int64(r["deleted"])
    }

    /// Runs `success` when every compare holds, else `failure`, atomically.
    public func txn(compares: [EtcdCompare], success: [EtcdOp], failure: [EtcdOp] = []) async throws -> EtcdTxnResult {
        let request: [String: Any] = [
            "compare": compares.map(EtcdJSON.compare),
            "success": success.map(EtcdJSON.op),
            "failure": failure.map(EtcdJSON.op),
        ]
        let r = try await call("txn", "/v3/kv/txn", request)
        let responses = (r["responses"] as? [Any] ?? []).compactMap(EtcdJSON.opResponse)
        return EtcdTxnResult(succeeded: EtcdJSON.bool(r["succeeded"]), revision: EtcdJSON.headerRevision(r), responses: responses)
    }

    // MARK: Leases

    /// Grants a lease of `ttlSeconds` (etcd raises a TTL below its minimum, about 1.5 times
    /// the election timeout: 2 s with the default settings); returns its id.
    public func grantLease(ttlSeconds: Int64) async throws -> Int64 {
        let r = try await call("lease grant", "/v3/lease/grant", ["TTL": String(ttlSeconds)])
        let id = EtcdJSON.int64(r["ID"])
        if id == 0 { throw ClusterError.etcd("lease grant: no lease id in the answer") }
        return id
    }

    /// Renews `lease` to its full TTL; returns that TTL in seconds, or 0 when the lease has
    /// expired or was revoked (its keys are gone: grant a new one).
    public func keepAlive(lease: Int64) async throws -> Int64 {
        let r = try await call("lease keepalive \(lease)", "/v3/lease/keepalive", ["ID": String(lease)])
        return max(0, EtcdJSON.int64(r["TTL"]))
    }

    /// Revokes `lease`, deleting its keys. Revoking a lease that no longer exists is not an error.
    public func revoke(lease: Int64) async throws {
        do {
            _ = try await call("lease revoke \(lease)", "/v3/lease/revoke", ["ID": String(lease)])
        } catch ClusterError.etcd(let m) where m.contains("lease not found") {
            return
        }
    }

    // MARK: Watch

    /// The changes of `key` (or of the keys starting with it when `prefix`) from revision
    /// `fromRevision` (0: from now on), in batches as etcd sends them. The stream ends with an
    /// error when the connection to etcd ends or the revision was compacted: read again and
    /// watch anew. Cancelling the consuming task or dropping the stream closes the watch.
    public func watch(_ key: String, prefix: Bool = false, fromRevision: Int64 = 0) -> AsyncThrowingStream<[EtcdEvent], Error> {
        var create = EtcdJSON.rangeRequest(key, prefix: prefix)
        if fromRevision > 0 { create["start_revision"] = String(fromRevision) }
        let request: [String: Any] = ["create_request": create]
        let body = (try? JSONSerialization.data(withJSONObject: request)) ?? Data()
        let (stream, continuation) = AsyncThrowingStream<[EtcdEvent], Error>.makeStream()
        let created = WatchCreated()
        let start = preferred.withLock { $0 }
        let id = watches.withLock { w in
            w.next += 1
            return w.next
        }
        let task = Task { [parsed, transport, weak self] in
            defer { _ = self?.watches.withLock { $0.tasks.removeValue(forKey: id) } }
            var failures: [String] = []
            for i in 0..<parsed.count {
                let ep = parsed[(start + i) % parsed.count]
                do {
                    try await transport.stream(ep, "/v3/watch", body) { msg in
                        try Self.watchMessage(msg, key: key, endpoint: ep, continuation, created)
                    }
                    continuation.finish()
                    return
                } catch let e as EtcdUnreachable {
                    failures.append("\(ep): \(e)")
                    // Once created, a lost watch is the caller's to resume (it knows the
                    // last revision it saw); before that, the next endpoint is tried.
                    if created.value.withLock({ $0 }) { break }
                } catch {
                    continuation.finish(throwing: error)
                    return
                }
            }
            continuation.finish(throwing: ClusterError.etcd("watch \(key): \(failures.joined(separator: "; "))"))
        }
        watches.withLock { $0.tasks[id] = task }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    static func watchMessage(
        _ msg: [String: Any], key: String, endpoint: EtcdEndpoint,
        _ continuation: AsyncThrowingStream<[EtcdEvent], Error>.Continuation, _ created: WatchCreated
    ) throws -> Bool {
        if msg["error"] != nil {
            throw ClusterError.etcd("watch \(key) at \(endpoint): \(message(msg) ?? "error")")
        }
        let r = msg["result"] as? [String: Any] ?? msg
        if EtcdJSON.bool(r["created"]) { created.value.withLock { $0 = true } }
        if EtcdJSON.bool(r["canceled"]) {
            let compacted = EtcdJSON.int64(r["compact_revision"])
            let why = compacted > 0 ? "revisions up to \(compacted) were compacted" : (r["cancel_reason"] as? String ?? "canceled by etcd")
            throw ClusterError.etcd("watch \(key) at \(endpoint): \(why)")
        }
        let events = (r["events"] as? [Any] ?? []).compactMap(EtcdJSON.event)
        if !events.isEmpty, case .terminated = continuation.yield(events) { return false }
        return true
    }
}

/// Whether a watch was created (then a lost connection ends it instead of trying another endpoint).
final class WatchCreated: Sendable {
    let value = Mutex(false)
}
