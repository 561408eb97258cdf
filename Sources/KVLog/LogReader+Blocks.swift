import KVBase
import KVFileSystem

// Block-level parsing for LogReader: loading blocks, decoding physical records, the file
// header, and the forward scans that tell a torn tail from damage in the middle of a file.

extension LogReader {
    /// Reads the block that begins at file offset `start` into the buffer. Returns false when
    /// `start` is at or past the end of the file. A file shorter than its size at open time
    /// ends where the read ends.
    mutating func loadBlock(at start: UInt64) throws(KVError) -> Bool {
        guard start < fileSize else { return false }
        let want = Int(min(UInt64(LogFormat.blockSize), fileSize - start))
        let source = file
        let got = try buffer.withUnsafeMutableBytes { bytes in
            Result { () throws(KVError) -> Int in
                var done = 0
                while done < want {
                    let n = try source.read(
                        at: start + UInt64(done), into: UnsafeMutableRawBufferPointer(rebasing: bytes[done..<want]))
                    if n <= 0 { break }
                    done += n
                }
                return done
            }
        }.get()
        if got < want { fileSize = start + UInt64(got) }
        bufferStart = start
        bufferLength = got
        position = 0
        return got > 0
    }

    /// Decodes the physical record at `position`, loading the next block when the current one
    /// is used up (its last 0..6 bytes are the zero trailer, which is not checked).
    mutating func readPhysical() throws(KVError) -> Physical {
        let headerSize = LogFormat.headerSize
        while true {
            let remaining = bufferLength - position
            if remaining < headerSize {
                if remaining == 0 || bufferLength == LogFormat.blockSize {
                    if try !loadBlock(at: bufferStart + UInt64(bufferLength)) { return .endOfFile }
                    continue
                }
                let p = position
                let onlyZeros = buffer.withUnsafeBytes { b in b[p..<(p + remaining)].allSatisfy { $0 == 0 } }
                if onlyZeros { return .zeros(offset: bufferStart + UInt64(p)) }
                return .bad(
                    offset: bufferStart + UInt64(position), kind: .truncated,
                    reason: "the file ends \(remaining) bytes into a record header")
            }
            let p = position
            let offset = bufferStart + UInt64(p)
            let (masked, length, typeByte) = buffer.withUnsafeBytes { b in
                (b.fixed32(at: p), Int(b[p + 4]) | Int(b[p + 5]) << 8, b[p + 6])
            }
            if masked == 0 && length == 0 && typeByte == 0 { return .zeros(offset: offset) }
            if headerSize + length > remaining {
                if bufferLength < LogFormat.blockSize && p + headerSize + length <= LogFormat.blockSize {
                    return .bad(
                        offset: offset, kind: .truncated,
                        reason: "a record of \(length) bytes is cut short by the end of the file "
                            + "after \(remaining - headerSize) bytes")
                }
                return .bad(
                    offset: offset, kind: .malformed,
                    reason: "record length \(length) overruns its block (\(remaining - headerSize) bytes left)")
            }
            if !checksumMatches(at: p, masked: masked, length: length) {
                return .bad(
                    offset: offset, kind: .checksum(successor: offset + UInt64(headerSize + length)),
                    reason: "checksum mismatch in a record of \(length) bytes")
            }
            guard let type = LogRecordType(rawValue: typeByte) else {
                return .bad(offset: offset, kind: .unknownType, reason: "unknown record type \(typeByte)")
            }
            position = p + headerSize + length
            return .record(type: type, offset: offset, payloadStart: p + headerSize, length: length)
        }
    }

