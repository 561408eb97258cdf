import KVBase

/// What an index stores: JSON strings or JSON numbers.
public enum IndexType: String, Sendable, Hashable, CaseIterable {
    /// JSON strings (escapes decoded), compared bytewise as UTF-8; queried by equality and prefix.
    case string
    /// Finite JSON numbers as doubles; queried by equality and range.
    case number
}

/// Where an index finds its value: in a string row's JSON, or in a hash's field.
public enum IndexSource: String, Sendable, Hashable, CaseIterable {
    /// The member at the dotted path ``IndexDefinition/field`` of a string row holding a JSON
    /// object.
    case json
    /// The value of the hash field named ``IndexDefinition/field`` (a hash row): its bytes for
    /// ``IndexType/string``, the finite number it spells for ``IndexType/number``.
    case hash
}

/// A secondary index over the JSON values (or hash fields) of a `ShardedStore`.
///
/// A row is indexed when its key starts with ``keyPrefix`` (any key when nil) and its value is
/// a well-formed JSON object (RFC 8259) holding, at the dotted path ``field``, a value of the
/// index's ``type``: a JSON string for ``IndexType/string`` (at most
/// ``maxIndexedStringLength`` bytes once decoded), a finite JSON number for
/// ``IndexType/number``. Any other value — not JSON, not an object, no such field, an array or
/// another type at the path — is simply not indexed; that is never an error.
///
/// ```swift
/// try store.createIndex(IndexDefinition(name: "by_category", field: "category", type: .string, keyPrefix: "product:"))
/// try store.createIndex(IndexDefinition(name: "by_width", field: "dims.w", type: .number))
/// ```
public struct IndexDefinition: Sendable, Hashable {
    /// The index name: 1-64 characters, each a letter, a digit, `_`, `-`, `.` or `:`.
    public var name: String
    /// The dotted path of the indexed member (`"category"`, `"dims.w"`): 1-256 bytes, no
    /// empty segment. A member name containing a `.` cannot be addressed.
    public var field: String
    /// What the index stores.
    public var type: IndexType
    /// Only rows whose key starts with these bytes are indexed; nil (or empty) for every row.
    /// At most 1024 bytes.
    public var keyPrefix: [UInt8]?
    /// JSON string rows (the default) or hashes.
    public var source: IndexSource

    /// Longest string value an index stores; longer strings are not indexed.
    public static let maxIndexedStringLength = 1024
    /// Longest index name, in characters.
    public static let maxNameLength = 64
    /// Longest field path, in bytes.
    public static let maxFieldLength = 256
    /// Longest key prefix, in bytes.
    public static let maxKeyPrefixLength = 1024

    /// Creates a definition. Nothing is checked until `ShardedStore.createIndex(_:)`.
    public init(name: String, field: String, type: IndexType, keyPrefix: [UInt8]? = nil, source: IndexSource = .json) {
        self.name = name
        self.field = field
        self.type = type
        self.keyPrefix = keyPrefix
        self.source = source
    }

    /// Creates a definition whose key prefix is a UTF-8 string.
    public init(name: String, field: String, type: IndexType, keyPrefix: String, source: IndexSource = .json) {
        self.init(name: name, field: field, type: type, keyPrefix: Array(keyPrefix.utf8), source: source)
    }

    /// Checks the definition.
    ///
    /// - Throws: ``KVError/invalidArgument(_:)`` saying what is wrong with the name, the field
    ///   or the key prefix.
    public func validate() throws(KVError) {
        if !Self.isValidName(name) {
            throw .invalidArgument(
                "index name must be 1-\(Self.maxNameLength) characters, each a letter, digit, '_', '-', '.' or ':', got '\(name)'")
        }
        if source == .hash {
            if field.isEmpty || field.utf8.count > Self.maxFieldLength {
                throw .invalidArgument("index field must be a hash field name of 1-\(Self.maxFieldLength) bytes, got '\(field)'")
            }
        } else if field.utf8.count > Self.maxFieldLength || JSONFieldPath(field) == nil {
            throw .invalidArgument(
                "index field must be a dotted path of 1-\(Self.maxFieldLength) bytes with no empty segment (like 'category' or 'dims.w'), got '\(field)'")
        }
        if let p = keyPrefix, p.count > Self.maxKeyPrefixLength {
            throw .invalidArgument("index key prefix must be at most \(Self.maxKeyPrefixLength) bytes, got \(p.count)")
        }
    }

