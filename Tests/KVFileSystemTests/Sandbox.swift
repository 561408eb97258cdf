import Foundation
import KVBase
import KVFileSystem
import Testing

/// The two implementations the shared behavioural tests run against.
enum FileSystemKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case posix
    case memory

    var testDescription: String { rawValue }
}

/// A file system and an empty directory to work in.
struct Sandbox {
    let fs: any FileSystem
    let root: String

    func path(_ name: String) -> String { joinPath(root, name) }

    /// Creates `name` in the root with `contents`, flushed and closed.
    func write(_ name: String, _ contents: [UInt8]) throws(KVError) {
        let f = try fs.createWritable(path(name))
        try f.append(contents)
        try f.close()
    }
}

/// Creates a fresh, uniquely named directory under /tmp.
func makeTemporaryDirectory() throws -> String {
    var template = Array("/tmp/shale-fs-test-XXXXXX".utf8CString)
    let created = template.withUnsafeMutableBufferPointer { buf in mkdtemp(buf.baseAddress!) }
    guard let created else {
        throw KVError.io(path: "/tmp", operation: "mkdtemp", errno: errno)
    }
    return String(cString: created)
}

/// Runs `body` against a fresh sandbox of the given kind; a POSIX sandbox is a new directory
/// under /tmp, removed afterwards.
func withSandbox(_ kind: FileSystemKind, _ body: (Sandbox) throws -> Void) throws {
    switch kind {
    case .memory:
        let fs = MemoryFileSystem()
        try fs.createDirectory("/sandbox")
        try body(Sandbox(fs: fs, root: "/sandbox"))
    case .posix:
        let root = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try body(Sandbox(fs: POSIXFileSystem(), root: root))
    }
}

/// Expects `body` to throw ``KVError/io(path:operation:errno:)`` with `errno`, and (when given)
/// a path that contains `path`. Returns the error.
@discardableResult
func expectIOError(
    errno expected: Int32,
    path expectedPath: String? = nil,
    _ comment: String = "",
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Void
) -> KVError? {
    do {
        try body()
        Issue.record("expected an I/O error with errno \(expected), nothing was thrown. \(comment)", sourceLocation: sourceLocation)
        return nil
    } catch {
        guard let error = error as? KVError, case .io(let path, _, let code) = error else {
            Issue.record("expected an I/O error with errno \(expected), got \(error). \(comment)", sourceLocation: sourceLocation)
            return error as? KVError
        }
        #expect(code == expected, "errno of \(error). \(comment)", sourceLocation: sourceLocation)
        if let expectedPath {
            #expect(path.contains(expectedPath), "path of \(error). \(comment)", sourceLocation: sourceLocation)
        }
        return error
    }
}

/// The seed of a randomized test: `SHALE_TEST_SEED` when set, a fresh random one otherwise.
/// Always printed so a failure can be replayed.
func testSeed(_ testName: String) -> UInt64 {
    let seed: UInt64
    if let raw = ProcessInfo.processInfo.environment["SHALE_TEST_SEED"], let fixed = UInt64(raw) {
        seed = fixed
    } else {
        seed = UInt64.random(in: 0...UInt64.max)
    }
    print("[seed] \(testName): \(seed) (replay with SHALE_TEST_SEED=\(seed))")
    return seed
}

extension SplitMix64 {
    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &self) }
    }
}

/// One positional read of up to `count` bytes at `offset`; returns what was read.
func readAt(_ file: any ReadableFile, _ offset: UInt64, count: Int) throws(KVError) -> [UInt8] {
    var buf = [UInt8](repeating: 0, count: count)
    let n = try buf.withUnsafeMutableBytes { p in
        Result { () throws(KVError) in try file.read(at: offset, into: p) }
    }.get()
    return Array(buf[..<n])
}
