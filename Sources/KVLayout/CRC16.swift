/// CRC-16/XMODEM, the checksum Redis Cluster hashes keys with: polynomial 0x1021, initial
/// value 0, no reflection, no final XOR. `CRC16.checksum("123456789")` is 0x31C3.
///
/// Table-driven (one table lookup per byte); the table is computed once.
@usableFromInline
package enum CRC16 {
    /// The 256-entry lookup table for polynomial 0x1021, most significant bit first.
    @usableFromInline static let table: [UInt16] = (0..<256).map { (byte: Int) -> UInt16 in
        var crc = UInt16(byte) << 8
        for _ in 0..<8 {
            crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1
        }
        return crc
    }

    /// The CRC-16/XMODEM of `bytes`.
    @inlinable
    package static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt16 {
        table.withUnsafeBufferPointer { t in
            var crc: UInt16 = 0
            for b in bytes {
                crc = (crc << 8) ^ t[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ b)]
            }
            return crc
        }
    }

    /// The CRC-16/XMODEM of a byte array.
    @inlinable
    package static func checksum(_ bytes: [UInt8]) -> UInt16 {
        bytes.withUnsafeBytes { checksum($0) }
    }
}
