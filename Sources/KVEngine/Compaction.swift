import KVBase
import KVTable

/// A picked compaction: `inputs[0]` from `level`, `inputs[1]` from `level + 1`, written to
/// `outputLevel` (`level + 1`, or `level` itself when a manual compaction rewrites the bottom
/// level in place).
struct Compaction {
    let level: Int
    var outputLevel: Int
    var inputs: [[FileMetaData]]
    /// Files of `level + 2` overlapping the inputs: outputs are cut so that none overlaps
    /// too many of them (bounds the cost of the next compaction).
    var grandparents: [FileMetaData]
    /// Manual compactions are not trivial moves (they must rewrite to drop garbage).
    var manual = false

    /// One input file, nothing to merge with, little grandparent overlap: just relink it.
    func isTrivialMove(targetFileSize: Int) -> Bool {
        !manual && inputs[0].count == 1 && inputs[1].isEmpty
            && grandparents.reduce(0) { $0 + $1.size } <= UInt64(10 * targetFileSize)
    }

    var inputBytes: UInt64 { inputs.joined().reduce(0) { $0 + $1.size } }
}

/// Level budgets and the score-based picker (LevelDB's).
extension Version {
    /// Byte budget of `level` (1...).
    static func maxBytes(level: Int, options: Options) -> Double {
        var result = Double(options.maxBytesForLevelBase)
        var l = level
        while l > 1 {
            result *= Double(options.levelSizeMultiplier)
            l -= 1
        }
        return result
    }

    /// The level most in need of compaction and its score (>= 1 means needed).
    func compactionScore(options: Options) -> (level: Int, score: Double) {
        var best = (level: 0, score: Double(files[0].count) / Double(options.level0CompactionTrigger))
        for level in 1..<(numLevels - 1) {
            let score = Double(bytes(level)) / Version.maxBytes(level: level, options: options)
            if score > best.score { best = (level, score) }
        }
        return best
    }

    static func userRange(_ files: [FileMetaData]) -> (smallest: [UInt8], largest: [UInt8])? {
        guard var lo = files.first?.smallest, var hi = files.first?.largest else { return nil }
        for f in files.dropFirst() {
            if InternalKey.compare(f.smallest, lo) < 0 { lo = f.smallest }
            if InternalKey.compare(f.largest, hi) > 0 { hi = f.largest }
        }
        return (lo.withUnsafeBytes { Array(InternalKey.userKey($0)) }, hi.withUnsafeBytes { Array(InternalKey.userKey($0)) })
    }

    /// Builds a compaction of `inputs` at `level` into `level + 1`. Level-0 inputs grow to
    /// every level-0 file overlapping their range (newer versions must move together).
    func compaction(level: Int, inputs start: [FileMetaData], manual: Bool = false, inPlace: Bool = false) -> Compaction? {
        var inputs = start
        guard var range = Version.userRange(inputs) else { return nil }
        if inPlace {
            let grandparents = level + 1 < numLevels ? overlapping(level + 1, range.smallest, range.largest) : []
            return Compaction(level: level, outputLevel: level, inputs: [inputs, []], grandparents: grandparents, manual: true)
        }
        if level == 0 {
            while true {
                let grown = overlapping(0, range.smallest, range.largest)
                if grown.count == inputs.count { break }
                inputs = grown
                range = Version.userRange(inputs)!
            }
        }
        let next = level + 1 < numLevels ? overlapping(level + 1, range.smallest, range.largest) : []
        let all = Version.userRange(inputs + next)!
        let grandparents = level + 2 < numLevels ? overlapping(level + 2, all.smallest, all.largest) : []
        return Compaction(level: level, outputLevel: level + 1, inputs: [inputs, next], grandparents: grandparents, manual: manual)
    }

    /// Picks the next background compaction, or nil when no level needs one.
    func pickCompaction(options: Options, compactPointers: [[UInt8]]) -> Compaction? {
        let (level, score) = compactionScore(options: options)
        guard score >= 1 else { return nil }
        if level == 0 {
            // Oldest level-0 file first.
            guard let oldest = files[0].last else { return nil }
            return compaction(level: 0, inputs: [oldest])
        }
        // Round-robin through the level's key space.
        let pointer = compactPointers[level]
        let file = files[level].first { pointer.isEmpty || InternalKey.compare($0.largest, pointer) > 0 } ?? files[level][0]
        return compaction(level: level, inputs: [file])
    }

    /// Whether any level deeper than `level` may hold `userKey` (if not, a tombstone for it at
    /// `level` can be dropped).
    func deeperLevelsMayContain(_ userKey: UnsafeRawBufferPointer, below level: Int) -> Bool {
        var l = level + 1
        while l < numLevels {
            for f in files[l] where Version.userRangeContains(f, userKey) { return true }
            l += 1
        }
        return false
    }
}
