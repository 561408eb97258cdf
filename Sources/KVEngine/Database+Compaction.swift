import KVBase
import KVFileSystem
import KVTable

#if canImport(Glibc)
import Glibc
#endif

/// A `compactRange` request, served by the background thread one level per step.
struct ManualCompaction {
    var lower: [UInt8]?
    var upper: [UInt8]?
    var level = 0
    var lastLevel: Int
    var done = false
    var error: KVError?
}

extension Database {
    /// Compacts every table overlapping [lower, upper] (nil = open) down the tree, dropping
    /// overwritten versions and tombstones no snapshot needs. `compactRange(nil, nil)` is a
    /// full compaction. Flushes the memtable first. Returns when done.
    public func compactRange(_ lower: [UInt8]?, _ upper: [UInt8]?) throws(KVError) {
        try flush()
        try state.locked { (s) throws(KVError) in
            while s.pointee.manualCompaction != nil {
                if s.pointee.closed { throw .closed }
                state.wait(backgroundDone, timeoutNanoseconds: 100_000_000)
            }
            // Compact every level into the next down to the deepest one holding the range,
            // then rewrite that one in place, so tombstones and filtered entries there go too.
            var deepest = 0
            for level in 0..<numLevels where !s.pointee.version.overlapping(level, lower, upper).isEmpty {
                deepest = level
            }
            let last = deepest
            s.pointee.manualCompaction = ManualCompaction(lower: lower, upper: upper, lastLevel: last)
            backgroundWork.signal()
            while !(s.pointee.manualCompaction?.done ?? true) {
                if s.pointee.closed { throw .closed }
                if let e = s.pointee.backgroundError {
                    s.pointee.manualCompaction = nil
                    throw .backgroundError(cause: e.description)
                }
                state.wait(backgroundDone, timeoutNanoseconds: 100_000_000)
            }
            let error = s.pointee.manualCompaction?.error
            s.pointee.manualCompaction = nil
            backgroundDone.broadcast()
            if let error { throw error }
        }
    }

    /// Picks the next compaction with the mutex held: a manual request first, then the level
    /// with the highest score.
    func pickCompactionLocked(_ s: UnsafeMutablePointer<State>) -> (Compaction, manual: Bool)? {
        if var m = s.pointee.manualCompaction, !m.done {
            while m.level <= m.lastLevel {
                let level = m.level
                let inputs = s.pointee.version.overlapping(level, m.lower, m.upper)
                m.level += 1
                let inPlace = level == m.lastLevel && level > 0
                if let c = s.pointee.version.compaction(level: level, inputs: inputs, manual: true, inPlace: inPlace) {
                    s.pointee.manualCompaction = m
                    return (c, true)
                }
            }
            m.done = true
            s.pointee.manualCompaction = m
            backgroundDone.broadcast()
        }
        guard let c = s.pointee.version.pickCompaction(options: options, compactPointers: s.pointee.compactPointers) else {
            return nil
        }
        return (c, false)
    }

