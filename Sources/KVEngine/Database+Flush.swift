import KVBase
import KVFileSystem
import KVLog
import KVTable

extension Options {
    /// The table options derived from these options.
    var tableOptions: TableOptions {
        var t = TableOptions()
        t.blockSize = blockSize
        t.restartInterval = blockRestartInterval
        t.bloomBitsPerKey = bloomBitsPerKey
        t.compression = compression == .lz4 ? .lz4 : .none
        t.keyOrder = .internalKey
        return t
    }
}

extension Database {
    /// Called with the mutex held after a memtable joined the immutable list.
    func memtableBecameImmutable(_ s: UnsafeMutablePointer<State>) {
        backgroundWork.signal()
    }

    /// Writes every entry of `mem` (all versions, tombstones included) to table `number`.
    /// Returns nil for an empty memtable. The file is synced before this returns.
    static func writeTable(from mem: MemTable, number: UInt64, path: String, options: Options) throws(KVError) -> FileMetaData? {
        let it = mem.makeIterator()
        try it.seekToFirst()
        guard it.isValid else { return nil }
        let fileName = FileNames.table(path, number)
        let file = try options.fileSystem.createWritable(fileName)
        let builder = TableBuilder(file: file, options: options.tableOptions)
        let smallest = Array(it.key)
        var largest = smallest
        do throws(KVError) {
            while it.isValid {
                try builder.add(it.key, it.value)
                largest.removeAll(keepingCapacity: true)
                largest.append(contentsOf: it.key)
                try it.next()
            }
            let props = try builder.finish()
            return FileMetaData(number: number, size: props.fileSize, smallest: smallest, largest: largest)
        } catch {
            builder.abandon()
            try? options.fileSystem.removeFile(fileName)
            throw error
        }
    }

    func startFlushThread() {
        state.withLock { $0.backgroundRunning = true }
        // The thread holds the mutex and conditions strongly and the database weakly, so an
        // unclosed database is still freed; its deinit closes it, which ends the thread.
        let state = self.state
        let done = self.backgroundDone
        startThread(name: "shale-background") { [weak self] in
            while let db = self, db.backgroundStep() {}
            state.withLock { $0.backgroundRunning = false }
            done.broadcast()
        }
    }

    enum BackgroundJob {
        case exit
        case idle
        case flush(MemTable, UInt64)
        case compact(Compaction, manual: Bool)
    }

    /// One round of background work: waits (at most 100 ms) for work, then flushes the
    /// oldest immutable memtable. Returns false when the thread should exit.
    func backgroundStep() -> Bool {
        let job: BackgroundJob = state.locked { s in
            func pick() -> BackgroundJob {
                if s.pointee.closed { return .exit }
                if s.pointee.backgroundError != nil { return .idle }
                if !s.pointee.imm.isEmpty {
                    let number = s.pointee.nextFileNumber
                    s.pointee.nextFileNumber += 1
                    s.pointee.pendingOutputs.insert(number)
                    return .flush(s.pointee.imm[0], number)
                }
                if let (c, manual) = pickCompactionLocked(s) { return .compact(c, manual: manual) }
                return .idle
            }
            let first = pick()
            guard case .idle = first else { return first }
            state.wait(backgroundWork, timeoutNanoseconds: 100_000_000)
            return pick()
        }
        switch job {
        case .exit: return false
        case .idle: return true
        case .flush(let mem, let number):
            flushImmutable(mem, number: number)
            return true
        case .compact(let c, let manual):
            do throws(KVError) {
                try runCompaction(c)
            } catch {
                state.withLock { s in
                    if manual {
                        s.manualCompaction?.error = error
                        s.manualCompaction?.done = true
                    }
                    if s.backgroundError == nil { s.backgroundError = error }
                }
            }
            backgroundDone.broadcast()
            deleteObsoleteFiles()
            return true
        }
    }

