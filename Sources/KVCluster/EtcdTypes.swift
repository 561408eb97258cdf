import Foundation

/// A key and its value as etcd holds them, with etcd's bookkeeping.
public struct EtcdKeyValue: Sendable, Equatable {
    /// The key (etcd keys are bytes; Shale's are UTF-8).
    public var key: String
    /// The value bytes.
    public var value: [UInt8]
    /// The revision that created the key (since its last deletion).
    public var createRevision: Int64
    /// The revision of its last change.
    public var modRevision: Int64
    /// How many times it was written since it was created (1 after the first put).
    public var version: Int64
    /// The lease it is attached to (0: none).
    public var lease: Int64

    /// A key-value pair.
    public init(key: String, value: [UInt8], createRevision: Int64 = 0, modRevision: Int64 = 0, version: Int64 = 0, lease: Int64 = 0) {
        self.key = key
        self.value = value
        self.createRevision = createRevision
        self.modRevision = modRevision
        self.version = version
        self.lease = lease
    }

    /// The value as `Data`.
    public var data: Data { Data(value) }
}

/// One change seen by a watch.
public struct EtcdEvent: Sendable, Equatable {
    /// What happened to the key.
    public enum Kind: Sendable, Equatable {
        /// Created or overwritten.
        case put
        /// Deleted (also by the expiry of its lease).
        case delete
    }

    /// What happened.
    public var kind: Kind
    /// The key after a put; the key and the deletion's revision (``EtcdKeyValue/modRevision``)
    /// with an empty value after a delete.
    public var kv: EtcdKeyValue

    /// An event.
    public init(kind: Kind, kv: EtcdKeyValue) {
        self.kind = kind
        self.kv = kv
    }

    /// The revision of the change.
    public var revision: Int64 { kv.modRevision }
}

/// A condition of a transaction (`Compare` in etcd's API).
public struct EtcdCompare: Sendable, Equatable {
    /// What is compared.
    public enum Target: Sendable, Equatable {
        /// The key's last modification revision (0 when absent).
        case modRevision(Int64)
        /// The key's creation revision (0 when absent: `createRevision(0)` with ``Result/equal``
        /// means "the key does not exist").
        case createRevision(Int64)
        /// The key's version (0 when absent).
        case version(Int64)
        /// The key's value.
        case value([UInt8])
    }

    /// The comparison.
    public enum Result: String, Sendable, Equatable {
        /// Equal.
        case equal = "EQUAL"
        /// The key's side is greater.
        case greater = "GREATER"
        /// The key's side is less.
        case less = "LESS"
        /// Different.
        case notEqual = "NOT_EQUAL"
    }

    /// The key compared.
    public var key: String
    /// What of it is compared, and with what.
    public var target: Target
    /// How.
    public var result: Result

    /// A condition: `key`'s `target` `result` the given value.
    public init(key: String, _ target: Target, _ result: Result = .equal) {
        self.key = key
        self.target = target
        self.result = result
    }

    /// The condition "`key` does not exist".
    public static func absent(_ key: String) -> EtcdCompare {
        EtcdCompare(key: key, .createRevision(0), .equal)
    }
}

/// An operation of a transaction.
public enum EtcdOp: Sendable, Equatable {
    /// Writes `value` at `key`, under `lease` when given.
    case put(key: String, value: [UInt8], lease: Int64?)
    /// Deletes `key`, or every key starting with it when `prefix`.
    case delete(key: String, prefix: Bool)
    /// Reads `key`, or every key starting with it when `prefix`.
    case range(key: String, prefix: Bool)
}

/// The answer to one ``EtcdOp`` of a transaction, in order.
public enum EtcdOpResponse: Sendable, Equatable {
    /// A put was done.
    case put
    /// A delete removed this many keys.
    case delete(deleted: Int64)
    /// A range read these keys.
    case range([EtcdKeyValue])
}

/// The outcome of ``EtcdClient/txn(compares:success:failure:)``.
public struct EtcdTxnResult: Sendable, Equatable {
    /// Whether every compare held (so the success operations ran).
    public var succeeded: Bool
    /// The store's revision after the transaction.
    public var revision: Int64
    /// The answers of the operations that ran.
    public var responses: [EtcdOpResponse]

    /// A result.
    public init(succeeded: Bool, revision: Int64, responses: [EtcdOpResponse]) {
        self.succeeded = succeeded
        self.revision = revision
        self.responses = responses
    }
}

