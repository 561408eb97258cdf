import KVBase
import KVFileSystem

/// Reads the logical records of a log file (format at the top of LogWriter.swift) in order.
///
/// The file is read one 32 KiB block at a time, never whole. The first physical record must be
/// the file header: a wrong magic number or a log number other than `expectedLogNumber` is
/// ``KVError/corruption(file:offset:reason:)`` and an unknown format version is
/// ``KVError/unsupportedFormat(file:version:)``, in every ``RecoveryMode``.
///
/// What counts as damage, and what happens to it, is set by the ``RecoveryMode``. The reader
/// never returns bytes that fail a checksum or a logical record with a missing fragment. An
/// empty file, or one whose header was itself torn, holds no records: an error in
/// ``RecoveryMode/strict``, an empty log otherwise.
///
/// A damaged *length* field is recognised when the record's checksum matches its payload at
/// another length and a valid record follows that payload (damage before valid records, not a
/// torn tail). A damaged length in the last record of the file is treated as a torn tail. In
/// ``RecoveryMode/skipCorrupt`` the rest of the block after a bad length is skipped.
///
/// Thread safety: a value type; one reader is used by one thread at a time. Reading does not
/// change the file, so several readers may read the same file at once.
public struct LogReader: Sendable {
    /// Where the damage handling of ``next()`` sends a bad physical record.
    enum BadKind {
        /// Cut short by the end of the file, as a torn write would be.
        case truncated
        /// A length that runs past the end of its block.
        case malformed
        /// An intact record (its checksum matches) of a type this format does not define:
        /// never a torn write.
        case unknownType
        /// A checksum mismatch; the length fits, so the next record presumably begins at
        /// `successor` (a file offset).
        case checksum(successor: UInt64)
    }

    enum Physical {
        case record(type: LogRecordType, offset: UInt64, payloadStart: Int, length: Int)
        case bad(offset: UInt64, kind: BadKind, reason: String)
        case zeros(offset: UInt64)
        case endOfFile
    }

    let file: any ReadableFile
    /// How damaged or incomplete records are treated.
    public let mode: RecoveryMode
    /// The log number the caller requires in the file header, if any.
    public let expectedLogNumber: UInt64?

    /// The log number found in the file header; nil until the header has been read (by the
    /// first call to ``next()``) or when it was damaged and skipped in
    /// ``RecoveryMode/skipCorrupt``.
    public internal(set) var logNumber: UInt64?
    /// File offset of the first physical record of the record last returned by ``next()``;
    /// 0 before the first record.
    public internal(set) var lastRecordOffset: UInt64 = 0
    /// File offset just past the last physical record of the record last returned by
    /// ``next()`` (past the file header before the first record). When ``next()`` has returned
    /// nil with no dropped tail this is where the log's valid data ends.
    public internal(set) var endOfLastRecord: UInt64 = 0
    /// Bytes dropped at the end of the file as a torn write or zero-filled space (counted from
    /// the start of the incomplete logical record); 0 when the log ended cleanly.
    public internal(set) var droppedTailBytes: UInt64 = 0
    /// Why the tail was dropped, with the offset where the dropped bytes begin; nil when
    /// nothing was dropped.
    public internal(set) var droppedTailReason: String?
    /// In ``RecoveryMode/skipCorrupt``: bytes of damaged physical records, of the rest of their
    /// blocks and of the fragments of logical records that could not be completed.
    public internal(set) var skippedBytes: UInt64 = 0
    /// In ``RecoveryMode/skipCorrupt``: how many damaged places were skipped.
    public internal(set) var skippedRegions = 0

    var fileSize: UInt64
    /// One block of the file, starting at file offset `bufferStart`; `bufferLength` bytes are
    /// valid and the next physical record begins at `position`.
    var buffer: [UInt8]
    var bufferStart: UInt64 = 0
    var bufferLength = 0
    var position = 0
    var sawFirstRecord = false
    var finished = false

