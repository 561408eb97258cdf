// The record log: the format of the write-ahead log and the manifest. (The replication backlog
// is in memory and not written in this format; see KVReplication.)
// LevelDB's log format (32 KiB blocks, records fragmented as FULL/FIRST/MIDDLE/LAST) with a
// file header record that carries a magic number, a format version and the log's number.
//
// Format version 1 (frozen; integers little-endian, see KVBase/Coding.swift):
//
//   file        := block* lastBlock?
//   block       := physical+ trailer                  exactly 32768 bytes
//   lastBlock   := physical*                           1..32767 bytes
//   trailer     := 0x00{0..6}                          the block's last bytes when fewer than
//                                                       7 remain (a header no longer fits)
//   physical    := checksum:fixed32 length:fixed16 type:u8 payload:byte[length]
//   checksum    := CRC32C.mask(crc32c(type ++ payload))
//   type        := 1 FULL | 2 FIRST | 3 MIDDLE | 4 LAST | 5 FILE_HEADER
//
//   The first physical record of every file is the file header; it appears nowhere else:
//   FILE_HEADER payload := magic:"SHLG" version:fixed32 (= 1) logNumber:fixed64   (16 bytes)
//
//   Logical records, in order after the file header:
//   record      := FULL | FIRST MIDDLE* LAST            payload = concatenated fragment payloads
//
// A physical record never crosses a block boundary, so every block begins with a physical
// record and a reader can always resynchronise at the next block. An empty logical record is a
// FULL of length 0; a FIRST of length 0 is written when exactly 7 bytes remain in a block.
// Seven zero bytes where a header is expected (length 0, type 0) are preallocated or
// zero-filled space: the end of data. A file appended to after reopening continues in the
// block where the file ended (``LogWriter/init(appendingTo:logNumber:)``).

import KVBase
import KVFileSystem

/// Appends logical records to a log file in the log format (grammar at the top of this file).
///
/// The first physical record of a new file is the file header, which names the format version
/// and the caller's `logNumber` so that a reader can refuse a stale or misplaced file.
///
/// Durability: ``addRecord(_:)`` only buffers. After ``flush()`` the records are in the
/// operating system and survive a crash of the process (kill -9); after ``sync()`` they are
/// on stable storage and survive power loss. Records appended but not yet
/// synced may be lost, or survive as a torn prefix, which a ``LogReader`` in
/// ``RecoveryMode/tolerateTornTail`` drops.
///
/// Errors: the first failure of the underlying file (a write, flush or sync error) is latched:
/// it is thrown again by every later call, because after a failed write or fsync it is unknown
/// which bytes reached the file. The owner must start a new log file to continue.
///
/// Thread safety: one owner at a time. The writer holds no lock; the owner (for example the
/// write-ahead log's group-commit leader) must not call it from two threads at once.
// @unchecked Sendable: mutable state without a lock, handed between threads only by an owner
// that serialises every call (the same single-owner contract as ``WritableFile``).
public final class LogWriter: @unchecked Sendable {
    /// The file being written.
    public let file: any WritableFile
    /// The number recorded in (or, for a reopened file, expected in) the file header.
    public let logNumber: UInt64
    /// Position within the current block where the next physical record begins.
    private var blockOffset: Int
    /// The first failure of the file, rethrown by every later call.
    private var failure: KVError?

    /// Starts a new log in an empty file: writes the file header record (buffered, like any
    /// record; it becomes durable with the first ``sync()``).
    ///
    /// - Parameters:
    ///   - file: A freshly created, empty file. The writer becomes its only user.
    ///   - logNumber: The caller's number for this file, stored in the header.
    /// - Throws: ``KVError/invalidArgument(_:)`` when the file is not empty; the file's error
    ///   when the header cannot be appended.
    public init(file: any WritableFile, logNumber: UInt64) throws(KVError) {
        guard file.size == 0 else {
            throw .invalidArgument("a new log needs an empty file; \(file.path) has \(file.size) bytes")
        }
        self.file = file
        self.logNumber = logNumber
        self.blockOffset = 0
        try writeFileHeader()
    }

    /// Continues an existing log: records are appended after the file's current end, in the
    /// block where it ends. No header is written, unless the file is empty, in which case this
    /// behaves like ``init(file:logNumber:)``.
    ///
    /// The file must end on a record boundary, that is, it must have been read back without
    /// dropping a torn tail. Appending after a torn tail would turn the torn bytes into damage
    /// in the middle of the file, which readers then report as corruption or drop together with
    /// the new records; after a torn tail, start a new log file instead.
    ///
    /// - Parameters:
    ///   - file: A file opened for appending at its end (``FileSystem/openAppendable(_:)``).
    ///   - logNumber: The number in the file's header.
    public init(appendingTo file: any WritableFile, logNumber: UInt64) throws(KVError) {
        self.file = file
        self.logNumber = logNumber
        self.blockOffset = Int(file.size % UInt64(LogFormat.blockSize))
        if file.size == 0 { try writeFileHeader() }
    }

    /// Bytes in the file so far, buffered bytes included.
    public var size: UInt64 { file.size }

