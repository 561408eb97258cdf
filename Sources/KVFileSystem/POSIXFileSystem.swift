import KVBase
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The real file system: `open`/`pwrite`/`pread`/`fdatasync`/`rename`, directory fsync,
/// and `flock` lock files (per open file description, so a second open in the same
/// process conflicts too).
public struct POSIXFileSystem: FileSystem {
    public init() {}

    @inline(__always)
    static func fail(_ path: String, _ op: String) -> KVError {
        .io(path: path, operation: op, errno: errno)
    }

    public func createDirectory(_ path: String) throws(KVError) {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw Self.fail(current, "mkdir")
            }
        }
    }

    public func createWritable(_ path: String) throws(KVError) -> any WritableFile {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw Self.fail(path, "open for write") }
        return POSIXWritableFile(fd: fd, path: path, size: 0)
    }

    public func openAppendable(_ path: String) throws(KVError) -> any WritableFile {
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 { throw Self.fail(path, "open for append") }
        let end = lseek(fd, 0, SEEK_END)
        if end < 0 {
            let e = Self.fail(path, "lseek")
            close(fd)
            throw e
        }
        return POSIXWritableFile(fd: fd, path: path, size: UInt64(end))
    }

    public func openReadable(_ path: String) throws(KVError) -> any ReadableFile {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw Self.fail(path, "open for read") }
        var st = stat()
        if fstat(fd, &st) != 0 {
            let e = Self.fail(path, "fstat")
            close(fd)
            throw e
        }
        return POSIXReadableFile(fd: fd, path: path, size: UInt64(st.st_size))
    }

    public func fileExists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    public func fileSize(_ path: String) throws(KVError) -> UInt64 {
        var st = stat()
        if stat(path, &st) != 0 { throw Self.fail(path, "stat") }
        return UInt64(st.st_size)
    }

    public func listDirectory(_ path: String) throws(KVError) -> [String] {
        guard let dir = opendir(path) else { throw Self.fail(path, "opendir") }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { p in
                p.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    public func removeFile(_ path: String) throws(KVError) {
        if unlink(path) != 0 { throw Self.fail(path, "unlink") }
    }

    public func removeDirectory(_ path: String) throws(KVError) {
        if rmdir(path) != 0 { throw Self.fail(path, "rmdir") }
    }

    public func rename(_ from: String, _ to: String) throws(KVError) {
        if Glibc.rename(from, to) != 0 { throw Self.fail(from + " -> " + to, "rename") }
    }

    public func syncDirectory(_ path: String) throws(KVError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw Self.fail(path, "open directory") }
        defer { close(fd) }
        if fsync(fd) != 0 { throw Self.fail(path, "fsync directory") }
    }

    public func lockFile(_ path: String) throws(KVError) -> any FileLock {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 { throw Self.fail(path, "open lock file") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            close(fd)
            if code == EWOULDBLOCK { throw .locked(path: path) }
            throw .io(path: path, operation: "flock", errno: code)
        }
        return POSIXFileLock(fd: fd)
    }
}

/// Buffers appends in user space (64 KiB) and writes them with `write(2)`.
// @unchecked Sendable: one owner at a time (see ``WritableFile``); the buffer is never
// touched by two threads at once.
final class POSIXWritableFile: WritableFile, @unchecked Sendable {
    let fd: Int32
    let path: String
    private var buffer: UnsafeMutableRawPointer
    private var buffered = 0
    private let capacity = 64 * 1024
    private(set) var size: UInt64
    private var closed = false

    init(fd: Int32, path: String, size: UInt64) {
        self.fd = fd
        self.path = path
        self.size = size
        self.buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
    }

    deinit {
        Glibc.close(fd)
        buffer.deallocate()
    }

    func append(_ bytes: UnsafeRawBufferPointer) throws(KVError) {
        guard !closed else { throw .io(path: path, operation: "append after close", errno: EBADF) }
        let n = bytes.count
        if n == 0 { return }
        if buffered + n <= capacity {
            buffer.advanced(by: buffered).copyMemory(from: bytes.baseAddress!, byteCount: n)
            buffered += n
            size += UInt64(n)
            return
        }
        try flush()
        if n < capacity {
            buffer.copyMemory(from: bytes.baseAddress!, byteCount: n)
            buffered = n
        } else {
            try writeFully(bytes.baseAddress!, n)
        }
        size += UInt64(n)
    }

    private func writeFully(_ p: UnsafeRawPointer, _ n: Int) throws(KVError) {
        var done = 0
        while done < n {
            let r = Glibc.write(fd, p.advanced(by: done), n - done)
            if r < 0 {
                if errno == EINTR { continue }
                throw POSIXFileSystem.fail(path, "write")
            }
            done += r
        }
    }

    func flush() throws(KVError) {
        if buffered > 0 {
            let n = buffered
            buffered = 0
            try writeFully(buffer, n)
        }
    }

    func sync() throws(KVError) {
        try flush()
        if fdatasync(fd) != 0 { throw POSIXFileSystem.fail(path, "fdatasync") }
    }

    func syncFlushed() throws(KVError) {
        if fdatasync(fd) != 0 { throw POSIXFileSystem.fail(path, "fdatasync") }
    }

    /// Flushes and refuses further appends. The descriptor itself is closed when the object is
    /// freed, so a concurrent ``syncFlushed()`` never hits a closed or reused descriptor.
    func close() throws(KVError) {
        guard !closed else { return }
        closed = true
        try flush()
    }
}

final class POSIXReadableFile: ReadableFile {
    let fd: Int32
    let path: String
    let size: UInt64

    init(fd: Int32, path: String, size: UInt64) {
        self.fd = fd
        self.path = path
        self.size = size
    }

    deinit { close(fd) }

    func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(KVError) -> Int {
        var done = 0
        while done < buffer.count {
            let r = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if r < 0 {
                if errno == EINTR { continue }
                throw POSIXFileSystem.fail(path, "pread at \(offset)")
            }
            if r == 0 { break }
            done += r
        }
        return done
    }
}

final class POSIXFileLock: FileLock {
    private let fd: Mutex<Int32>

    init(fd: Int32) { self.fd = Mutex(fd) }

    func unlock() {
        fd.withLock { fd in
            if fd >= 0 {
                flock(fd, LOCK_UN)
                close(fd)
                fd = -1
            }
        }
    }

    deinit { unlock() }
}