    /// Creates a reader positioned before the first record of `file`.
    ///
    /// - Parameters:
    ///   - file: The log file. Only the bytes present when it was opened (`file.size`) are read.
    ///   - expectedLogNumber: When not nil, the file header must carry this number; a different
    ///     one means a stale or misplaced file and is reported as corruption.
    ///   - mode: How damaged or incomplete records are treated.
    public init(file: any ReadableFile, expectedLogNumber: UInt64?, mode: RecoveryMode = .tolerateTornTail) {
        self.file = file
        self.expectedLogNumber = expectedLogNumber
        self.mode = mode
        self.fileSize = file.size
        self.buffer = [UInt8](repeating: 0, count: LogFormat.blockSize)
    }

    /// The path of the file being read.
    public var path: String { file.path }

    /// Returns the next logical record, or nil at the end of the log.
    ///
    /// After nil, further calls return nil. After a throw the reader must not be used again.
    ///
    /// - Throws: ``KVError/corruption(file:offset:reason:)`` naming this file and the offset of
    ///   the bad physical record when the ``mode`` does not tolerate the damage;
    ///   ``KVError/unsupportedFormat(file:version:)`` for a file header of another format
    ///   version; the file's ``KVError/io(path:operation:errno:)`` when a read fails.
    public mutating func next() throws(KVError) -> [UInt8]? {
        if finished { return nil }
        var assembled: [UInt8] = []
        var pendingStart: UInt64?
        while true {
            switch try readPhysical() {
            case .endOfFile:
                if mode == .strict && !sawFirstRecord { throw corruption(0, "missing file header: the file is empty") }
                if let start = pendingStart {
                    let reason = "the record that begins at offset \(start) has no LAST fragment before the end of the file"
                    if mode == .strict { throw corruption(start, reason) }
                    dropTail(from: start, reason: reason)
                }
                finished = true
                return nil

            case .zeros(let offset):
                if try handleZeros(at: offset, pendingStart: pendingStart) { return nil }
                pendingStart = nil
                assembled.removeAll()

            case .bad(let offset, let kind, let reason):
                if try handleBad(at: offset, kind: kind, reason: reason, pendingStart: pendingStart) { return nil }
                pendingStart = nil
                assembled.removeAll()

            case .record(let type, let offset, let payloadStart, let length):
                let end = offset + UInt64(LogFormat.headerSize + length)
                if !sawFirstRecord {
                    sawFirstRecord = true
                    if offset == 0 {
                        try checkFileHeader(type: type, payloadStart: payloadStart, length: length)
                        endOfLastRecord = end
                        continue
                    }
                    // Only reached in skipCorrupt mode: the damaged header was skipped.
                }
                switch type {
                case .fileHeader:
                    try fragmentError(offset, end, "a file header record in the middle of the file", &pendingStart)
                    assembled.removeAll()
                case .full:
                    if let start = pendingStart {
                        try fragmentError(
                            offset, nil, "a FULL record inside the fragmented record that begins at offset \(start)",
                            &pendingStart)
                    }
                    lastRecordOffset = offset
                    endOfLastRecord = end
                    return copyPayload(payloadStart, length)
                case .first:
                    if let start = pendingStart {
                        try fragmentError(
                            offset, nil, "a FIRST fragment inside the fragmented record that begins at offset \(start)",
                            &pendingStart)
                    }
                    pendingStart = offset
                    assembled.removeAll(keepingCapacity: true)
                    appendPayload(payloadStart, length, to: &assembled)
                case .middle, .last:
                    guard let start = pendingStart else {
                        let name = type == .middle ? "MIDDLE" : "LAST"
                        try fragmentError(offset, end, "a \(name) fragment without a FIRST", &pendingStart)
                        continue
                    }
                    appendPayload(payloadStart, length, to: &assembled)
                    if type == .last {
                        lastRecordOffset = start
                        endOfLastRecord = end
                        return assembled
                    }
                }
            }
        }
    }

    // MARK: - Damage handling

    func corruption(_ offset: UInt64, _ reason: String) -> KVError {
        .corruption(file: file.path, offset: offset, reason: reason)
    }

