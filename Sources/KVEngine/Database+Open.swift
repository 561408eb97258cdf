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
            let recovered = try recover(path: path, options: options)
            let db = Database(path: path, options: options, lock: lock, state: recovered)
            db.startBackgroundThreads()
            return db
        } catch {
            lock.unlock()
            throw error
        }
    }

    /// Replays every WAL in the directory, oldest first, into a fresh memtable, then starts a
    /// new WAL. Older logs are kept until their data reaches a table.
    static func recover(path: String, options: Options) throws(KVError) -> State {
        let fs = options.fileSystem
        var logs: [UInt64] = []
        var maxNumber: UInt64 = 0
        let names = try fs.listDirectory(path)
        if options.errorIfExists && names.contains(where: { FileNames.parse($0)?.0 == .log }) {
            throw .invalidArgument("database \(path) already exists and errorIfExists is set")
        }
        for name in names {
            guard let (kind, number) = FileNames.parse(name) else { continue }
            maxNumber = max(maxNumber, number)
            switch kind {
            case .log: logs.append(number)
            case .temp: try? fs.removeFile(joinPath(path, name))
            default: break
            }
        }
        logs.sort()
        let mem = MemTable(logNumber: 0)
        var lastSequence: SequenceNumber = 0
        for (i, number) in logs.enumerated() {
            let isNewest = i == logs.count - 1
            lastSequence = max(lastSequence, try replayLog(path: path, number: number, into: mem, options: options, isNewest: isNewest))
        }
        let number = maxNumber + 1
        let file = try fs.createWritable(FileNames.log(path, number))
        let writer = try LogWriter(file: file, logNumber: number)
        try writer.flush()
        try fs.syncDirectory(path)
        var state = State(
            mem: mem, log: writer, logFile: file, logNumber: number,
            lastSequence: lastSequence, nextFileNumber: number + 1
        )
        state.liveLogs = logs
        return state
    }

    /// Applies one WAL's batches to `mem`; returns the highest sequence seen.
    static func replayLog(path: String, number: UInt64, into mem: MemTable, options: Options, isNewest: Bool) throws(KVError) -> SequenceNumber {
        let fileName = FileNames.log(path, number)
        let file = try options.fileSystem.openReadable(fileName)
        let mode: RecoveryMode
        switch options.walRecovery {
        case .strict: mode = .strict
        case .skipCorrupt: mode = .skipCorrupt
        case .tolerateTornTail: mode = .tolerateTornTail
        }
        var reader = LogReader(file: file, expectedLogNumber: number, mode: mode)
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

    func closeDatabase() throws(KVError) {
        let log: LogWriter? = state.locked { s in
            if s.pointee.closed { return nil }
            // Wait for in-flight writers to drain.
            while !s.pointee.writers.isEmpty {
                state.wait(writersDrained)
            }
            s.pointee.closed = true
            closing.broadcast()
            while s.pointee.syncerRunning {
                state.wait(syncerExited, timeoutNanoseconds: 10_000_000)
            }
            return s.pointee.log
        }
        guard let log else { return }
        defer { lock.unlock() }
        try log.flush()
        try log.sync()
        try log.close()
    }
}
