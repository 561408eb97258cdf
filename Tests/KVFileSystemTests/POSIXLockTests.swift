import Foundation
import KVBase
import KVFileSystem
import Testing

/// `flock` lock files seen from a second process (util-linux `flock(1)`).
@Suite("POSIX lock files across processes")
struct POSIXLockTests {
    static let flockTool = "/usr/bin/flock"

    static var flockAvailable: Bool {
        if FileManager.default.isExecutableFile(atPath: flockTool) { return true }
        print("note: \(flockTool) is missing; skipping the two-process lock test")
        return false
    }

    static func run(_ arguments: [String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: flockTool)
        p.arguments = arguments
        try p.run()
        return p
    }

    @Test("another process cannot take a lock this process holds")
    func childCannotTakeHeldLock() throws {
        guard Self.flockAvailable else { return }
        let root = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let fs = POSIXFileSystem()
        let path = joinPath(root, "LOCK")

        let lock = try fs.lockFile(path)
        let blocked = try Self.run(["-n", path, "true"])
        blocked.waitUntilExit()
        #expect(blocked.terminationStatus == 1, "flock -n must fail while this process holds the lock")

        lock.unlock()
        let free = try Self.run(["-n", path, "true"])
        free.waitUntilExit()
        #expect(free.terminationStatus == 0, "flock -n must succeed once the lock is released")
    }

    @Test("this process cannot take a lock another process holds, and can once it dies")
    func cannotTakeLockHeldByChild() throws {
        guard Self.flockAvailable else { return }
        let root = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let fs = POSIXFileSystem()
        let path = joinPath(root, "LOCK")

        // `-o` closes the lock descriptor in `sleep`, so only flock(1) itself (the process we
        // terminate) holds the lock.
        let holder = try Self.run(["-o", path, "sleep", "3"])
        defer {
            if holder.isRunning { kill(holder.processIdentifier, SIGKILL) }
        }

        // Wait until the child holds the lock.
        let deadline = ContinuousClock.now + .seconds(2)
        var childHolds = false
        while ContinuousClock.now < deadline {
            do {
                let probe = try fs.lockFile(path)
                probe.unlock()
                Thread.sleep(forTimeInterval: 0.01)
            } catch KVError.locked(_) {
                childHolds = true
                break
            }
        }
        try #require(childHolds, "the child did not take the lock within 2 s")

        #expect(throws: KVError.locked(path: path)) { _ = try fs.lockFile(path) }

        #expect(kill(holder.processIdentifier, SIGKILL) == 0)
        holder.waitUntilExit()
        #expect(holder.terminationReason == .uncaughtSignal)

        let lock = try fs.lockFile(path)
        lock.unlock()
    }
}
