import KVBase
import KVFileSystem
import KVLog

extension Database {
    static func openDatabase(at path: String, options: Options) throws(KVError) -> Database {
        try options.validate()
        let fs = options.fileSystem
        if !fs.fileExists(path) {
            guard options.createIfMissing else { throw .notFound("database directory \(path)") }
            try fs.createDirectory(path)
            try fs.syncDirectory(parentDirectory(path))
        }
        let lock = try fs.lockFile(FileNames.lock(path))
        do throws(KVError) {
            let tables = TableCache(
                directory: path, fs: fs, tableOptions: options.tableOptions,
                blockCacheBytes: options.blockCacheCapacity, maxOpenFiles: options.maxOpenFiles)
            let recovered = try recover(path: path, options: options, tables: tables)
            let db = Database(path: path, options: options, lock: lock, state: recovered, tables: tables)
            db.deleteObsoleteFiles()
            db.startBackgroundThreads()
            db.startCacheWarming()
            return db
        } catch {
            lock.unlock()
            throw error
        }
    }

    /// Recovery: CURRENT → manifest → replay the WALs the manifest does not cover (oldest
    /// first) → write what they held as a level-0 table → start a new WAL and a new manifest
    /// naming both. Obsolete files are deleted afterwards; a crash at any point leaves either
    /// the old manifest (and the WALs it needs) or the new one in force.
    static func recover(path: String, options: Options, tables: TableCache) throws(KVError) -> State {
        let fs = options.fileSystem
        var manifest: ManifestState
        var isNew = false
        if let number = try Manifest.readCurrent(fs: fs, directory: path) {
            if options.errorIfExists {
                throw .invalidArgument("database \(path) already exists and errorIfExists is set")
            }
            manifest = try Manifest.load(fs: fs, directory: path, number: number)
            // The WAL the manifest names holds every write not yet in a table; it is created
            // (and its directory entry synced) before any manifest names it and deleted only
            // after a later edit has moved past it. Missing, it took acknowledged writes with it
            // (or the manifest lost its last edit, reverting to an older WAL).
            let wal = FileNames.log(path, manifest.logNumber)
            if !fs.fileExists(wal) && options.walRecovery != .skipCorrupt {
                throw .corruption(
                    file: wal, offset: 0,
                    reason: "the write-ahead log named by \(baseName(FileNames.manifest(path, number))) is missing; writes it held are lost (open with walRecovery = .skipCorrupt to salvage the rest)")
            }
        } else {
            manifest = ManifestState()
            isNew = true
        }
        var logs: [UInt64] = []
        var maxNumber = manifest.nextFileNumber
        let names = try fs.listDirectory(path)
        for name in names {
            guard let (kind, number) = FileNames.parse(name) else { continue }
            maxNumber = max(maxNumber, number + 1)
            if kind == .log && number >= manifest.logNumber { logs.append(number) }
        }
        // Without CURRENT the directory is a new database, unless it holds tables: only an
        // existing database writes them (after its first CURRENT), and starting over would
        // delete them as obsolete.
        if isNew, let table = names.first(where: { FileNames.parse($0)?.0 == .table }) {
            throw .corruption(
                file: FileNames.current(path), offset: 0,
                reason: "CURRENT is missing but the directory holds tables (\(table), ...) of an existing database; restore CURRENT or move the files away")
        }
        logs.sort()
        var nextFile = maxNumber
        let mem = MemTable(logNumber: 0, expectedBytes: options.writeBufferSize)
        var lastSequence = manifest.lastSequence
        for number in logs {
            let seq = try replayLog(path: path, number: number, into: mem, options: options)
            lastSequence = max(lastSequence, seq)
        }
        var version = manifest.version
        if mem.count > 0 {
            let number = nextFile
            nextFile += 1
            if let meta = try writeTable(from: mem, number: number, path: path, options: options) {
                // Made durable with the directory sync that follows the new manifest's creation.
                var edit = VersionEdit()
                edit.newFiles.append((0, meta))
                version = version.applying(edit)
            }
        }
        let logNumber = nextFile
        let manifestNumber = nextFile + 1
        nextFile += 2
        let logFile = try fs.createWritable(FileNames.log(path, logNumber))
        let log = try LogWriter(file: logFile, logNumber: logNumber)
        try log.sync()
        manifest.version = version
        manifest.logNumber = logNumber
        manifest.nextFileNumber = nextFile
        manifest.lastSequence = lastSequence
        let manifestWriter = try Manifest.create(fs: fs, directory: path, number: manifestNumber, state: manifest)
        return State(
            mem: MemTable(logNumber: logNumber, expectedBytes: options.writeBufferSize), log: log, logFile: logFile, logNumber: logNumber,
            lastSequence: lastSequence, nextFileNumber: nextFile,
            version: version, manifest: manifestWriter, manifestNumber: manifestNumber,
            versionLogNumber: logNumber, compactPointers: manifest.compactPointers)
    }

