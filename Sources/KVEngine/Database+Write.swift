import KVBase
import KVFileSystem
import KVLog

extension Database {
    /// Stores `value` under `key`, replacing any previous value.
    ///
    /// - Parameter durability: overrides ``Options/durability`` for this write.
    /// - Throws: ``KVError`` (limits, closed database, a latched write error).
    public func put(_ key: [UInt8], _ value: [UInt8], durability: Durability? = nil) throws {
        var batch = WriteBatch()
        batch.put(key, value)
        try commit(batch, durability: durability)
    }

    /// Stores a UTF-8 string value under a UTF-8 string key.
    public func put(_ key: String, _ value: String, durability: Durability? = nil) throws {
        try put(Array(key.utf8), Array(value.utf8), durability: durability)
    }

    /// Removes `key`. Removing a missing key is not an error.
    public func delete(_ key: [UInt8], durability: Durability? = nil) throws {
        var batch = WriteBatch()
        batch.delete(key)
        try commit(batch, durability: durability)
    }

    /// Removes a UTF-8 string key.
    public func delete(_ key: String, durability: Durability? = nil) throws {
        try delete(Array(key.utf8), durability: durability)
    }

    /// Applies every operation of `batch` atomically: after a crash either all of them or none
    /// are present. An empty batch is a no-op.
    public func write(_ batch: WriteBatch, durability: Durability? = nil) throws {
        try commit(batch, durability: durability)
    }

    /// The write path, typed. Group commit as LevelDB does it: writers queue; the first in the
    /// queue becomes the leader, appends the batches of the writers behind it to the WAL in
    /// one record, fsyncs once if any of them asked for it, inserts into the memtable, then
    /// wakes them with the shared result.
    ///
    /// With `batch == nil` the caller only wants leadership: with `forceSwitch` it starts a
    /// new memtable and WAL (as `flush()` needs), then leaves.
    package func commit(_ batch: WriteBatch?, durability: Durability? = nil, forceSwitch: Bool = false) throws(KVError) {
        if let batch {
            if batch.isEmpty { return }
            try batch.validateLimits()
        }
        let mode = durability ?? options.durability
        let w = Writer(batch: batch ?? WriteBatch(), sync: mode == .always)

        struct Group {
            var rep: [UInt8]
            var count: Int
            var first: SequenceNumber
            var mem: MemTable
            var log: LogWriter
            var sync: Bool
            var last: Writer
        }

        let group: Group? = try state.locked { (s) throws(KVError) -> Group? in
            s.pointee.writers.append(w)
            while !w.done && s.pointee.writers.first !== w {
                state.wait(w.cond)
            }
            if w.done {
                if let e = w.error { throw e }
                return nil
            }
            // Leader from here on.
            if let err = s.pointee.closed ? KVError.closed : s.pointee.backgroundError.map({ .backgroundError(cause: $0.description) }) {
                s.pointee.writers.removeFirst()
                signalNextWriter(&s.pointee)
                throw err
            }
            do throws(KVError) {
                try makeRoomForWrite(s, force: forceSwitch)
            } catch {
                s.pointee.writers.removeFirst()
                signalNextWriter(&s.pointee)
                throw error
            }
            if batch == nil {
                s.pointee.writers.removeFirst()
                signalNextWriter(&s.pointee)
                return nil
            }
            // Build the group: the leader's batch with the followers' appended.
            var combined = w.batch
            var sync = w.sync
            var last = w
            let maxSize = combined.approximateSize <= 128 << 10 ? combined.approximateSize + (128 << 10) : 1 << 20
            let writers = s.pointee.writers
            for next in writers.dropFirst() {
                if next.batch.isEmpty { break }
                if next.sync && !sync { break }
                if combined.approximateSize + next.batch.approximateSize - WriteBatch.headerSize > maxSize { break }
                combined.append(next.batch)
                sync = sync || next.sync
                last = next
            }
            let first = s.pointee.lastSequence + 1
            combined.sequence = first
            let rep = combined.rep
            let count = combined.count
            return Group(rep: rep, count: count, first: first, mem: s.pointee.mem, log: s.pointee.log, sync: sync, last: last)
        }
        guard let group else { return }

        // Outside the lock: only the leader touches the log and inserts into the memtable.
        var failure: KVError?
        do throws(KVError) {
            try group.log.addRecord(group.rep)
            try group.log.flush()
            if group.sync { try group.log.sync() }
        } catch {
            failure = error
        }
        if failure == nil {
            // Still the leader: no later group can commit before this call returns.
            options.commitObserver?(group.rep)
            group.rep.withUnsafeBytes { p in
                var seq = group.first
                let rowCache = self.rowCache
                try? WriteBatch.decode(p, file: "write batch", offset: 0) { kind, key, value in
                    group.mem.add(seq, kind, key, value)
                    rowCache?.invalidate(key)
                    seq += 1
                }
            }
        }

        let result: KVError? = state.withLock { s in
            if let failure {
                if s.backgroundError == nil { s.backgroundError = failure }
            } else {
                s.lastSequence = group.first + SequenceNumber(group.count) - 1
                publishReadState(&s)
                s.stats.walBytesWritten += UInt64(group.rep.count)
                s.stats.userBytesWritten += UInt64(group.rep.count - WriteBatch.headerSize)
                if !group.sync { s.walDirty = true }
            }
            while let front = s.writers.first {
                s.writers.removeFirst()
                if front !== w {
                    front.error = failure
                    front.done = true
                    front.cond.signal()
                }
                if front === group.last { break }
            }
            signalNextWriter(&s)
            return failure
        }
        if let result { throw result }
    }