    /// Writes the oldest immutable memtable to table `number` and records it.
    func flushImmutable(_ mem: MemTable, number: UInt64) {
        do throws(KVError) {
            let meta = try Database.writeTable(from: mem, number: number, path: path, options: options)
            var edit = VersionEdit()
            if let meta { edit.newFiles.append((0, meta)) }
            // WALs before the next memtable's are obsolete once this table is recorded.
            let nextLog: UInt64 = state.withLock { s in
                s.imm.count > 1 ? s.imm[1].logNumber : s.mem.logNumber
            }
            edit.logNumber = nextLog
            try logAndApply(&edit) { s in
                s.imm.removeFirst()
                s.stats.flushes += 1
                s.stats.flushBytes += meta?.size ?? 0
            }
        } catch {
            state.withLock { s in
                if s.backgroundError == nil { s.backgroundError = error }
            }
        }
        state.withLock { s in _ = s.pendingOutputs.remove(number) }
        backgroundDone.broadcast()
        deleteObsoleteFiles()
    }

    /// Appends `edit` to the manifest (fsynced), then installs the new version and runs
    /// `install` under the mutex. Called by the background thread only, without the mutex.
    func logAndApply(_ edit: inout VersionEdit, install: (inout State) -> Void) throws(KVError) {
        let (manifest, base): (LogWriter, Version) = state.withLock { s in
            edit.nextFileNumber = s.nextFileNumber
            edit.lastSequence = s.lastSequence
            return (s.manifest, s.version)
        }
        // New tables' directory entries must be durable before the manifest names them.
        if !edit.newFiles.isEmpty { try fs.syncDirectory(path) }
        try manifest.addRecord(edit.encode())
        try manifest.sync()
        let next = base.applying(edit)
        state.withLock { s in
            s.liveVersions.removeAll { $0.version == nil }
            s.liveVersions.append(WeakVersion(version: s.version))
            s.version = next
            if let n = edit.logNumber { s.versionLogNumber = n }
            for (level, key) in edit.compactPointers { s.compactPointers[level] = key }
            install(&s)
            publishReadState(&s)
        }
    }

    /// Deletes files no live version, pending output or current WAL/manifest needs.
    ///
    /// Nothing is deleted once a background error is latched: after a failed manifest write
    /// it is unknown whether the edit reached the disk, so a table it names may be live for
    /// the next open (LevelDB makes the same choice). The next open cleans up.
    func deleteObsoleteFiles() {
        let latched = state.withLock { $0.backgroundError != nil }
        if latched { return }
        let (live, logNumber, manifestNumber, currentLog): (Set<UInt64>, UInt64, UInt64, UInt64) = state.withLock { s in
            var live = s.version.allFileNumbers.union(s.pendingOutputs)
            s.liveVersions.removeAll { $0.version == nil }
            for w in s.liveVersions { if let v = w.version { live.formUnion(v.allFileNumbers) } }
            let oldestLog = s.imm.first?.logNumber ?? s.mem.logNumber
            return (live, min(s.versionLogNumber, oldestLog), s.manifestNumber, s.logNumber)
        }
        guard let names = try? fs.listDirectory(path) else { return }
        for name in names {
            guard let (kind, number) = FileNames.parse(name) else { continue }
            let obsolete: Bool
            switch kind {
            case .log: obsolete = number < logNumber && number != currentLog
            case .table: obsolete = !live.contains(number)
            case .manifest: obsolete = number != manifestNumber
            case .temp: obsolete = true
            default: obsolete = false
            }
            if obsolete {
                if kind == .table { tables.evict(number) }
                try? fs.removeFile(joinPath(path, name))
            }
        }
    }

    /// Writes the current memtable to a table and waits until it (and any earlier full
    /// memtable) is on disk. A no-op when the memtable is empty.
    public func flush() throws(KVError) {
        let target: MemTable? = try state.withLock { (s) throws(KVError) -> MemTable? in
            if s.closed { throw .closed }
            return s.mem.count > 0 ? s.mem : s.imm.last
        }
        guard let target else { return }
        // Switching memtables touches the WAL, which only a group-commit leader may do.
        try commit(nil, durability: nil, forceSwitch: target.count > 0)
        try state.locked { (s) throws(KVError) in
            while s.pointee.imm.contains(where: { $0 === target }) {
                if let e = s.pointee.backgroundError { throw .backgroundError(cause: e.description) }
                if s.pointee.closed { throw .closed }
                state.wait(backgroundDone, timeoutNanoseconds: 100_000_000)
            }
        }
    }
}