    static func isValidName(_ name: String) -> Bool {
        let count = name.count
        guard count >= 1 && count <= maxNameLength else { return false }
        return name.unicodeScalars.allSatisfy { c in
            (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "_" || c == "-" || c == "." || c == ":"
        }
    }

    /// The definition with an empty key prefix written as nil.
    package var normalized: IndexDefinition {
        var d = self
        if d.keyPrefix?.isEmpty == true { d.keyPrefix = nil }
        return d
    }

    /// Whether rows under `key` fall under the index's key prefix.
    public func covers(key: [UInt8]) -> Bool {
        guard let p = keyPrefix, !p.isEmpty else { return true }
        return key.count >= p.count && key.starts(with: p)
    }

    /// The value this index stores for a row value, or nil when the row is not indexed (see the
    /// type's discussion). Does not look at the key prefix.
    public func indexValue(of value: [UInt8]) -> IndexValue? {
        guard let path = JSONFieldPath(field) else { return nil }
        return value.withUnsafeBytes { Self.indexValue(of: $0, path: path, type: type) }
    }

    /// A function computing ``indexValue(of:)`` with the field path parsed once (benchmarks).
    package func valueExtractor() -> @Sendable (UnsafeRawBufferPointer) -> IndexValue? {
        let path = JSONFieldPath(field)
        let type = self.type
        return { bytes in path.flatMap { Self.indexValue(of: bytes, path: $0, type: type) } }
    }

    /// The value an index of `type` stores for a hash field's value, or nil: the bytes (at
    /// most ``maxIndexedStringLength``) for strings; for numbers, a finite number the whole
    /// value spells (as Redis reads a float: no spaces, `inf` and `nan` refused).
    static func indexValue(ofField value: UnsafeRawBufferPointer, type: IndexType) -> IndexValue? {
        switch type {
        case .string:
            return value.count <= maxIndexedStringLength ? .string(Array(value)) : nil
        case .number:
            guard value.count <= 64, let first = value.first, first != 0x20, first != 0x09,
                  let d = Double(String(decoding: value, as: UTF8.self)), d.isFinite else { return nil }
            return .number(d == 0 ? 0 : d)
        }
    }

    /// The value an index of `type` at `path` stores for a row value, or nil.
    @inline(__always)
    static func indexValue(of value: UnsafeRawBufferPointer, path: JSONFieldPath, type: IndexType) -> IndexValue? {
        guard case .found(let scalar) = JSONFieldScanner.scan(value, path: path) else { return nil }
        switch (scalar, type) {
        case (.string(let s), .string):
            return s.count <= maxIndexedStringLength ? .string(s) : nil
        case (.number(let d), .number):
            guard d.isFinite else { return nil }
            return .number(d == 0 ? 0 : d)
        default:
            return nil
        }
    }
}

/// Whether an index is usable.
public enum IndexState: String, Sendable, Hashable {
    /// Being back-filled over existing rows; queries are refused until it is ready. Writes
    /// maintain it already.
    case building
    /// Complete: every indexed row has its entry.
    case ready
}

/// A description of an index and its statistics; see `ShardedStore.indexInfo(_:)`.
public struct IndexInfo: Sendable, Hashable {
    /// The definition the index was created with.
    public var definition: IndexDefinition
    /// Building or ready.
    public var state: IndexState
    /// Back-fill progress, 0-100 (100 once ready).
    public var progress: Int
    /// Index entries: rows that carry an indexed value, including expired rows whose space
    /// is not reclaimed yet. Approximate while building; recounted when the build finishes and
    /// exact from then on while the store is open (entries of expired rows that compaction
    /// reclaims are not subtracted). Persisted at a clean close and when a build finishes, so
    /// after a crash it restarts from the last persisted figure.
    public var entries: Int
    /// Queries answered since the index was created (persisted like ``entries``).
    public var queries: Int
    /// Keys returned by those queries in total.
    public var results: Int
    /// Why the back-fill stopped, when it failed (it resumes when the store is reopened).
    public var buildError: String?

    /// The index name.
    public var name: String { definition.name }
    /// The indexed field path.
    public var field: String { definition.field }
    /// The indexed type.
    public var type: IndexType { definition.type }
    /// The key prefix rows must have, or nil.
    public var keyPrefix: [UInt8]? { definition.keyPrefix }
    /// Average number of keys a query returned (0 before the first query).
    public var averageResultSize: Double { queries == 0 ? 0 : Double(results) / Double(queries) }
}

/// A query against one index; see `ShardedStore.query(index:_:offset:limit:withValues:)`.
public enum IndexQuery: Sendable, Hashable {
    /// Rows whose indexed value equals this one (a string for a string index, a number for a
    /// number index; `-0.0` equals `0.0`).
    case equals(IndexValue)
    /// Rows whose indexed string starts with these bytes (string indexes only).
    case prefix([UInt8])
    /// Rows whose indexed number lies in `lo...hi` (number indexes only); a nil bound is open.
    case range(lo: Double?, hi: Double?)

    /// Rows whose indexed string starts with a UTF-8 string.
    public static func prefix(_ s: String) -> IndexQuery { .prefix(Array(s.utf8)) }
}

/// One row found by a query.
public struct IndexHit: Sendable, Hashable {
    /// The row's key.
    public var key: [UInt8]
    /// The row's value, when the query asked for values.
    public var value: [UInt8]?

    /// Creates a hit.
    public init(key: [UInt8], value: [UInt8]? = nil) {
        self.key = key
        self.value = value
    }
}

extension IndexValue: ExpressibleByStringLiteral, ExpressibleByFloatLiteral, ExpressibleByIntegerLiteral {
    /// A string value from a literal (UTF-8).
    public init(stringLiteral value: String) { self = .string(Array(value.utf8)) }
    /// A number value from a literal.
    public init(floatLiteral value: Double) { self = .number(value) }
    /// A number value from an integer literal.
    public init(integerLiteral value: Int) { self = .number(Double(value)) }

    /// A string value from a UTF-8 string.
    public static func string(_ s: String) -> IndexValue { .string(Array(s.utf8)) }
}
