import KVBase

/// The file-system seam under all engine I/O.
///
/// The engine never calls the OS directly: it goes through a `FileSystem` so tests can
/// substitute ``MemoryFileSystem``, which simulates power loss (drops what was not
/// synced), process crashes, failing writes and syncs (EIO, ENOSPC) and flipped bytes.
///
/// Durability contract (the POSIX one): data appended to a ``WritableFile`` is durable
/// after ``WritableFile/sync()``; a new or renamed directory entry is durable after
/// ``syncDirectory(_:)`` on its directory.
public protocol FileSystem: Sendable {
    /// Creates `path` and any missing parents. Not an error if it exists.
    func createDirectory(_ path: String) throws(KVError)
    /// Creates (or truncates) a file for appending.
    func createWritable(_ path: String) throws(KVError) -> any WritableFile
    /// Opens an existing file for appending at its end.
    func openAppendable(_ path: String) throws(KVError) -> any WritableFile
    /// Opens a file for positional reads.
    func openReadable(_ path: String) throws(KVError) -> any ReadableFile
    /// Whether a file or directory exists at `path`.
    func fileExists(_ path: String) -> Bool
    /// Size in bytes of the file at `path`.
    func fileSize(_ path: String) throws(KVError) -> UInt64
    /// Names (not paths) of the entries of a directory.
    func listDirectory(_ path: String) throws(KVError) -> [String]
    /// Removes a file.
    func removeFile(_ path: String) throws(KVError)
    /// Removes an empty directory.
    func removeDirectory(_ path: String) throws(KVError)
    /// Atomically replaces `to` with `from`.
    func rename(_ from: String, _ to: String) throws(KVError)
    /// Makes the directory's entries (creations, renames, removals) durable.
    func syncDirectory(_ path: String) throws(KVError)
    /// Takes an exclusive advisory lock on `path` (created if missing). Fails with
    /// ``KVError/locked(path:)`` if another process or handle holds it.
    func lockFile(_ path: String) throws(KVError) -> any FileLock
}

/// An append-only file. Appends are buffered; ``flush()`` hands them to the OS (they then
/// survive a process crash), ``sync()`` makes them durable (they survive power loss).
///
/// Thread safety: one owner at a time (the WAL writer under group-commit leadership, or the
/// one thread building a table).
public protocol WritableFile: AnyObject, Sendable {
    /// Appends bytes to the file's buffer.
    func append(_ bytes: UnsafeRawBufferPointer) throws(KVError)
    /// Writes buffered bytes to the OS.
    func flush() throws(KVError)
    /// Flushes, then forces the data to stable storage (fdatasync).
    func sync() throws(KVError)
    /// Forces bytes already handed to the OS by ``flush()`` to stable storage, without touching
    /// the append buffer: the one call that may run on another thread while the owner appends
    /// (the WAL's once-a-second syncer). Safe after ``close()``.
    func syncFlushed() throws(KVError)
    /// Flushes and closes. Further appends fail.
    func close() throws(KVError)
    /// Bytes appended so far (buffered included).
    var size: UInt64 { get }
    /// The file's path, for error messages.
    var path: String { get }
}

extension WritableFile {
    /// Appends the bytes of an array.
    @inlinable
    public func append(_ bytes: [UInt8]) throws(KVError) {
        try bytes.withUnsafeBytes { p in Result { () throws(KVError) in try append(p) } }.get()
    }
}

/// A file opened for positional reads; safe to use from many threads at once.
public protocol ReadableFile: AnyObject, Sendable {
    /// Reads up to `buffer.count` bytes at `offset`; returns the number read (short at EOF).
    func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(KVError) -> Int
    /// The file's size when it was opened.
    var size: UInt64 { get }
    /// The file's path, for error messages.
    var path: String { get }
}

extension ReadableFile {
    /// Reads exactly `count` bytes at `offset` into a new array, or fails with a corruption
    /// error naming the file and offset when the file is shorter.
    public func readExactly(at offset: UInt64, count: Int) throws(KVError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let got = try out.withUnsafeMutableBytes { buf in
            Result { () throws(KVError) in try read(at: offset, into: buf) }
        }.get()
        if got != count {
            throw .corruption(file: path, offset: offset, reason: "short read: wanted \(count) bytes, got \(got)")
        }
        return out
    }

    /// Reads the whole file.
    public func readAll() throws(KVError) -> [UInt8] {
        try readExactly(at: 0, count: Int(size))
    }
}

/// A held advisory lock; released by ``unlock()`` or when the object is freed.
public protocol FileLock: AnyObject, Sendable {
    /// Releases the lock.
    func unlock()
}

/// Joins path components with `/`.
@inlinable
public func joinPath(_ directory: String, _ name: String) -> String {
    directory.hasSuffix("/") ? directory + name : directory + "/" + name
}

/// The directory part of a path ("." when there is none).
public func parentDirectory(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    if slash == path.startIndex { return "/" }
    return String(path[..<slash])
}

/// The last component of a path.
public func baseName(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return path }
    return String(path[path.index(after: slash)...])
}

extension FileSystem {
    /// Writes `contents` to `path` atomically: a temporary file is written and synced,
    /// renamed over `path`, and the directory is synced.
    public func writeFileAtomically(_ path: String, _ contents: [UInt8]) throws(KVError) {
        let tmp = path + ".tmp"
        let file = try createWritable(tmp)
        try file.append(contents)
        try file.sync()
        try file.close()
        try rename(tmp, path)
        try syncDirectory(parentDirectory(path))
    }

    /// Reads a whole file.
    public func readFile(_ path: String) throws(KVError) -> [UInt8] {
        let f = try openReadable(path)
        return try f.readAll()
    }
}