    /// Applies one WAL's batches to `mem`; returns the highest sequence seen.
    static func replayLog(path: String, number: UInt64, into mem: MemTable, options: Options) throws(KVError) -> SequenceNumber {
        // A torn tail is dropped in every log, not only the newest: a tail torn by a crash (or
        // by a write that failed half-way, whose caller got the error) and dropped by one
        // recovery stays in its file when the next session starts a newer log, and must be
        // dropped again by the next recovery. Damage followed by valid records is still
        // corruption in every log.
        let fileName = FileNames.log(path, number)
        let file = try options.fileSystem.openReadable(fileName)
        var reader = LogReader(file: file, expectedLogNumber: number, mode: options.walRecovery)
        var last: SequenceNumber = 0
        while let record = try reader.next() {
            let offset = reader.lastRecordOffset
            try record.withUnsafeBytes { p in
                Result { () throws(KVError) in
                    guard p.count >= WriteBatch.headerSize else {
                        throw .corruption(file: fileName, offset: offset, reason: "log record too small for a write batch")
                    }
                    var seq = p.fixed64(at: 0)
                    let count = SequenceNumber(p.fixed32(at: 8))
                    // Validate the whole batch before applying any of it: a batch is atomic.
                    try WriteBatch.decode(p, file: fileName, offset: offset) { _, _, _ in }
                    try WriteBatch.decode(p, file: fileName, offset: offset) { kind, key, value in
                        mem.add(seq, kind, key, value)
                        seq += 1
                    }
                    if count > 0 { last = max(last, seq - 1) }
                }
            }.get()
        }
        return last
    }

    func startBackgroundThreads() {
        startFlushThread()
        if options.durability == .everysec {
            state.withLock { $0.syncerRunning = true }
            // The thread holds the mutex and conditions, not the database, so an unclosed
            // database is still freed (and its deinit stops the thread).
            let state = self.state
            let closing = self.closing
            let exited = self.syncerExited
            startThread(name: "shale-wal-sync") {
                Database.runSyncer(state: state, closing: closing, exited: exited)
            }
        }
    }

    /// The `everysec` loop: once a second, fsync what the WAL has handed to the OS.
    static func runSyncer(state: ConditionMutex<State>, closing: Condition, exited: Condition) {
        while true {
            let (stop, file): (Bool, (any WritableFile)?) = state.locked { s in
                if !s.pointee.closed { state.wait(closing, timeoutNanoseconds: 1_000_000_000) }
                if s.pointee.closed { return (true, nil) }
                guard s.pointee.walDirty else { return (false, nil) }
                s.pointee.walDirty = false
                return (false, s.pointee.logFile)
            }
            if stop { break }
            guard let file else { continue }
            do throws(KVError) {
                try file.syncFlushed()
            } catch {
                state.withLock { s in
                    if s.backgroundError == nil { s.backgroundError = error }
                }
            }
        }
        state.withLock { s in s.syncerRunning = false }
        exited.broadcast()
    }

    /// Closes the database. From `deinit` (`fromDeinit`), the background thread is not waited
    /// for: it cannot be inside a step (a step holds a strong reference), or deinit is running
    /// on that very thread after its step.
    func closeDatabase(fromDeinit: Bool = false) throws(KVError) {
        let log: LogWriter? = state.locked { s in
            if s.pointee.closed { return nil }
            // Wait for in-flight writers to drain.
            while !s.pointee.writers.isEmpty {
                state.wait(writersDrained)
            }
            s.pointee.closed = true
            publishReadState(&s.pointee)
            closing.broadcast()
            backgroundWork.broadcast()
            while s.pointee.syncerRunning {
                state.wait(syncerExited, timeoutNanoseconds: 10_000_000)
            }
            while s.pointee.backgroundRunning && !fromDeinit {
                state.wait(backgroundDone, timeoutNanoseconds: 10_000_000)
            }
            return s.pointee.log
        }
        guard let log else { return }
        defer { lock.unlock() }
        if !fromDeinit { recordWarmList() }
        try log.flush()
        try log.sync()
        try log.close()
        let manifest = state.withLock { $0.manifest }
        try manifest.close()
    }
}

extension Database {
    /// Test hook modelling the death of the process: stops the background threads without
    /// any further I/O (no WAL sync, no file deletion), then marks the database closed.
    /// Use before simulating a crash on the in-memory file system and reopening, so the old
    /// instance's threads cannot touch the new one's files.
    package func haltForCrashTest() {
        state.locked { s in
            s.pointee.closed = true
            publishReadState(&s.pointee)
            closing.broadcast()
            backgroundWork.broadcast()
            while s.pointee.syncerRunning || s.pointee.backgroundRunning {
                state.wait(backgroundDone, timeoutNanoseconds: 5_000_000)
            }
        }
    }
}
