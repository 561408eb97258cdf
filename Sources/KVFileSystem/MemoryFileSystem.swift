import KVBase
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An in-memory ``FileSystem`` for tests that models what a real disk does on failure.
///
/// - Appends are buffered in the handle until ``WritableFile/flush()``; flushed bytes are
///   "in the OS" and survive ``simulateProcessCrash()`` (kill -9) but not
///   ``simulatePowerLoss(tornTailSeed:)``, which keeps only what was synced (optionally a
///   random torn prefix of the rest) and only directory entries made durable by
///   ``syncDirectory(_:)``.
/// - ``inject(_:)`` adds a fault rule: fail the Nth matching write, sync, rename, read,
///   create or remove with an errno (EIO, ENOSPC, ...).
/// - ``flipBytes(_:at:mask:)`` corrupts stored bytes in place.
///
/// Directories themselves are durable as soon as they are created. After a crash every
/// handle opened before it fails with EIO, as a dead process's descriptors would.
public final class MemoryFileSystem: FileSystem, Sendable {
    /// The operations a ``FaultRule`` can target.
    public enum Operation: Sendable, Equatable {
        case write, sync, rename, read, create, remove
    }

    /// Fails matching operations: lets `skip` of them pass, then fails the next `count`
    /// (use `Int.max` for "until cleared") with `errno`.
    public struct FaultRule: Sendable {
        public var operation: Operation
        public var pathContains: String?
        public var skip: Int
        public var count: Int
        public var errno: Int32

        public init(_ operation: Operation, pathContains: String? = nil, skip: Int = 0, count: Int = 1, errno: Int32 = 5) {
            self.operation = operation
            self.pathContains = pathContains
            self.skip = skip
            self.count = count
            self.errno = errno
        }
    }

    final class Node {
        var data: [UInt8] = []
        var synced = 0
    }

    struct Directory {
        var entries: [String: Node] = [:]
        var durable: [String: Node] = [:]
    }

    struct State {
        var directories: [String: Directory] = ["/": Directory()]
        var rules: [FaultRule] = []
        var locks: Set<String> = []
        var epoch = 0
        var operationCounts: [String: Int] = [:]
        var syncDelayMicroseconds: UInt32 = 0
    }

    let state = Mutex(State())

    public init() {}

    static func normalize(_ path: String) -> String {
        var parts: [Substring] = []
        for c in path.split(separator: "/", omittingEmptySubsequences: true) {
            if c == "." { continue }
            if c == ".." { _ = parts.popLast(); continue }
            parts.append(c)
        }
        return "/" + parts.joined(separator: "/")
    }

    static func split(_ path: String) -> (dir: String, name: String) {
        let p = normalize(path)
        return (parentDirectory(p), baseName(p))
    }

    // MARK: fault control

    /// Adds a fault rule.
    public func inject(_ rule: FaultRule) {
        state.withLock { $0.rules.append(rule) }
    }

    /// Removes every fault rule: the "disk" works again.
    public func clearFaults() {
        state.withLock { $0.rules.removeAll() }
    }

    /// XORs `mask` into the byte at `offset` of the file at `path`.
    public func flipBytes(_ path: String, at offset: Int, mask: UInt8 = 0xFF) {
        state.withLock { s in
            let (d, n) = Self.split(path)
            if let node = s.directories[d]?.entries[n], offset < node.data.count {
                node.data[offset] ^= mask
            }
        }
    }

    /// Cuts the file at `path` to `length` bytes (synced data included).
    public func truncate(_ path: String, to length: Int) {
        state.withLock { s in
            let (d, n) = Self.split(path)
            if let node = s.directories[d]?.entries[n], length < node.data.count {
                node.data.removeSubrange(length...)
                node.synced = min(node.synced, length)
            }
        }
    }