    /// Wakes the next leader, or anyone waiting for the queue to drain.
    func signalNextWriter(_ s: inout State) {
        if let next = s.writers.first {
            next.cond.signal()
        } else {
            writersDrained.broadcast()
        }
    }

    /// Ensures the memtable has room for the leader's group. Called by the leader with the
    /// mutex held.
    ///
    /// When the memtable is full and `maxImmutableMemtables` full memtables already wait for
    /// their flush, the writer waits for the background thread.
    ///
    /// Level-0 backpressure as LevelDB applies it: past the slowdown trigger each write is
    /// delayed once by about 1 ms (spreading the delay over many writes instead of one long
    /// stop); past the stop trigger writers wait for compaction.
    func makeRoomForWrite(_ s: UnsafeMutablePointer<State>, force: Bool) throws(KVError) {
        var force = force
        var delayed = false
        var stallStart: UInt64 = 0
        defer {
            if stallStart != 0 { s.pointee.stats.stallNanos += UInt64(monotonicNanos()) - stallStart }
        }
        while true {
            if let e = s.pointee.backgroundError { throw .backgroundError(cause: e.description) }
            if s.pointee.closed { throw .closed }
            let l0 = s.pointee.version.fileCount(0)
            if !delayed && !force && l0 >= options.level0SlowdownTrigger {
                delayed = true
                s.pointee.stats.slowdowns += 1
                if stallStart == 0 { stallStart = UInt64(monotonicNanos()) }
                backgroundWork.signal()
                // Releases the mutex for ~1 ms so compaction can proceed.
                state.wait(writersDrained, timeoutNanoseconds: 1_000_000)
                continue
            }
            if !force && s.pointee.mem.approximateMemoryUsage < options.writeBufferSize { return }
            if s.pointee.imm.count >= options.maxImmutableMemtables || l0 >= options.level0StopTrigger {
                s.pointee.stats.stops += 1
                if stallStart == 0 { stallStart = UInt64(monotonicNanos()) }
                backgroundWork.signal()
                state.wait(backgroundDone, timeoutNanoseconds: 100_000_000)
                continue
            }
            if force && s.pointee.mem.count == 0 { return }
            try switchMemtable(s)
            force = false
            return
        }
    }

    /// Starts a new WAL and memtable; the full memtable joins the immutable list. Called with
    /// the mutex held.
    func switchMemtable(_ s: UnsafeMutablePointer<State>) throws(KVError) {
        let number = s.pointee.nextFileNumber
        s.pointee.nextFileNumber += 1
        // Any failure here latches, as a failed WAL write does (RocksDB sets its background
        // error when a memtable switch fails too): later writes fail instead of some of them
        // succeeding on the old log after one was refused.
        let file: any WritableFile
        let writer: LogWriter
        do throws(KVError) {
            file = try fs.createWritable(FileNames.log(path, number))
            writer = try LogWriter(file: file, logNumber: number)
            try writer.sync()
            try fs.syncDirectory(path)
        } catch {
            s.pointee.backgroundError = error
            throw error
        }
        // The old log keeps everything in the full memtable; make it durable before moving on,
        // so every log but the newest is complete on disk (recovery reads older logs strictly).
        do throws(KVError) { try s.pointee.logFile.syncFlushed() } catch {
            s.pointee.backgroundError = error
            throw error
        }
        try? s.pointee.log.close()
        s.pointee.imm.append(s.pointee.mem)
        s.pointee.mem = MemTable(logNumber: number, expectedBytes: options.writeBufferSize)
        s.pointee.log = writer
        s.pointee.logFile = file
        s.pointee.logNumber = number
        s.pointee.walDirty = false
        publishReadState(&s.pointee)
        memtableBecameImmutable(s)
    }
}
