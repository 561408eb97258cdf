/// The one error type of Shale's storage stack.
///
/// Every case names what went wrong and where: a corruption names the file and
/// byte offset, an I/O failure names the path, the operation and the `errno`.
/// Engine code throws it with typed throws (`throws(KVError)`); the public API
/// rethrows it unchanged.
public enum KVError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stored bytes failed a checksum or did not parse.
    case corruption(file: String, offset: UInt64, reason: String)
    /// A system call failed. `errno` is the C error number (e.g. `EIO`, `ENOSPC`).
    case io(path: String, operation: String, errno: Int32)
    /// The caller passed something the engine cannot accept (too large, malformed options, ...).
    case invalidArgument(String)
    /// Another process (or another `Database` in this process) holds the lock file.
    case locked(path: String)
    /// The database has been closed.
    case closed
    /// A previous background or write-path failure latched the database read-only.
    /// `cause` is the original error's description.
    case backgroundError(cause: String)
    /// An on-disk structure carries a format version this build does not read.
    case unsupportedFormat(file: String, version: UInt32)
    /// The requested thing does not exist (database directory, index, ...).
    case notFound(String)
    /// The operation is not valid in the current state (e.g. a second open of a store).
    case invalidState(String)
    /// The key holds a value of another type than the operation reads or changes (a string
    /// read of a hash, say). `key` is a printable form of the key.
    case wrongType(key: String)

    public var description: String {
        switch self {
        case .corruption(let file, let offset, let reason):
            return "corruption in \(file) at offset \(offset): \(reason)"
        case .io(let path, let operation, let errno):
            return "I/O error: \(operation) \(path): \(KVError.errnoName(errno)) (errno \(errno))"
        case .invalidArgument(let message):
            return "invalid argument: \(message)"
        case .locked(let path):
            return "database is locked by another process or handle: \(path)"
        case .closed:
            return "database is closed"
        case .backgroundError(let cause):
            return "database is read-only after an earlier failure: \(cause)"
        case .unsupportedFormat(let file, let version):
            return "unsupported format version \(version) in \(file)"
        case .notFound(let what):
            return "not found: \(what)"
        case .invalidState(let message):
            return "invalid state: \(message)"
        case .wrongType(let key):
            return "key \(key) holds a value of another type"
        }
    }

    /// Short symbolic names for the error numbers the engine meets most often.
    public static func errnoName(_ code: Int32) -> String {
        switch code {
        case 1: return "EPERM"
        case 2: return "ENOENT"
        case 5: return "EIO"
        case 9: return "EBADF"
        case 11: return "EAGAIN"
        case 13: return "EACCES"
        case 17: return "EEXIST"
        case 20: return "ENOTDIR"
        case 21: return "EISDIR"
        case 22: return "EINVAL"
        case 24: return "EMFILE"
        case 28: return "ENOSPC"
        case 30: return "EROFS"
        case 39: return "ENOTEMPTY"
        default: return "errno"
        }
    }
}

/// Documented size limits. Past them the engine throws ``KVError/invalidArgument(_:)``.
public enum KVLimits {
    /// Largest key accepted: 64 KiB - 1, so a key length always fits the block format's varint32
    /// and index keys stay small.
    public static let maxKeySize = 65_535
    /// Largest value accepted: 512 MiB, Redis's proto-max-bulk-len default.
    public static let maxValueSize = 512 * 1024 * 1024
    /// Largest encoded write batch: 1 GiB.
    public static let maxBatchSize = 1024 * 1024 * 1024
}

/// Runs `body` over the bytes of `array`, keeping `body`'s typed error (the standard
/// library's `withUnsafeBytes` rethrows it as `any Error`).
/// Inlinable, so callers in other modules specialize it: an unspecialized generic here cost
/// a runtime metadata lookup for `Result<R, KVError>` on every point read.
@inlinable @inline(__always)
package func withBytes<R>(_ array: [UInt8], _ body: (UnsafeRawBufferPointer) throws(KVError) -> R) throws(KVError) -> R {
    var result: R?
    var failure: KVError?
    array.withUnsafeBytes { p in
        do throws(KVError) {
            result = try body(p)
        } catch {
            failure = error
        }
    }
    if let failure { throw failure }
    return result!
}