    /// Runs one compaction and installs its result.
    func runCompaction(_ c: Compaction) throws(KVError) {
        options.compactionHook?()
        let started = UInt64(monotonicNanos())
        if c.isTrivialMove(targetFileSize: options.targetFileSize) {
            let f = c.inputs[0][0]
            var edit = VersionEdit()
            edit.deletedFiles.append((c.level, f.number))
            edit.newFiles.append((c.outputLevel, f))
            edit.compactPointers.append((c.level, f.largest))
            try logAndApply(&edit) { s in
                s.stats.trivialMoves += 1
            }
            return
        }
        let (smallestSnapshot, version): (SequenceNumber, Version) = state.withLock { s in
            (snapshots.oldest ?? s.lastSequence, s.version)
        }
        var children: [any InternalIterator] = []
        if c.level == 0 {
            for f in c.inputs[0] { children.append(try tables.reader(f.number).makeIterator(fillCache: false)) }
        } else {
            children.append(LevelIterator(files: c.inputs[0], tables: tables, fillCache: false))
        }
        if !c.inputs[1].isEmpty { children.append(LevelIterator(files: c.inputs[1], tables: tables, fillCache: false)) }
        let input = MergingIterator(children)
        let output = CompactionOutput(db: self, compaction: c)
        // The lookup filter reads the database as of the oldest snapshot any reader holds:
        // what is dead there is dead for every reader.
        let oldest = options.compactionLookupFilter == nil ? nil : Snapshot(sequence: smallestSnapshot, list: snapshots)
        defer { oldest?.release() }
        let lookup: (UnsafeRawBufferPointer) throws(KVError) -> [UInt8]? = { k throws(KVError) in
            try self.get(k, snapshot: oldest)
        }
        do throws(KVError) {
            try input.seekToFirst()
            let currentKey = ScratchBuffer()
            var hasCurrent = false
            var lastSequenceForKey = SequenceNumber.max
            var dropped = 0
            while input.isValid {
                let key = input.key
                let user = InternalKey.userKey(key)
                let seq = InternalKey.sequence(key)
                let newUserKey = !hasCurrent || compareBytes(user, currentKey.bytes) != 0
                if newUserKey {
                    currentKey.assign(user)
                    hasCurrent = true
                    lastSequenceForKey = SequenceNumber.max
                }
                var drop = false
                var tombstone = false
                if lastSequenceForKey <= smallestSnapshot {
                    // A newer version of this key is visible to every snapshot.
                    drop = true
                } else if InternalKey.kind(key) == .deletion && seq <= smallestSnapshot
                    && !version.deeperLevelsMayContain(user, below: c.outputLevel)
                {
                    drop = true
                } else if seq <= smallestSnapshot, InternalKey.kind(key) == .value,
                    options.compactionFilter?(user, input.value) == true
                        || options.compactionLookupFilter?(user, input.value, lookup) == true
                {
                    // The filter deletes the key: drop it at the bottom, otherwise leave a
                    // tombstone so older versions deeper down stay hidden.
                    if version.deeperLevelsMayContain(user, below: c.outputLevel) { tombstone = true } else { drop = true }
                }
                lastSequenceForKey = seq
                if drop {
                    dropped += 1
                } else if tombstone {
                    let k = ScratchBuffer()
                    k.append(user)
                    k.appendFixed64(packTrailer(seq, .deletion))
                    try output.add(k.bytes, UnsafeRawBufferPointer(start: nil, count: 0), newUserKey: newUserKey)
                } else {
                    try output.add(key, input.value, newUserKey: newUserKey)
                }
                try input.next()
            }
            let outputs = try output.finish()
            var edit = VersionEdit()
            for (i, list) in c.inputs.enumerated() {
                for f in list { edit.deletedFiles.append((c.level + i, f.number)) }
            }
            // An in-place rewrite deletes and adds at the same level: deletions apply first.
            for f in outputs { edit.newFiles.append((c.outputLevel, f)) }
            if let last = c.inputs[0].map(\.largest).max(by: { InternalKey.compare($0, $1) < 0 }) {
                edit.compactPointers.append((c.level, last))
            }
            let written = outputs.reduce(0) { $0 + $1.size }
            let elapsed = UInt64(monotonicNanos()) - started
            // From here on the manifest may name the outputs (a failed sync can still reach
            // the disk), so a failure must leave them for the next open to judge.
            defer { output.release() }
            try logAndApply(&edit) { s in
                s.stats.compactions += 1
                s.stats.compactionBytesRead += c.inputBytes
                s.stats.compactionBytesWritten += written
                s.stats.compactionNanos += elapsed
                s.stats.compactionEntriesDropped += dropped
            }
        } catch {
            if !output.isReleased { output.abandon() }
            throw error
        }
    }
}

/// Writes a compaction's output tables, cutting at the target size or when the current
/// file overlaps too many grandparent bytes, and only between user keys (so two tables of
/// one level never share a user key).
final class CompactionOutput {
    let db: Database
    let compaction: Compaction
    private var builder: TableBuilder?
    private var number: UInt64 = 0
    private var smallest: [UInt8] = []
    private let largest = ScratchBuffer()
    private var done: [FileMetaData] = []
    private var numbers: [UInt64] = []
    private var grandparentIndex = 0
    private var overlappedBytes: UInt64 = 0
    private var seenKey = false

    init(db: Database, compaction: Compaction) {
        self.db = db
        self.compaction = compaction
    }

    /// Whether to close the current file before `key` (LevelDB's ShouldStopBefore).
    private func shouldStopBefore(_ key: UnsafeRawBufferPointer) -> Bool {
        let gp = compaction.grandparents
        while grandparentIndex < gp.count && gp[grandparentIndex].largest.withUnsafeBytes({ InternalKey.compare(key, $0) }) > 0 {
            if seenKey { overlappedBytes += gp[grandparentIndex].size }
            grandparentIndex += 1
        }
        seenKey = true
        if overlappedBytes > UInt64(10 * db.options.targetFileSize) {
            overlappedBytes = 0
            return true
        }
        return false
    }

    func add(_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, newUserKey: Bool) throws(KVError) {
        let stop = shouldStopBefore(key)
        if let b = builder, newUserKey, stop || b.estimatedFileSize >= UInt64(db.options.targetFileSize) {
            try closeCurrent()
        }
        if builder == nil {
            number = db.state.withLock { s in
                let n = s.nextFileNumber
                s.nextFileNumber += 1
                s.pendingOutputs.insert(n)
                return n
            }
            numbers.append(number)
            let file = try db.fs.createWritable(FileNames.table(db.path, number))
            builder = TableBuilder(file: file, options: db.options.tableOptions)
            smallest = Array(key)
        }
        try builder!.add(key, value)
        largest.assign(key)
    }

    private func closeCurrent() throws(KVError) {
        guard let b = builder else { return }
        builder = nil
        let props = try b.finish()
        done.append(FileMetaData(number: number, size: props.fileSize, smallest: smallest, largest: largest.array))
    }

    func finish() throws(KVError) -> [FileMetaData] {
        try closeCurrent()
        return done
    }

    /// Whether ``release()`` ran (the outputs were handed to the manifest).
    private(set) var isReleased = false

    /// After install: the outputs are live, stop protecting them.
    func release() {
        isReleased = true
        let numbers = self.numbers
        db.state.withLock { s in for n in numbers { s.pendingOutputs.remove(n) } }
    }

    /// On failure: remove what was written.
    func abandon() {
        builder?.abandon()
        builder = nil
        for n in numbers { try? db.fs.removeFile(FileNames.table(db.path, n)) }
        release()
    }
}