    /// Makes every file sync take this long (outside the file-system lock), like a real disk's
    /// fsync latency; lets tests observe group commit.
    public func setSyncDelay(microseconds: UInt32) {
        state.withLock { $0.syncDelayMicroseconds = microseconds }
    }

    /// How many operations of a kind were attempted (for tests that pick a crash point).
    public func count(of operation: Operation) -> Int {
        state.withLock { $0.operationCounts["\(operation)"] ?? 0 }
    }

    /// kill -9: bytes still buffered in open handles are lost; everything flushed stays,
    /// and every open handle becomes invalid.
    public func simulateProcessCrash() {
        state.withLock { s in
            s.epoch += 1
            s.locks.removeAll()
        }
    }

    /// Power loss: every file keeps only its synced bytes (plus, with a seed, a random
    /// prefix of its unsynced tail, modelling a torn write), and every directory keeps only
    /// the entries made durable by ``syncDirectory(_:)``.
    public func simulatePowerLoss(tornTailSeed: UInt64? = nil) {
        state.withLock { s in
            s.epoch += 1
            s.locks.removeAll()
            var rng = SplitMix64(seed: tornTailSeed ?? 0)
            var seen = Set<ObjectIdentifier>()
            // Sorted, so the torn tails a seed picks do not depend on dictionary order.
            for name in s.directories.keys.sorted() {
                var dir = s.directories[name]!
                dir.entries = dir.durable
                for entry in dir.entries.keys.sorted() {
                    let node = dir.entries[entry]!
                    guard seen.insert(ObjectIdentifier(node)).inserted else { continue }
                    var keep = node.synced
                    if tornTailSeed != nil && node.data.count > node.synced {
                        keep += Int(rng.next() % UInt64(node.data.count - node.synced + 1))
                    }
                    if keep < node.data.count { node.data.removeSubrange(keep...) }
                    node.synced = node.data.count
                }
                s.directories[name] = dir
            }
        }
    }

    /// Throws the error of the first rule that fires for this operation.
    func check(_ s: inout State, _ op: Operation, _ path: String) throws(KVError) {
        s.operationCounts["\(op)", default: 0] += 1
        for i in s.rules.indices {
            let r = s.rules[i]
            guard r.operation == op, r.count > 0 else { continue }
            if let sub = r.pathContains, !path.contains(sub) { continue }
            if r.skip > 0 {
                s.rules[i].skip -= 1
                continue
            }
            if r.count != Int.max { s.rules[i].count -= 1 }
            throw .io(path: path, operation: "\(op) (injected)", errno: r.errno)
        }
    }

    func node(_ s: State, _ path: String) throws(KVError) -> Node {
        let (d, n) = Self.split(path)
        guard let node = s.directories[d]?.entries[n] else {
            throw .io(path: path, operation: "open", errno: 2)
        }
        return node
    }

    // MARK: FileSystem

    public func createDirectory(_ path: String) throws(KVError) {
        state.withLock { s in
            var current = ""
            for c in Self.normalize(path).split(separator: "/") {
                current += "/" + c
                if s.directories[current] == nil { s.directories[current] = Directory() }
            }
        }
    }

    public func createWritable(_ path: String) throws(KVError) -> any WritableFile {
        try state.withLock { (s) throws(KVError) -> any WritableFile in
            try check(&s, .create, path)
            let (d, n) = Self.split(path)
            guard s.directories[d] != nil else { throw .io(path: path, operation: "create", errno: 2) }
            let node = Node()
            s.directories[d]!.entries[n] = node
            return MemoryWritableFile(fs: self, node: node, path: path, epoch: s.epoch, size: 0)
        }
    }

    public func openAppendable(_ path: String) throws(KVError) -> any WritableFile {
        try state.withLock { (s) throws(KVError) -> any WritableFile in
            let (d, n) = Self.split(path)
            guard s.directories[d] != nil else { throw .io(path: path, operation: "open for append", errno: 2) }
            let node: Node
            if let existing = s.directories[d]!.entries[n] {
                node = existing
            } else {
                try check(&s, .create, path)
                node = Node()
                s.directories[d]!.entries[n] = node
            }
            return MemoryWritableFile(fs: self, node: node, path: path, epoch: s.epoch, size: UInt64(node.data.count))
        }
    }

