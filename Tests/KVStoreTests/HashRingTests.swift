import KVLayout
import KVStore
import KVTestSupport
import Testing

/// The slot → shard ring: balance, and that a change of shard count moves only the slots whose
/// owner changes.
@Suite("Hash ring")
struct HashRingTests {
    static func slotsPerShard(_ owners: [UInt16], _ n: Int) -> [Int] {
        var counts = [Int](repeating: 0, count: n)
        for o in owners { counts[Int(o)] += 1 }
        return counts
    }

    @Test func balancedForEveryCountFrom4To64() {
        var worst = 0.0
        for n in 4...64 {
            let counts = Self.slotsPerShard(HashRing.owners(shardCount: n), n)
            let ratio = Double(counts.max()!) / Double(counts.min()!)
            worst = max(worst, ratio)
            #expect(ratio <= 1.25, "\(n) shards: slots per shard \(counts.min()!)...\(counts.max()!)")
            #expect(counts.max()! - counts.min()! <= 1, "\(n) shards")
        }
        print("[ring] worst max/min slots per shard over 4...64 shards: \(worst)")
    }

    @Test func balancedUpToTheMaximum() {
        for n in soakEnabled ? [1, 2, 3, 100, 257, 1000, HashRing.maxShards] : [1, 2, 3, 100, 257] {
            let counts = Self.slotsPerShard(HashRing.owners(shardCount: n), n)
            #expect(counts.max()! - counts.min()! <= 1, "\(n) shards")
        }
    }

    @Test func growingByOneMovesOnlySlotsToTheNewShard() {
        var previous = HashRing.owners(shardCount: 1)
        for n in 1...64 {
            let next = HashRing.owners(shardCount: n + 1)
            var moved = 0
            for slot in 0..<HashSlot.count where previous[slot] != next[slot] {
                moved += 1
                #expect(Int(next[slot]) == n, "\(n)→\(n + 1): slot \(slot) moved to \(next[slot]), not the new shard")
            }
            let ideal = Double(HashSlot.count) / Double(n + 1)
            #expect(abs(Double(moved) - ideal) <= 1, "\(n)→\(n + 1): moved \(moved) slots, ideal \(ideal)")
            if n == 4 || n == 8 {
                print("[ring] \(n)→\(n + 1): moved fraction \(Double(moved) / Double(HashSlot.count)) (ideal \(1.0 / Double(n + 1)))")
            }
            previous = next
        }
    }

    @Test(arguments: [(4, 5), (8, 16), (5, 8), (8, 3), (16, 4), (3, 64), (64, 63)])
    func anyChangeMovesOnlySlotsOfAddedOrRemovedShards(from old: Int, to new: Int) {
        let a = HashRing.owners(shardCount: old)
        let b = HashRing.owners(shardCount: new)
        let small = min(old, new)
        var moved = 0
        for slot in 0..<HashSlot.count {
            if a[slot] != b[slot] {
                moved += 1
                #expect(Int(max(a[slot], b[slot])) >= small, "slot \(slot) moved between surviving shards")
            } else {
                #expect(Int(a[slot]) < small)
            }
        }
        let fraction = Double(moved) / Double(HashSlot.count)
        let ideal = Double(abs(new - old)) / Double(max(new, old))
        print("[ring] \(old)→\(new): moved fraction \(fraction) (ideal \(ideal))")
        #expect(abs(fraction - ideal) < 0.001)
    }

    @Test func slotRangesCoverEachShardExactly() {
        let owners = HashRing.owners(shardCount: 7)
        var covered = [Bool](repeating: false, count: HashSlot.count)
        for shard in 0..<7 {
            let ranges = HashRing.ranges(of: shard, in: owners)
            for r in ranges {
                for s in r {
                    #expect(Int(owners[s]) == shard)
                    #expect(!covered[s])
                    covered[s] = true
                }
            }
            for (a, b) in zip(ranges, ranges.dropFirst()) { #expect(a.upperBound + 1 < b.lowerBound) }
        }
        #expect(covered.allSatisfy { $0 })
    }
}
