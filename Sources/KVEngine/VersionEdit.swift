import KVBase

// Manifest records. A manifest is a record log (KVLog, file header version 1) whose records
// are version edits; the first record of every manifest is a full snapshot of the version.
//
//   edit  := field*
//   field := tag varint32 | body
//     1  edit format version   varint32 (=1; present in the first edit of a manifest)
//     2  log number            varint64   WALs older than this are obsolete
//     3  next file number      varint64
//     4  last sequence         varint64
//     5  compaction pointer    level varint32 | internal key (varint32 length + bytes)
//     6  deleted file          level varint32 | file number varint64
//     7  new file              level varint32 | file number varint64 | file size varint64
//                              | smallest internal key (length-prefixed)
//                              | largest internal key (length-prefixed)
//
// Tags are frozen: a new field gets a new tag; a reader fails on an unknown tag rather than
// misread a newer manifest.

/// Number of levels in the tree.
let numLevels = 7

/// The edit format version this build writes and reads.
let versionEditFormat: UInt32 = 1

/// One table file of the tree.
struct FileMetaData: Sendable, Equatable {
    var number: UInt64
    var size: UInt64
    /// Smallest internal key in the file.
    var smallest: [UInt8]
    /// Largest internal key in the file.
    var largest: [UInt8]
}

/// A change to the version: files added and removed, counters advanced.
struct VersionEdit: Sendable, Equatable {
    var formatVersion: UInt32?
    var logNumber: UInt64?
    var nextFileNumber: UInt64?
    var lastSequence: SequenceNumber?
    var compactPointers: [(level: Int, key: [UInt8])] = []
    var deletedFiles: [(level: Int, number: UInt64)] = []
    var newFiles: [(level: Int, file: FileMetaData)] = []

    static func == (a: VersionEdit, b: VersionEdit) -> Bool {
        a.formatVersion == b.formatVersion && a.logNumber == b.logNumber
            && a.nextFileNumber == b.nextFileNumber && a.lastSequence == b.lastSequence
            && a.compactPointers.elementsEqual(b.compactPointers, by: { $0.level == $1.level && $0.key == $1.key })
            && a.deletedFiles.elementsEqual(b.deletedFiles, by: { $0.level == $1.level && $0.number == $1.number })
            && a.newFiles.elementsEqual(b.newFiles, by: { $0.level == $1.level && $0.file == $1.file })
    }

    func encode() -> [UInt8] {
        var out: [UInt8] = []
        if let formatVersion {
            out.appendVarint(1)
            out.appendVarint(UInt64(formatVersion))
        }
        if let logNumber {
            out.appendVarint(2)
            out.appendVarint(logNumber)
        }
        if let nextFileNumber {
            out.appendVarint(3)
            out.appendVarint(nextFileNumber)
        }
        if let lastSequence {
            out.appendVarint(4)
            out.appendVarint(lastSequence)
        }
        for (level, key) in compactPointers {
            out.appendVarint(5)
            out.appendVarint(UInt64(level))
            out.appendLengthPrefixed(key)
        }
        for (level, number) in deletedFiles {
            out.appendVarint(6)
            out.appendVarint(UInt64(level))
            out.appendVarint(number)
        }
        for (level, f) in newFiles {
            out.appendVarint(7)
            out.appendVarint(UInt64(level))
            out.appendVarint(f.number)
            out.appendVarint(f.size)
            out.appendLengthPrefixed(f.smallest)
            out.appendLengthPrefixed(f.largest)
        }
        return out
    }

    static func decode(_ bytes: [UInt8], file: String, offset: UInt64) throws(KVError) -> VersionEdit {
        try bytes.withUnsafeBytes { p in
            Result { () throws(KVError) -> VersionEdit in try decode(p, file: file, offset: offset) }
        }.get()
    }

    static func decode(_ p: UnsafeRawBufferPointer, file: String, offset: UInt64) throws(KVError) -> VersionEdit {
        func bad(_ why: String) -> KVError { .corruption(file: file, offset: offset, reason: "version edit: " + why) }
        var e = VersionEdit()
        var pos = 0
        func varint() throws(KVError) -> UInt64 {
            guard let v = p.varint(at: &pos) else { throw bad("truncated varint") }
            return v
        }
        func level() throws(KVError) -> Int {
            let l = try varint()
            guard l < UInt64(numLevels) else { throw bad("level \(l) out of range") }
            return Int(l)
        }
        func bytes() throws(KVError) -> [UInt8] {
            let n = try varint()
            guard n <= UInt64(p.count - pos) else { throw bad("length past end") }
            let out = Array(p[pos..<(pos + Int(n))])
            pos += Int(n)
            return out
        }
        func internalKey() throws(KVError) -> [UInt8] {
            let k = try bytes()
            guard k.withUnsafeBytes({ InternalKey.isValid($0) }) else { throw bad("malformed internal key") }
            return k
        }
        while pos < p.count {
            let tag = try varint()
            switch tag {
            case 1:
                let v = try varint()
                guard v == UInt64(versionEditFormat) else {
                    throw .unsupportedFormat(file: file, version: UInt32(truncatingIfNeeded: v))
                }
                e.formatVersion = UInt32(v)
            case 2: e.logNumber = try varint()
            case 3: e.nextFileNumber = try varint()
            case 4: e.lastSequence = try varint()
            case 5:
                let l = try level()
                e.compactPointers.append((l, try internalKey()))
            case 6:
                let l = try level()
                e.deletedFiles.append((l, try varint()))
            case 7:
                let l = try level()
                let number = try varint()
                let size = try varint()
                let smallest = try internalKey()
                let largest = try internalKey()
                e.newFiles.append((l, FileMetaData(number: number, size: size, smallest: smallest, largest: largest)))
            default:
                throw bad("unknown tag \(tag)")
            }
        }
        return e
    }
}
