import KVBase

// Constants of the record log format. The byte grammar is documented at the top of
// LogWriter.swift, the file that writes the bytes.

/// The physical record types of the log format, version 1. The values are frozen: they are
/// stored on disk.
enum LogRecordType: UInt8, Sendable {
    /// A whole logical record in one physical record.
    case full = 1
    /// The first fragment of a logical record that continues in later fragments.
    case first = 2
    /// An inner fragment.
    case middle = 3
    /// The last fragment.
    case last = 4
    /// The file header; only ever the first physical record of a file.
    case fileHeader = 5
}

/// Layout constants of the log format, version 1.
public enum LogFormat {
    /// Size of a block. Physical records never cross a block boundary.
    public static let blockSize = 32_768
    /// Size of a physical record header: checksum fixed32, length fixed16, type byte.
    public static let headerSize = 7
    /// Largest payload one physical record can carry (a whole block minus its header).
    public static let maxFragmentSize = blockSize - headerSize
    /// The magic bytes that open the payload of the file header record: "SHLG".
    public static let magic: (UInt8, UInt8, UInt8, UInt8) = (0x53, 0x48, 0x4C, 0x47)
    /// The format version this build writes and the only one it reads.
    public static let version: UInt32 = 1
    /// Payload size of the version 1 file header: magic, version fixed32, log number fixed64.
    public static let fileHeaderPayloadSize = 16
    /// Size of the whole file header record (header plus payload): where the first data
    /// record of a new log file begins.
    public static let fileHeaderRecordSize = headerSize + fileHeaderPayloadSize
}

/// How a ``LogReader`` treats damaged or incomplete records.
///
/// A *bad* physical record is one whose checksum does not match, whose length overruns its
/// block, which is cut short by the end of the file, whose type is unknown, or which breaks
/// the FIRST, MIDDLE..., LAST sequence. A run of zero bytes where a header is expected is
/// preallocated or zero-filled space.
public enum RecoveryMode: Sendable, Hashable {
    /// Any bad or incomplete record, anywhere, throws ``KVError/corruption(file:offset:reason:)``
    /// naming the file and the offset of the bad physical record. A zero-filled tail (only zero
    /// bytes up to the end of the file) is still the end of data, not an error.
    case strict
    /// The mode for write-ahead logs. A bad or incomplete record that no valid physical
    /// record follows anywhere later in the file is a write torn by a crash: it and everything
    /// after it are dropped silently and reported in ``LogReader/droppedTailBytes``. A bad
    /// record that a valid record follows is damage in the middle of the file and throws
    /// ``KVError/corruption(file:offset:reason:)`` at the bad record's offset.
    case tolerateTornTail
    /// Best-effort salvage: a bad physical record is skipped together with the rest of its
    /// block and the logical record it belonged to; reading resumes at the next block.
    /// What was skipped is counted in ``LogReader/skippedBytes`` and
    /// ``LogReader/skippedRegions``. An incomplete record at the end of the file is dropped as
    /// in ``tolerateTornTail``.
    case skipCorrupt
}
