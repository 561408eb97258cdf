import CShaleSupport

/// CRC-32C (Castagnoli, polynomial 0x82F63B78 reflected), the checksum of every
/// record, block and file Shale writes. Uses the CPU's CRC-32C instruction where there is
/// one (x86-64 with SSE 4.2), software slicing-by-8 elsewhere; both give the same values.
///
/// Stored checksums are *masked* as LevelDB does (`rotate right 15, add 0xa282ead8`)
/// so that a CRC computed over bytes that themselves contain a CRC stays well mixed.
public enum CRC32C {
    @usableFromInline
    static let table: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 8 * 256)
        for i in 0..<256 {
            var crc = UInt32(i)
            for _ in 0..<8 {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1
            }
            t[i] = crc
        }
        for i in 0..<256 {
            var crc = t[i]
            for k in 1..<8 {
                crc = t[Int(crc & 0xFF)] ^ (crc >> 8)
                t[k * 256 + i] = crc
            }
        }
        return t
    }()

    /// Whether ``update(_:_:)`` uses the CPU's CRC-32C instruction.
    public static let usesHardware: Bool = shale_crc32c_hw_available() != 0

    /// CRC-32C of `bytes`, continuing from `crc` (pass 0 to start).
    @inlinable
    public static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard bytes.count > 0, let base = bytes.baseAddress else { return crc }
        if usesHardware { return shale_crc32c_hw(crc, base, bytes.count) }
        return software(crc, bytes)
    }

    /// The portable slicing-by-8 implementation (also the reference the tests compare the
    /// hardware path with).
    @inlinable
    public static func software(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var c = ~crc
        var i = 0
        let n = bytes.count
        guard n > 0, let base = bytes.baseAddress else { return crc }
        table.withUnsafeBufferPointer { t in
            while n - i >= 8 {
                let lo = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt32.self)) ^ c
                let hi = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: i + 4, as: UInt32.self))
                c = t[7 * 256 + Int(lo & 0xFF)] ^ t[6 * 256 + Int((lo >> 8) & 0xFF)]
                    ^ t[5 * 256 + Int((lo >> 16) & 0xFF)] ^ t[4 * 256 + Int(lo >> 24)]
                    ^ t[3 * 256 + Int(hi & 0xFF)] ^ t[2 * 256 + Int((hi >> 8) & 0xFF)]
                    ^ t[1 * 256 + Int((hi >> 16) & 0xFF)] ^ t[Int(hi >> 24)]
                i += 8
            }
            while i < n {
                c = t[Int((c ^ UInt32(base.load(fromByteOffset: i, as: UInt8.self))) & 0xFF)] ^ (c >> 8)
                i += 1
            }
        }
        return ~c
    }

    /// CRC-32C of `bytes`.
    @inlinable
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        update(0, bytes)
    }

    /// CRC-32C of `bytes`.
    @inlinable
    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { update(0, $0) }
    }

    @usableFromInline static let maskDelta: UInt32 = 0xA282_EAD8

    /// The stored form of a CRC.
    @inlinable
    public static func mask(_ crc: UInt32) -> UInt32 {
        ((crc >> 15) | (crc << 17)) &+ maskDelta
    }

    /// Inverse of ``mask(_:)``.
    @inlinable
    public static func unmask(_ masked: UInt32) -> UInt32 {
        let rot = masked &- maskDelta
        return (rot >> 17) | (rot << 15)
    }
}
