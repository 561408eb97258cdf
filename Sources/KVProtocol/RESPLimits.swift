/// Bounds the decoders enforce on untrusted input.
///
/// Defaults follow Redis: `proto-max-bulk-len` (512 MB), `PROTO_INLINE_MAX_SIZE` (64 KB)
/// and the multibulk count bound (1,048,576 arguments; Redis before 7.0 used this bound,
/// Redis 7 and later accept up to `INT_MAX`). No limit causes memory to be reserved up
/// front: the decoders grow storage only as bytes arrive.
public struct RESPLimits: Sendable, Hashable {
    /// Largest bulk string accepted, in bytes (`proto-max-bulk-len`). Default 512 MB.
    ///
    /// A request whose `$<n>` header exceeds it fails with
    /// `ERR Protocol error: invalid bulk length`.
    public var maxBulkLength: Int
    /// Largest number of arguments in one multibulk request. Default 1,048,576.
    ///
    /// A request whose `*<n>` header exceeds it fails with
    /// `ERR Protocol error: invalid multibulk length`.
    public var maxMultibulkLength: Int
    /// Longest inline request line, and longest header line (`*<n>`, `$<n>`), in bytes,
    /// not counting the terminator. Default 65,536 (`PROTO_INLINE_MAX_SIZE`).
    public var maxInlineLength: Int
    /// Largest element count of one aggregate in a reply (``RESPValueDecoder`` only).
    /// Default 4,294,967,295.
    public var maxAggregateLength: Int
    /// Deepest nesting of aggregates in a reply (``RESPValueDecoder`` only). Default 64.
    public var maxNestingDepth: Int

    /// Creates limits; every parameter defaults to the documented default.
    public init(
        maxBulkLength: Int = 512 * 1024 * 1024,
        maxMultibulkLength: Int = 1024 * 1024,
        maxInlineLength: Int = 64 * 1024,
        maxAggregateLength: Int = (1 << 32) - 1,
        maxNestingDepth: Int = 64
    ) {
        self.maxBulkLength = maxBulkLength
        self.maxMultibulkLength = maxMultibulkLength
        self.maxInlineLength = maxInlineLength
        self.maxAggregateLength = maxAggregateLength
        self.maxNestingDepth = maxNestingDepth
    }

    /// The default limits.
    public static var `default`: RESPLimits { RESPLimits() }

    /// Checks that every limit is usable.
    ///
    /// - Throws: ``ValidationError`` naming the first limit that is zero or negative, or
    ///   larger than the protocol can express (`Int32.max` for counts and line lengths,
    ///   `Int64.max / 2` for bulk and aggregate lengths, 4,096 for nesting).
    public func validate() throws(ValidationError) {
        func check(_ value: Int, _ name: String, max: Int) throws(ValidationError) {
            guard value >= 1, value <= max else {
                throw ValidationError(message: "\(name) must be between 1 and \(max), got \(value)")
            }
        }
        try check(maxBulkLength, "maxBulkLength", max: Int(Int64.max / 2))
        try check(maxMultibulkLength, "maxMultibulkLength", max: Int(Int32.max))
        try check(maxInlineLength, "maxInlineLength", max: Int(Int32.max))
        try check(maxAggregateLength, "maxAggregateLength", max: Int(Int64.max / 2))
        try check(maxNestingDepth, "maxNestingDepth", max: 4096)
    }

    /// A limit that ``validate()`` rejected.
    public struct ValidationError: Error, Sendable, Hashable, CustomStringConvertible {
        /// What is wrong, naming the limit.
        public var message: String
        /// Same as ``message``.
        public var description: String { message }
    }
}
