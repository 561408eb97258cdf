import KVBase
import Synchronization

/// Live snapshots by sequence number, so compaction knows which old versions to keep.
final class SnapshotList: Sendable {
    private let counts = Mutex<[SequenceNumber: Int]>([:])

    func acquire(_ sequence: SequenceNumber) {
        counts.withLock { $0[sequence, default: 0] += 1 }
    }

    func release(_ sequence: SequenceNumber) {
        counts.withLock { c in
            if let n = c[sequence] {
                c[sequence] = n > 1 ? n - 1 : nil
            }
        }
    }

    /// The oldest live snapshot's sequence, if any.
    var oldest: SequenceNumber? {
        counts.withLock { $0.keys.min() }
    }

    var count: Int { counts.withLock { $0.values.reduce(0, +) } }
}

/// A consistent, read-only view of a database at one sequence number.
///
/// Reads through a snapshot see exactly the writes committed before it was taken, however
/// many writes, flushes and compactions happen afterwards. The snapshot is released when the
/// object is freed (or by ``release()``); holding one keeps old versions from being compacted
/// away, so do not keep snapshots longer than needed.
public final class Snapshot: Sendable {
    /// The sequence number of the last write visible through this snapshot.
    public let sequence: SequenceNumber
    let list: SnapshotList
    private let released = Atomic<Bool>(false)

    init(sequence: SequenceNumber, list: SnapshotList) {
        self.sequence = sequence
        self.list = list
        list.acquire(sequence)
    }

    /// Releases the snapshot early. Do not read through it afterwards: compaction is then
    /// free to drop the versions it would have shown.
    public func release() {
        if !released.exchange(true, ordering: .acquiringAndReleasing) { list.release(sequence) }
    }

    deinit { release() }
}