    mutating func dropTail(from offset: UInt64, reason: String) {
        droppedTailBytes = fileSize > offset ? fileSize - offset : 0
        droppedTailReason = "dropped \(droppedTailBytes) bytes from offset \(offset): \(reason)"
        finished = true
    }

    /// A physical record that is intact but out of sequence. Strict and tolerate modes throw;
    /// skipCorrupt drops the unfinished record and, when `skipEnd` is given, the offending
    /// record itself (which ends there).
    mutating func fragmentError(
        _ offset: UInt64, _ skipEnd: UInt64?, _ reason: String, _ pendingStart: inout UInt64?
    ) throws(KVError) {
        if mode != .skipCorrupt { throw corruption(offset, reason) }
        skippedRegions += 1
        if let start = pendingStart { skippedBytes += offset - start }
        if let end = skipEnd { skippedBytes += end - offset }
        pendingStart = nil
    }

    /// Handles a bad physical record. Returns true when reading has finished (a dropped tail),
    /// false when skipCorrupt mode skipped the damage and reading goes on.
    mutating func handleBad(
        at offset: UInt64, kind: BadKind, reason: String, pendingStart: UInt64?
    ) throws(KVError) -> Bool {
        switch mode {
        case .strict:
            throw corruption(offset, reason)
        case .tolerateTornTail:
            if case .unknownType = kind { throw corruption(offset, reason) }
            // A record written whole whose length field was damaged hides the records after
            // it; a torn write cannot look like that (see recordHiddenByDamagedLength).
            if let valid = recordHiddenByDamagedLength(at: offset) {
                throw corruption(
                    offset, "\(reason); its checksum matches a payload of another length, after which a valid record follows at offset \(valid), so this is not a torn tail")
            }
            var successor: UInt64?
            if case .checksum(let next) = kind { successor = next }
            if let valid = try findValidRecord(after: offset, successor: successor) {
                throw corruption(
                    offset, "\(reason); a valid record follows at offset \(valid), so this is not a torn tail")
            }
            dropTail(from: pendingStart ?? offset, reason: "torn write: \(reason) at offset \(offset)")
            return true
        case .skipCorrupt:
            if case .truncated = kind {
                dropTail(from: pendingStart ?? offset, reason: "torn write: \(reason) at offset \(offset)")
                return true
            }
            let blockEnd = bufferStart + UInt64(bufferLength)
            skippedRegions += 1
            skippedBytes += (blockEnd - offset) + (pendingStart.map { offset - $0 } ?? 0)
            position = bufferLength
            return false
        }
    }

    /// Handles seven zero bytes where a header belongs: preallocated or zero-filled space.
    /// Returns true when reading has finished.
    mutating func handleZeros(at offset: UInt64, pendingStart: UInt64?) throws(KVError) -> Bool {
        let reason = "zero-filled space at offset \(offset)"
        switch mode {
        case .strict:
            if !sawFirstRecord { throw corruption(0, "missing file header: \(reason)") }
            if let start = pendingStart {
                throw corruption(offset, "\(reason) inside the record that begins at offset \(start)")
            }
            if let data = try firstNonZeroByte(from: offset) {
                throw corruption(offset, "\(reason) is followed by data at offset \(data)")
            }
            dropTail(from: offset, reason: reason)
            return true
        case .tolerateTornTail:
            if let valid = try findValidRecord(after: offset, successor: nil) {
                throw corruption(offset, "\(reason) is followed by a valid record at offset \(valid)")
            }
            dropTail(from: pendingStart ?? offset, reason: reason)
            return true
        case .skipCorrupt:
            guard let data = try firstNonZeroByte(from: offset) else {
                dropTail(from: pendingStart ?? offset, reason: reason)
                return true
            }
            // Resume at the block holding the first non-zero byte, at least one block on.
            let block = UInt64(LogFormat.blockSize)
            let resume = max((offset / block + 1) * block, data / block * block)
            skippedRegions += 1
            skippedBytes += min(resume, fileSize) - (pendingStart ?? offset)
            guard try loadBlock(at: resume) else {
                finished = true
                return true
            }
            return false
        }
    }
}