    public func openReadable(_ path: String) throws(KVError) -> any ReadableFile {
        try state.withLock { (s) throws(KVError) -> any ReadableFile in
            let node = try node(s, path)
            return MemoryReadableFile(fs: self, node: node, path: path, epoch: s.epoch, size: UInt64(node.data.count))
        }
    }

    public func fileExists(_ path: String) -> Bool {
        state.withLock { s in
            let p = Self.normalize(path)
            if s.directories[p] != nil { return true }
            let (d, n) = Self.split(p)
            return s.directories[d]?.entries[n] != nil
        }
    }

    public func fileSize(_ path: String) throws(KVError) -> UInt64 {
        try state.withLock { (s) throws(KVError) -> UInt64 in UInt64(try node(s, path).data.count) }
    }

    public func listDirectory(_ path: String) throws(KVError) -> [String] {
        try state.withLock { (s) throws(KVError) -> [String] in
            let p = Self.normalize(path)
            guard let dir = s.directories[p] else { throw .io(path: path, operation: "opendir", errno: 2) }
            var names = Array(dir.entries.keys)
            let prefix = p == "/" ? "/" : p + "/"
            for sub in s.directories.keys where sub.hasPrefix(prefix) && sub != p {
                let rest = sub.dropFirst(prefix.count)
                if !rest.contains("/") { names.append(String(rest)) }
            }
            return names.sorted()
        }
    }

    public func removeFile(_ path: String) throws(KVError) {
        try state.withLock { (s) throws(KVError) in
            try check(&s, .remove, path)
            let (d, n) = Self.split(path)
            guard s.directories[d]?.entries.removeValue(forKey: n) != nil else {
                throw .io(path: path, operation: "unlink", errno: 2)
            }
        }
    }

    public func removeDirectory(_ path: String) throws(KVError) {
        try state.withLock { (s) throws(KVError) in
            let p = Self.normalize(path)
            guard let dir = s.directories[p] else { throw .io(path: path, operation: "rmdir", errno: 2) }
            let prefix = p + "/"
            if !dir.entries.isEmpty || s.directories.keys.contains(where: { $0.hasPrefix(prefix) }) {
                throw .io(path: path, operation: "rmdir", errno: 39)
            }
            s.directories[p] = nil
        }
    }

    public func rename(_ from: String, _ to: String) throws(KVError) {
        try state.withLock { (s) throws(KVError) in
            try check(&s, .rename, from)
            let (fd, fname) = Self.split(from)
            let (td, tname) = Self.split(to)
            guard let node = s.directories[fd]?.entries[fname] else {
                throw .io(path: from, operation: "rename", errno: 2)
            }
            guard s.directories[td] != nil else { throw .io(path: to, operation: "rename", errno: 2) }
            s.directories[fd]!.entries[fname] = nil
            s.directories[td]!.entries[tname] = node
        }
    }

    public func syncDirectory(_ path: String) throws(KVError) {
        try state.withLock { (s) throws(KVError) in
            try check(&s, .sync, path)
            let p = Self.normalize(path)
            guard s.directories[p] != nil else { throw .io(path: path, operation: "fsync directory", errno: 2) }
            s.directories[p]!.durable = s.directories[p]!.entries
        }
    }

    public func lockFile(_ path: String) throws(KVError) -> any FileLock {
        try state.withLock { (s) throws(KVError) -> any FileLock in
            let p = Self.normalize(path)
            let (d, n) = Self.split(p)
            guard s.directories[d] != nil else { throw .io(path: path, operation: "open lock file", errno: 2) }
            if s.locks.contains(p) { throw .locked(path: path) }
            s.locks.insert(p)
            if s.directories[d]!.entries[n] == nil { s.directories[d]!.entries[n] = Node() }
            return MemoryFileLock(fs: self, path: p, epoch: s.epoch)
        }
    }
}