    /// Whether the record at buffer position `p` carries the checksum of its type byte and
    /// payload, which are contiguous (the type is the header's last byte).
    func checksumMatches(at p: Int, masked: UInt32, length: Int) -> Bool {
        let typeAt = p + LogFormat.headerSize - 1
        let actual = buffer.withUnsafeBytes { b in
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[typeAt..<(typeAt + 1 + length)]))
        }
        return CRC32C.unmask(masked) == actual
    }

    /// Walks intact-looking records in the current buffer from position `p` and returns the
    /// position of the first one whose checksum matches and whose type is known. Stops at
    /// zero-filled space or at a length that does not fit, after which record boundaries are
    /// unknown.
    func firstValidRecord(inBufferFrom start: Int) -> Int? {
        let headerSize = LogFormat.headerSize
        var p = start
        while bufferLength - p >= headerSize {
            let (masked, length, typeByte) = buffer.withUnsafeBytes { b in
                (b.fixed32(at: p), Int(b[p + 4]) | Int(b[p + 5]) << 8, b[p + 6])
            }
            if masked == 0 && length == 0 && typeByte == 0 { return nil }
            if p + headerSize + length > bufferLength { return nil }
            if LogRecordType(rawValue: typeByte) != nil && checksumMatches(at: p, masked: masked, length: length) {
                return p
            }
            p += headerSize + length
        }
        return nil
    }

    /// Whether the physical record at file `offset` (in the current buffer) was written whole
    /// and then damaged in its length field, with valid records after it: its checksum matches
    /// its type byte and a payload of another length, and a valid record begins right after
    /// that payload. A torn write keeps a prefix of what was written, length field included,
    /// and is the last thing in the file, so it cannot look like this (but for two 2^-32
    /// checksum coincidences).
    ///
    /// - Returns: The file offset of the valid record that follows, or nil.
    func recordHiddenByDamagedLength(at offset: UInt64) -> UInt64? {
        let headerSize = LogFormat.headerSize
        guard offset >= bufferStart, offset - bufferStart <= UInt64(bufferLength) else { return nil }
        let p = Int(offset - bufferStart)
        guard bufferLength - p >= headerSize else { return nil }
        let (masked, stored) = buffer.withUnsafeBytes { b in (b.fixed32(at: p), Int(b[p + 4]) | Int(b[p + 5]) << 8) }
        let want = CRC32C.unmask(masked)
        let typeAt = p + headerSize - 1
        // Payload lengths after which a whole record header still fits in the buffer.
        let longest = bufferLength - typeAt - 1 - headerSize
        guard longest >= 0 else { return nil }
        var crc = buffer.withUnsafeBytes { b in CRC32C.update(0, UnsafeRawBufferPointer(rebasing: b[typeAt..<(typeAt + 1)])) }
        var length = 0
        while true {
            if crc == want && length != stored && isValidRecord(at: typeAt + 1 + length) {
                return bufferStart + UInt64(typeAt + 1 + length)
            }
            if length == longest { return nil }
            let at = typeAt + 1 + length
            crc = buffer.withUnsafeBytes { b in CRC32C.update(crc, UnsafeRawBufferPointer(rebasing: b[at..<(at + 1)])) }
            length += 1
        }
    }

    /// Whether a physical record of a known type with a matching checksum begins at buffer
    /// position `p`.
    func isValidRecord(at p: Int) -> Bool {
        let headerSize = LogFormat.headerSize
        guard bufferLength - p >= headerSize else { return false }
        let (masked, length, typeByte) = buffer.withUnsafeBytes { b in
            (b.fixed32(at: p), Int(b[p + 4]) | Int(b[p + 5]) << 8, b[p + 6])
        }
        if masked == 0 && length == 0 && typeByte == 0 { return false }
        return p + headerSize + length <= bufferLength && LogRecordType(rawValue: typeByte) != nil
            && checksumMatches(at: p, masked: masked, length: length)
    }

    /// The torn-tail test: after a bad physical record at `offset` (in the current buffer),
    /// looks for any valid physical record later in the file. It follows the bad record's own
    /// length to `successor` when that is trustworthy (a checksum mismatch), and then tries
    /// every later block, whose first byte always begins a physical record. Reads the rest of
    /// the file at most once; the buffer is left in an unspecified state.
    ///
    /// - Returns: The file offset of a valid record, or nil when none follows (a torn tail).
    mutating func findValidRecord(after offset: UInt64, successor: UInt64?) throws(KVError) -> UInt64? {
        let block = UInt64(LogFormat.blockSize)
        if let next = successor, next < bufferStart + UInt64(bufferLength) {
            if let found = firstValidRecord(inBufferFrom: Int(next - bufferStart)) {
                return bufferStart + UInt64(found)
            }
        }
        var start = (offset / block + 1) * block
        while try loadBlock(at: start) {
            if let found = firstValidRecord(inBufferFrom: 0) { return bufferStart + UInt64(found) }
            start += block
        }
        return nil
    }

    /// The offset of the first non-zero byte at or after `offset` (which lies in the current
    /// buffer), or nil when the file holds only zeros from there on.
    mutating func firstNonZeroByte(from offset: UInt64) throws(KVError) -> UInt64? {
        var p = Int(offset - bufferStart)
        while true {
            let limit = bufferLength
            let found = buffer.withUnsafeBytes { b -> Int? in
                var i = p
                while i < limit {
                    if b[i] != 0 { return i }
                    i += 1
                }
                return nil
            }
            if let i = found { return bufferStart + UInt64(i) }
            if try !loadBlock(at: bufferStart + UInt64(bufferLength)) { return nil }
            p = 0
        }
    }

    /// Validates the first physical record of the file, which must be the file header.
    mutating func checkFileHeader(type: LogRecordType, payloadStart p: Int, length: Int) throws(KVError) {
        guard type == .fileHeader else {
            throw corruption(0, "missing file header: the first record has type \(type.rawValue)")
        }
        let m = LogFormat.magic
        let (magicMatches, version, number) = buffer.withUnsafeBytes { b -> (Bool, UInt32, UInt64) in
            let magicMatches = length >= 4 && b[p] == m.0 && b[p + 1] == m.1 && b[p + 2] == m.2 && b[p + 3] == m.3
            let version = length >= 8 ? b.fixed32(at: p + 4) : 0
            let number = length >= 16 ? b.fixed64(at: p + 8) : 0
            return (magicMatches, version, number)
        }
        guard magicMatches, length >= 8 else {
            throw corruption(0, "bad magic in the file header: not a Shale log file")
        }
        guard version == LogFormat.version else {
            throw .unsupportedFormat(file: file.path, version: version)
        }
        guard length == LogFormat.fileHeaderPayloadSize else {
            throw corruption(
                0, "a version \(version) file header has \(length) bytes, expected \(LogFormat.fileHeaderPayloadSize)")
        }
        if let expected = expectedLogNumber, number != expected {
            throw corruption(
                0, "the file header names log \(number), expected log \(expected) (a stale or misplaced file)")
        }
        logNumber = number
    }

    func copyPayload(_ start: Int, _ length: Int) -> [UInt8] {
        buffer.withUnsafeBytes { b in Array(UnsafeRawBufferPointer(rebasing: b[start..<(start + length)])) }
    }

    func appendPayload(_ start: Int, _ length: Int, to output: inout [UInt8]) {
        buffer.withUnsafeBytes { b in output.append(contentsOf: UnsafeRawBufferPointer(rebasing: b[start..<(start + length)])) }
    }
}
