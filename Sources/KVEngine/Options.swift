import KVBase
import KVFileSystem

/// When an acknowledged write reaches stable storage. In every mode the WAL record is handed
/// to the OS before the write is acknowledged, so acknowledged writes survive a process crash
/// (kill -9); the modes differ in what survives a power loss.
public enum Durability: String, Sendable, CaseIterable {
    /// Acknowledged only after the WAL record is fsynced (group commit shares one fsync
    /// among concurrent writers). Survives power loss.
    case always
    /// A background thread fsyncs the WAL once a second: at most about a second of
    /// acknowledged writes can be lost to a power loss. The default.
    case everysec
    /// Never fsynced by the write path; the OS writes back when it chooses.
    case no
}

/// What the engine does with a WAL whose end is damaged.
public enum WALRecoveryMode: String, Sendable {
    /// A torn or corrupt record at the very end of the newest log (a write interrupted by a
    /// crash) is dropped; damage followed by valid records is reported as corruption. Default.
    case tolerateTornTail
    /// Any damaged record fails the open with a corruption error naming the file and offset.
    case strict
    /// Skip damaged records and keep what can be read (salvage; may lose acknowledged writes).
    case skipCorrupt
}

/// Options for ``Database/open(at:options:)``. Defaults follow LevelDB/RocksDB practice.
public struct Options: Sendable {
    /// The file system all engine I/O goes through. Default: the real one.
    public var fileSystem: any FileSystem = POSIXFileSystem()
    /// Default durability of writes (each write may override it). Default `.everysec`.
    public var durability: Durability = .everysec
    /// Memtable budget in bytes before it is flushed to an L0 table. Default 64 MiB.
    public var writeBufferSize: Int = 64 << 20
    /// Create the database directory when it does not exist. Default true.
    public var createIfMissing = true
    /// Fail if the database already exists. Default false.
    public var errorIfExists = false
    /// How a damaged WAL tail is treated on open. Default `.tolerateTornTail`.
    public var walRecovery: WALRecoveryMode = .tolerateTornTail

    /// Default options.
    public init() {}

    /// Checks every setting; throws ``KVError/invalidArgument(_:)`` naming the bad one.
    public func validate() throws(KVError) {
        if writeBufferSize < 4096 || writeBufferSize > 4 << 30 {
            throw .invalidArgument("writeBufferSize must be between 4 KiB and 4 GiB, got \(writeBufferSize)")
        }
    }
}
