import KVBase
import KVFileSystem
import KVLayout

// Store descriptor: the file STORE in the store directory, format version 2 (version 2: the
// shards hold rows in the envelope of RowValue and reserved records of EngineKey).
// It is rewritten whole and atomically: written to STORE.tmp, fsynced, renamed over STORE,
// and the directory fsynced. All integers little-endian.
//
//   file      := magic "SHSD" | version fixed32 (= 2) | body_length fixed32 | body
//              | checksum fixed32
//   checksum  := masked CRC32C of every byte before it (magic through body)
//   body      := generation fixed64          +1 on every rewrite
//              | slot_count fixed32          16384
//              | ring_algorithm fixed32      1 = balanced incremental allocation (HashRing.swift)
//              | shard_count fixed32         n: shards 0..<n own slots
//              | dir_count fixed32           shard directories of the store
//              | dir * dir_count
//              | owners                      the slot table in force
//              | phase u8                    0 stable | 1 copying | 2 cleaning
//              | [other_count fixed32 | other_owners]     only when phase != 0
//   dir       := id fixed32 (= its position) | name_length varint32 | name (UTF-8, no '/')
//   owners    := owner fixed16 * slot_count  the shard id owning each slot
//
// Phases (a reshard from n to m shards):
//   stable    dir_count = n; every shard holds only keys of slots it owns.
//   copying   owners = ring(n) is in force; other = m, ring(m). Moving slots are being copied to
//             their new owners. dir_count = max(n, m). Recovery rolls back: the keys the
//             targets hold for slots they do not own are deleted, new directories removed.
//   cleaning  owners = ring(m) is in force (the switch happened); other = n, ring(n).
//             dir_count = max(n, m). Recovery rolls forward: the old owners' leftovers are
//             deleted, removed shards' directories deleted.