// @unchecked Sendable: `node` is only read or written while holding `fs.state`'s lock, and
// `pending` belongs to the handle's single owner (see ``WritableFile``).
final class MemoryWritableFile: WritableFile, @unchecked Sendable {
    let fs: MemoryFileSystem
    let node: MemoryFileSystem.Node
    let path: String
    let epoch: Int
    private var pending: [UInt8] = []
    private(set) var size: UInt64
    private var closed = false

    init(fs: MemoryFileSystem, node: MemoryFileSystem.Node, path: String, epoch: Int, size: UInt64) {
        self.fs = fs
        self.node = node
        self.path = path
        self.epoch = epoch
        self.size = size
    }

    func append(_ bytes: UnsafeRawBufferPointer) throws(KVError) {
        if closed { throw .io(path: path, operation: "append after close", errno: 9) }
        pending.append(contentsOf: bytes)
        size += UInt64(bytes.count)
    }

    func flush() throws(KVError) {
        if pending.isEmpty { return }
        try fs.state.withLock { (s) throws(KVError) in
            if s.epoch != epoch { throw .io(path: path, operation: "write after crash", errno: 5) }
            try fs.check(&s, .write, path)
            node.data.append(contentsOf: pending)
        }
        pending.removeAll(keepingCapacity: true)
    }

    func sync() throws(KVError) {
        try flush()
        try syncFlushed()
    }

    func syncFlushed() throws(KVError) {
        let delay = fs.state.withLock { $0.syncDelayMicroseconds }
        if delay > 0 { usleep(delay) }
        try fs.state.withLock { (s) throws(KVError) in
            if s.epoch != epoch { throw .io(path: path, operation: "fdatasync after crash", errno: 5) }
            try fs.check(&s, .sync, path)
            node.synced = node.data.count
        }
    }

    func close() throws(KVError) {
        if closed { return }
        closed = true
        try flush()
    }
}

// @unchecked Sendable: `node` is only read while holding `fs.state`'s lock.
final class MemoryReadableFile: ReadableFile, @unchecked Sendable {
    let fs: MemoryFileSystem
    let node: MemoryFileSystem.Node
    let path: String
    let epoch: Int
    let size: UInt64

    init(fs: MemoryFileSystem, node: MemoryFileSystem.Node, path: String, epoch: Int, size: UInt64) {
        self.fs = fs
        self.node = node
        self.path = path
        self.epoch = epoch
        self.size = size
    }

    func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(KVError) -> Int {
        try fs.state.withLock { (s) throws(KVError) -> Int in
            if s.epoch != epoch { throw .io(path: path, operation: "read after crash", errno: 5) }
            try fs.check(&s, .read, path)
            let data = node.data
            guard offset < UInt64(data.count) else { return 0 }
            let n = min(buffer.count, data.count - Int(offset))
            data.withUnsafeBytes { src in
                buffer.baseAddress!.copyMemory(from: src.baseAddress! + Int(offset), byteCount: n)
            }
            return n
        }
    }
}

final class MemoryFileLock: FileLock {
    let fs: MemoryFileSystem
    let path: String
    let epoch: Int
    private let released = Atomic<Bool>(false)

    init(fs: MemoryFileSystem, path: String, epoch: Int) {
        self.fs = fs
        self.path = path
        self.epoch = epoch
    }

    func unlock() {
        if released.exchange(true, ordering: .acquiringAndReleasing) { return }
        fs.state.withLock { s in
            if s.epoch == epoch { s.locks.remove(path) }
        }
    }

    deinit { unlock() }
}

/// A tiny deterministic PRNG (SplitMix64) so seeded tests replay exactly.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E9B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