    /// Appends one logical record, fragmenting it over blocks as needed. The bytes are
    /// buffered; see ``flush()`` and ``sync()`` for when they become durable.
    ///
    /// An empty payload is a valid record. Any size is accepted; a record of n bytes takes
    /// about n + 7 * ceil(n / 32761) bytes of file.
    ///
    /// - Throws: The file's ``KVError/io(path:operation:errno:)`` error, or the latched error
    ///   of an earlier failure.
    public func addRecord(_ payload: UnsafeRawBufferPointer) throws(KVError) {
        if let failure { throw failure }
        var remaining = payload.count
        var position = 0
        var isFirst = true
        repeat {
            let leftover = LogFormat.blockSize - blockOffset
            if leftover < LogFormat.headerSize {
                if leftover > 0 { try appendZeros(leftover) }
                blockOffset = 0
            }
            let available = LogFormat.blockSize - blockOffset - LogFormat.headerSize
            let fragment = min(remaining, available)
            let isLast = fragment == remaining
            let type: LogRecordType =
                isFirst ? (isLast ? .full : .first) : (isLast ? .last : .middle)
            let slice = UnsafeRawBufferPointer(rebasing: payload[position..<(position + fragment)])
            try emitPhysicalRecord(type, slice)
            position += fragment
            remaining -= fragment
            isFirst = false
        } while remaining > 0
    }

    /// Appends one logical record; see ``addRecord(_:)``.
    public func addRecord(_ payload: [UInt8]) throws(KVError) {
        try payload.withUnsafeBytes { bytes in
            Result { () throws(KVError) in try addRecord(bytes) }
        }.get()
    }

    /// Hands every appended record to the operating system. Afterwards the records survive a
    /// crash of the process, but not a power loss.
    public func flush() throws(KVError) {
        if let failure { throw failure }
        do { try file.flush() } catch { throw latch(error) }
    }

    /// Flushes, then forces every appended record to stable storage (fdatasync). Afterwards
    /// the records survive power loss.
    public func sync() throws(KVError) {
        if let failure { throw failure }
        do { try file.sync() } catch { throw latch(error) }
    }

    /// Flushes and closes the file. It does not sync: call ``sync()`` first when the records
    /// must be durable. After an earlier failure the file is still closed and the latched
    /// error is thrown.
    public func close() throws(KVError) {
        if let failure {
            try? file.close()
            throw failure
        }
        do { try file.close() } catch { throw latch(error) }
    }

    // MARK: - Physical records

    private func writeFileHeader() throws(KVError) {
        let n = logNumber
        let v = LogFormat.version
        let m = LogFormat.magic
        var payload: (UInt32, UInt32, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &payload) { p in
            p[0] = m.0
            p[1] = m.1
            p[2] = m.2
            p[3] = m.3
            p.storeBytes(of: v.littleEndian, toByteOffset: 4, as: UInt32.self)
            p.storeBytes(of: n.littleEndian, toByteOffset: 8, as: UInt64.self)
        }
        try withUnsafeBytes(of: &payload) { (p) throws(KVError) in
            try emitPhysicalRecord(.fileHeader, p)
        }
    }

    /// Writes one physical record at `blockOffset`; the caller guarantees that it fits in the
    /// current block. The header is built on the stack and the checksum is computed over the
    /// type byte and the payload in place, so no bytes are copied or allocated.
    private func emitPhysicalRecord(_ type: LogRecordType, _ payload: UnsafeRawBufferPointer) throws(KVError) {
        let length = payload.count
        assert(blockOffset + LogFormat.headerSize + length <= LogFormat.blockSize)
        var typeByte = type.rawValue
        var crc = withUnsafeBytes(of: &typeByte) { CRC32C.update(0, $0) }
        crc = CRC32C.update(crc, payload)
        let masked = CRC32C.mask(crc)
        var header: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (
            UInt8(truncatingIfNeeded: masked),
            UInt8(truncatingIfNeeded: masked >> 8),
            UInt8(truncatingIfNeeded: masked >> 16),
            UInt8(truncatingIfNeeded: masked >> 24),
            UInt8(truncatingIfNeeded: length),
            UInt8(truncatingIfNeeded: length >> 8),
            typeByte
        )
        do {
            try withUnsafeBytes(of: &header) { (p) throws(KVError) in
                try file.append(UnsafeRawBufferPointer(rebasing: p[0..<LogFormat.headerSize]))
            }
            if length > 0 { try file.append(payload) }
        } catch {
            throw latch(error)
        }
        blockOffset += LogFormat.headerSize + length
    }

    /// Fills the rest of a block that can no longer hold a header with zeros.
    private func appendZeros(_ count: Int) throws(KVError) {
        var zeros: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0)
        do {
            try withUnsafeBytes(of: &zeros) { (p) throws(KVError) in
                try file.append(UnsafeRawBufferPointer(rebasing: p[0..<count]))
            }
        } catch {
            throw latch(error)
        }
    }

    private func latch(_ error: KVError) -> KVError {
        if failure == nil { failure = error }
        return error
    }
}
