import KVBase
import Testing

@Suite("KVError")
struct KVErrorTests {
    @Test("corruption names the file, the offset and the reason")
    func corruption() {
        let d = KVError.corruption(file: "/db/000012.log", offset: 32_768, reason: "checksum mismatch").description
        #expect(d.contains("/db/000012.log"))
        #expect(d.contains("32768"))
        #expect(d.contains("checksum mismatch"))
        #expect(d.contains("corruption"))
    }

    @Test("I/O errors name the path, the operation and the errno", arguments: [
        (Int32(28), "ENOSPC"), (5, "EIO"), (2, "ENOENT"), (39, "ENOTEMPTY"), (13, "EACCES"),
    ])
    func io(_ code: Int32, _ name: String) {
        let d = KVError.io(path: "/db/MANIFEST-000003", operation: "fdatasync", errno: code).description
        #expect(d.contains("/db/MANIFEST-000003"))
        #expect(d.contains("fdatasync"))
        #expect(d.contains(name))
        #expect(d.contains("errno \(code)"))
    }

    @Test("errno names", arguments: [
        (Int32(1), "EPERM"), (2, "ENOENT"), (5, "EIO"), (9, "EBADF"), (11, "EAGAIN"), (13, "EACCES"),
        (17, "EEXIST"), (20, "ENOTDIR"), (21, "EISDIR"), (22, "EINVAL"), (24, "EMFILE"), (28, "ENOSPC"),
        (30, "EROFS"), (39, "ENOTEMPTY"),
    ])
    func errnoNames(_ code: Int32, _ name: String) {
        #expect(KVError.errnoName(code) == name)
    }

    @Test("unknown errno numbers still print their number")
    func unknownErrno() {
        #expect(KVError.errnoName(9999) == "errno")
        let d = KVError.io(path: "/x", operation: "read", errno: 9999).description
        #expect(d.contains("9999"))
        #expect(d.contains("/x"))
    }

    @Test("every other case says what happened")
    func otherCases() {
        #expect(KVError.locked(path: "/db/LOCK").description.contains("/db/LOCK"))
        #expect(KVError.invalidArgument("key too large").description.contains("key too large"))
        #expect(KVError.closed.description.contains("closed"))
        #expect(KVError.backgroundError(cause: "I/O error: write").description.contains("I/O error: write"))
        let unsupported = KVError.unsupportedFormat(file: "000005.sst", version: 9).description
        #expect(unsupported.contains("000005.sst"))
        #expect(unsupported.contains("9"))
        #expect(KVError.notFound("/db").description.contains("/db"))
        #expect(KVError.invalidState("already open").description.contains("already open"))
    }

    @Test("equality compares every field")
    func equality() {
        #expect(KVError.io(path: "a", operation: "w", errno: 5) == .io(path: "a", operation: "w", errno: 5))
        #expect(KVError.io(path: "a", operation: "w", errno: 5) != .io(path: "a", operation: "w", errno: 28))
        #expect(KVError.io(path: "a", operation: "w", errno: 5) != .io(path: "b", operation: "w", errno: 5))
        #expect(KVError.corruption(file: "f", offset: 1, reason: "r") != .corruption(file: "f", offset: 2, reason: "r"))
        #expect(KVError.locked(path: "p") != .closed)
    }

    @Test("documented limits")
    func limits() {
        #expect(KVLimits.maxKeySize == 65_535)
        #expect(KVLimits.maxValueSize == 512 << 20)
        #expect(KVLimits.maxBatchSize == 1 << 30)
    }
}