/// JSON helpers of the gateway: keys and values are base64, 64-bit integers are strings,
/// and zero or empty fields are left out.
enum EtcdJSON {
    static func b64(_ s: String) -> String { Data(s.utf8).base64EncodedString() }
    static func b64(_ b: [UInt8]) -> String { Data(b).base64EncodedString() }

    static func bytes(_ v: Any?) -> [UInt8] {
        guard let s = v as? String, let d = Data(base64Encoded: s) else { return [] }
        return [UInt8](d)
    }

    static func int64(_ v: Any?) -> Int64 {
        switch v {
        case let s as String: return Int64(s) ?? 0
        case let i as Int: return Int64(i)
        case let i as Int64: return i
        case let d as Double: return Int64(d)
        case let n as NSNumber: return n.int64Value
        default: return 0
        }
    }

    static func bool(_ v: Any?) -> Bool {
        switch v {
        case let b as Bool: return b
        case let n as NSNumber: return n.boolValue
        case let s as String: return s == "true"
        default: return false
        }
    }

    /// The end of the range of keys starting with `prefix`: the prefix with its last byte
    /// below 0xff raised by one (`"\0"`, every key, for an empty prefix or all 0xff bytes).
    static func prefixEnd(_ prefix: String) -> [UInt8] {
        var b = Array(prefix.utf8)
        while let last = b.last {
            if last < 0xff {
                b[b.count - 1] = last + 1
                return b
            }
            b.removeLast()
        }
        return [0]
    }

    static func keyValue(_ v: Any?) -> EtcdKeyValue? {
        guard let d = v as? [String: Any] else { return nil }
        return EtcdKeyValue(
            key: String(decoding: bytes(d["key"]), as: UTF8.self),
            value: bytes(d["value"]),
            createRevision: int64(d["create_revision"]),
            modRevision: int64(d["mod_revision"]),
            version: int64(d["version"]),
            lease: int64(d["lease"])
        )
    }

    static func keyValues(_ v: Any?) -> [EtcdKeyValue] {
        (v as? [Any] ?? []).compactMap(keyValue)
    }

    static func headerRevision(_ d: [String: Any]) -> Int64 {
        int64((d["header"] as? [String: Any])?["revision"])
    }

    static func rangeRequest(_ key: String, prefix: Bool) -> [String: Any] {
        var r: [String: Any] = ["key": b64(key)]
        if prefix { r["range_end"] = b64(prefixEnd(key)) }
        return r
    }

    static func putRequest(_ key: String, _ value: [UInt8], lease: Int64?) -> [String: Any] {
        var r: [String: Any] = ["key": b64(key), "value": b64(value)]
        if let lease, lease != 0 { r["lease"] = String(lease) }
        return r
    }

    static func compare(_ c: EtcdCompare) -> [String: Any] {
        var r: [String: Any] = ["key": b64(c.key), "result": c.result.rawValue]
        switch c.target {
        case .modRevision(let n): r["target"] = "MOD"; r["mod_revision"] = String(n)
        case .createRevision(let n): r["target"] = "CREATE"; r["create_revision"] = String(n)
        case .version(let n): r["target"] = "VERSION"; r["version"] = String(n)
        case .value(let v): r["target"] = "VALUE"; r["value"] = b64(v)
        }
        return r
    }

    static func op(_ o: EtcdOp) -> [String: Any] {
        switch o {
        case .put(let k, let v, let lease): return ["request_put": putRequest(k, v, lease: lease)]
        case .delete(let k, let p): return ["request_delete_range": rangeRequest(k, prefix: p)]
        case .range(let k, let p): return ["request_range": rangeRequest(k, prefix: p)]
        }
    }

    static func opResponse(_ v: Any?) -> EtcdOpResponse? {
        guard let d = v as? [String: Any] else { return nil }
        if let r = d["response_range"] as? [String: Any] { return .range(keyValues(r["kvs"])) }
        if let r = d["response_delete_range"] as? [String: Any] { return .delete(deleted: int64(r["deleted"])) }
        if d["response_put"] != nil { return .put }
        return nil
    }

    static func event(_ v: Any?) -> EtcdEvent? {
        guard let d = v as? [String: Any], let kv = keyValue(d["kv"]) else { return nil }
        return EtcdEvent(kind: (d["type"] as? String) == "DELETE" ? .delete : .put, kv: kv)
    }
}