/// The persistent description of a sharded store: slot count, ring, shard directories, the
/// slot → shard table in force and any reshard in progress. See the grammar above.
package struct StoreDescriptor: Equatable, Sendable {
    /// Where a reshard stands.
    package enum Phase: UInt8, Sendable {
        case stable = 0
        case copying = 1
        case cleaning = 2
    }

    package static let fileName = "STORE"
    package static let magic: [UInt8] = Array("SHSD".utf8)
    package static let formatVersion: UInt32 = 2
    static let headerSize = 12

    /// Incremented on every rewrite.
    package var generation: UInt64
    /// Number of hash slots the table covers.
    package var slotCount: Int
    /// The allocation algorithm of the ring that produced the tables.
    package var ringAlgorithm: UInt32
    /// Shards `0..<shardCount` own slots.
    package var shardCount: Int
    /// Directory name of every shard of the store, by shard id.
    package var directories: [String]
    /// The owner of every slot, in force.
    package var owners: [UInt16]
    package var phase: Phase
    /// Copying: the target shard count; cleaning: the previous one; stable: 0.
    package var otherCount: Int
    /// Copying: the target table; cleaning: the previous table; stable: empty.
    package var otherOwners: [UInt16]

    package init(
        generation: UInt64, shardCount: Int, directories: [String], owners: [UInt16],
        phase: Phase = .stable, otherCount: Int = 0, otherOwners: [UInt16] = [],
        slotCount: Int = HashSlot.count, ringAlgorithm: UInt32 = HashRing.algorithm
    ) {
        self.generation = generation
        self.slotCount = slotCount
        self.ringAlgorithm = ringAlgorithm
        self.shardCount = shardCount
        self.directories = directories
        self.owners = owners
        self.phase = phase
        self.otherCount = otherCount
        self.otherOwners = otherOwners
    }

    /// The directory name of shard `id`.
    package static func directoryName(_ id: Int) -> String {
        let s = String(id)
        return "shard-" + String(repeating: "0", count: max(0, 4 - s.count)) + s
    }

    // MARK: encoding

    package func encode() -> [UInt8] {
        var body: [UInt8] = []
        body.reserveCapacity(32 + 2 * slotCount * (phase == .stable ? 1 : 2) + directories.count * 16)
        body.appendFixed64(generation)
        body.appendFixed32(UInt32(slotCount))
        body.appendFixed32(ringAlgorithm)
        body.appendFixed32(UInt32(shardCount))
        body.appendFixed32(UInt32(directories.count))
        for (id, name) in directories.enumerated() {
            body.appendFixed32(UInt32(id))
            body.appendLengthPrefixed(Array(name.utf8))
        }
        Self.appendTable(owners, to: &body)
        body.append(phase.rawValue)
        if phase != .stable {
            body.appendFixed32(UInt32(otherCount))
            Self.appendTable(otherOwners, to: &body)
        }
        var out = Self.magic
        out.appendFixed32(Self.formatVersion)
        out.appendFixed32(UInt32(body.count))
        out.append(contentsOf: body)
        out.appendFixed32(CRC32C.mask(CRC32C.checksum(out)))
        return out
    }

    private static func appendTable(_ table: [UInt16], to out: inout [UInt8]) {
        for owner in table {
            out.append(UInt8(truncatingIfNeeded: owner))
            out.append(UInt8(truncatingIfNeeded: owner >> 8))
        }
    }

    /// Parses and checks a descriptor read from `file`.
    ///
    /// - Throws: ``KVError/corruption(file:offset:reason:)`` naming `file` and the offset of
    ///   the damage; ``KVError/unsupportedFormat(file:version:)`` for another format version.
    package static func decode(_ bytes: [UInt8], file: String) throws(KVError) -> StoreDescriptor {
        try bytes.withUnsafeBytes { p in
            Result { () throws(KVError) in try decode(p, file: file) }
        }.get()
    }

    private static func decode(_ p: UnsafeRawBufferPointer, file: String) throws(KVError) -> StoreDescriptor {
        func bad(_ offset: Int, _ why: String) -> KVError {
            .corruption(file: file, offset: UInt64(offset), reason: "store descriptor: " + why)
        }
        guard p.count >= headerSize + 4 else { throw bad(0, "file too short (\(p.count) bytes)") }
        guard Array(p[0..<4]) == magic else { throw bad(0, "bad magic number") }
        let bodyLength = Int(p.fixed32(at: 8))
        guard bodyLength == p.count - headerSize - 4 else {
            throw bad(8, "body length \(bodyLength) does not match file size \(p.count)")
        }
        let stored = CRC32C.unmask(p.fixed32(at: p.count - 4))
        let actual = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: p[0..<(p.count - 4)]))
        guard stored == actual else { throw bad(p.count - 4, "checksum mismatch") }
        let version = p.fixed32(at: 4)
        guard version == formatVersion else { throw .unsupportedFormat(file: file, version: version) }

        let end = p.count - 4
        var pos = headerSize
        func need(_ n: Int) throws(KVError) {
            if n > end - pos { throw bad(pos, "truncated body") }
        }
        func u32() throws(KVError) -> Int {
            try need(4)
            defer { pos += 4 }
            return Int(p.fixed32(at: pos))
        }
        func table(_ count: Int) throws(KVError) -> [UInt16] {
            try need(2 * count)
            var t = [UInt16](repeating: 0, count: count)
            for i in 0..<count { t[i] = UInt16(p[pos + 2 * i]) | UInt16(p[pos + 2 * i + 1]) << 8 }
            pos += 2 * count
            return t
        }
        try need(8)
        let generation = p.fixed64(at: pos)
        pos += 8
        let slotCount = try u32()
        guard slotCount >= 1 && slotCount <= 1 << 16 else { throw bad(pos - 4, "slot count \(slotCount) out of range") }
        let ringAlgorithm = UInt32(try u32())
        let shardCount = try u32()
        let dirCount = try u32()
        guard dirCount <= HashRing.maxShards else { throw bad(pos - 4, "\(dirCount) shard directories") }
        var directories: [String] = []
        for i in 0..<dirCount {
            let at = pos
            guard try u32() == i else { throw bad(at, "shard directory \(i) out of order") }
            guard let length = p.varint32(at: &pos) else { throw bad(pos, "bad directory name length") }
            try need(Int(length))
            let name = String(decoding: p[pos..<(pos + Int(length))], as: UTF8.self)
            pos += Int(length)
            if name.isEmpty || name == "." || name == ".." || name.contains("/") || name == fileName {
                throw bad(at, "bad shard directory name \"\(name)\"")
            }
            directories.append(name)
        }
        let owners = try table(slotCount)
        try need(1)
        guard let phase = Phase(rawValue: p[pos]) else { throw bad(pos, "unknown phase \(p[pos])") }
        pos += 1
        var otherCount = 0
        var otherOwners: [UInt16] = []
        if phase != .stable {
            otherCount = try u32()
            otherOwners = try table(slotCount)
        }
        if pos != end { throw bad(pos, "\(end - pos) trailing bytes") }

        let d = StoreDescriptor(
            generation: generation, shardCount: shardCount, directories: directories, owners: owners,
            phase: phase, otherCount: otherCount, otherOwners: otherOwners,
            slotCount: slotCount, ringAlgorithm: ringAlgorithm)
        if let why = d.inconsistency() { throw bad(headerSize, why) }
        return d
    }

    /// Why the fields contradict each other, or nil when they are consistent.
    func inconsistency() -> String? {
        guard shardCount >= 1 && shardCount <= HashRing.maxShards else { return "shard count \(shardCount) out of range" }
        if let bad = owners.first(where: { Int($0) >= shardCount }) {
            return "slot owned by shard \(bad) of \(shardCount)"
        }
        switch phase {
        case .stable:
            if directories.count != shardCount {
                return "\(directories.count) shard directories for \(shardCount) shards"
            }
        case .copying, .cleaning:
            guard otherCount >= 1 && otherCount <= HashRing.maxShards && otherCount != shardCount else {
                return "reshard from \(shardCount) to \(otherCount) shards"
            }
            if directories.count != max(shardCount, otherCount) {
                return "\(directories.count) shard directories during a reshard of \(shardCount) and \(otherCount) shards"
            }
            if let bad = otherOwners.first(where: { Int($0) >= otherCount }) {
                return "reshard table names shard \(bad) of \(otherCount)"
            }
        }
        if Set(directories).count != directories.count { return "duplicate shard directory names" }
        return nil
    }

    // MARK: file I/O

    /// Reads the descriptor of the store in `directory`; nil when there is none.
    package static func read(fs: any FileSystem, directory: String) throws(KVError) -> StoreDescriptor? {
        let path = joinPath(directory, fileName)
        guard fs.fileExists(path) else { return nil }
        return try decode(try fs.readFile(path), file: path)
    }

    /// A failed descriptor write, and whether the new file may already be in force.
    package struct WriteFailure: Error {
        package var error: KVError
        /// False: the failure happened before the rename, so the previous descriptor is still
        /// the one in force. True: the rename happened but its directory sync failed, so after
        /// a crash either descriptor may be found.
        package var renamed: Bool
    }

    /// Writes the descriptor atomically: STORE.tmp is written and fsynced, renamed over STORE,
    /// and the directory fsynced.
    package func write(fs: any FileSystem, directory: String) throws(WriteFailure) {
        let path = joinPath(directory, Self.fileName)
        let tmp = path + ".tmp"
        do throws(KVError) {
            let file = try fs.createWritable(tmp)
            try file.append(encode())
            try file.sync()
            try file.close()
            try fs.rename(tmp, path)
        } catch {
            throw WriteFailure(error: error, renamed: false)
        }
        do throws(KVError) {
            try fs.syncDirectory(directory)
        } catch {
            throw WriteFailure(error: error, renamed: true)
        }
    }
}
