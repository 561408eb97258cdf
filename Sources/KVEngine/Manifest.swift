import KVBase
import KVFileSystem
import KVLog

// CURRENT names the live manifest, with a format version and a checksum:
//
//   CURRENT := "SHALE-CURRENT" SP version SP manifest_name SP crc LF
//   version := "1"
//   crc     := 8 lowercase hex digits: masked CRC32C of the text before the last SP
//
// It is replaced atomically (write CURRENT.tmp, fsync, rename, fsync the directory).

extension Version {
    /// A new version: this one with `edit`'s deletions and additions applied.
    func applying(_ edit: VersionEdit) -> Version {
        var files = self.files
        for (level, number) in edit.deletedFiles {
            files[level].removeAll { $0.number == number }
        }
        for (level, f) in edit.newFiles {
            files[level].removeAll { $0.number == f.number }
            files[level].append(f)
        }
        files[0].sort { $0.number > $1.number }
        for level in 1..<numLevels {
            files[level].sort { InternalKey.compare($0.smallest, $1.smallest) < 0 }
        }
        return Version(files: files)
    }

    /// A full-snapshot edit describing this version.
    func snapshotEdit() -> VersionEdit {
        var e = VersionEdit()
        e.formatVersion = versionEditFormat
        for (level, list) in files.enumerated() {
            for f in list { e.newFiles.append((level, f)) }
        }
        return e
    }
}

/// What a manifest says.
struct ManifestState {
    var version = Version.empty
    var logNumber: UInt64 = 0
    var nextFileNumber: UInt64 = 2
    var lastSequence: SequenceNumber = 0
    var compactPointers: [[UInt8]] = Array(repeating: [], count: numLevels)
}

enum Manifest {
    static let currentTag = "SHALE-CURRENT"
    static let currentVersion = "1"

    static func currentContents(manifestNumber: UInt64) -> [UInt8] {
        let body = "\(currentTag) \(currentVersion) \(baseName(FileNames.manifest("", manifestNumber)))"
        let crc = CRC32C.mask(CRC32C.checksum(Array(body.utf8)))
        var hex = String(crc, radix: 16)
        while hex.count < 8 { hex = "0" + hex }
        return Array("\(body) \(hex)\n".utf8)
    }

    /// The manifest number CURRENT names, or nil when there is no CURRENT (a new database).
    static func readCurrent(fs: any FileSystem, directory: String) throws(KVError) -> UInt64? {
        let path = FileNames.current(directory)
        guard fs.fileExists(path) else { return nil }
        let bytes = try fs.readFile(path)
        let text = String(decoding: bytes, as: UTF8.self)
        func bad(_ why: String) -> KVError { .corruption(file: path, offset: 0, reason: why) }
        guard text.hasSuffix("\n") else { throw bad("CURRENT does not end with a newline (torn write?)") }
        let parts = text.dropLast().split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == currentTag else { throw bad("CURRENT is not in Shale's format") }
        guard parts[1] == currentVersion else {
            throw .unsupportedFormat(file: path, version: UInt32(parts[1]) ?? 0)
        }
        guard let stored = UInt32(parts[3], radix: 16) else { throw bad("CURRENT has no checksum") }
        let body = parts[0..<3].joined(separator: " ")
        guard CRC32C.mask(CRC32C.checksum(Array(body.utf8))) == stored else { throw bad("CURRENT checksum mismatch") }
        guard let (kind, number) = FileNames.parse(String(parts[2])), kind == .manifest else {
            throw bad("CURRENT names \(parts[2]), not a manifest")
        }
        return number
    }

    /// Replays a manifest's edits.
    static func load(fs: any FileSystem, directory: String, number: UInt64) throws(KVError) -> ManifestState {
        let path = FileNames.manifest(directory, number)
        let file = try fs.openReadable(path)
        var reader = LogReader(file: file, expectedLogNumber: number, mode: .tolerateTornTail)
        var state = ManifestState()
        var sawSnapshot = false
        while let record = try reader.next() {
            let edit = try VersionEdit.decode(record, file: path, offset: reader.lastRecordOffset)
            if !sawSnapshot {
                guard edit.formatVersion != nil else {
                    throw .corruption(file: path, offset: reader.lastRecordOffset, reason: "first edit carries no format version")
                }
                sawSnapshot = true
            }
            state.version = state.version.applying(edit)
            if let n = edit.logNumber { state.logNumber = n }
            if let n = edit.nextFileNumber { state.nextFileNumber = n }
            if let n = edit.lastSequence { state.lastSequence = n }
            for (level, key) in edit.compactPointers { state.compactPointers[level] = key }
        }
        guard sawSnapshot else { throw .corruption(file: path, offset: 0, reason: "manifest holds no version") }
        // Every table the manifest names must exist: a missing one means lost data.
        for level in state.version.files {
            for f in level where !fs.fileExists(FileNames.table(directory, f.number)) {
                throw .corruption(file: FileNames.table(directory, f.number), offset: 0, reason: "table named by \(path) is missing")
            }
        }
        return state
    }

    /// Writes a new manifest holding `state` as one snapshot edit, syncs it, and points
    /// CURRENT at it. Returns the writer for later edits.
    static func create(fs: any FileSystem, directory: String, number: UInt64, state: ManifestState) throws(KVError) -> LogWriter {
        let path = FileNames.manifest(directory, number)
        let file = try fs.createWritable(path)
        let writer = try LogWriter(file: file, logNumber: number)
        var edit = state.version.snapshotEdit()
        edit.logNumber = state.logNumber
        edit.nextFileNumber = state.nextFileNumber
        edit.lastSequence = state.lastSequence
        for (level, key) in state.compactPointers.enumerated() where !key.isEmpty {
            edit.compactPointers.append((level, key))
        }
        try writer.addRecord(edit.encode())
        try writer.sync()
        try fs.syncDirectory(directory)
        try fs.writeFileAtomically(FileNames.current(directory), currentContents(manifestNumber: number))
        return writer
    }
}
