import KVFileSystem

/// The files of a database directory:
///
///     LOCK              advisory lock held while open
///     CURRENT           names the live manifest
///     MANIFEST-NNNNNN   version edits (record log)
///     NNNNNN.log        write-ahead log (record log of write batches)
///     NNNNNN.sst        sorted table
///     *.tmp             half-written file; removed on open
enum FileKind: Equatable {
    case log, table, manifest, current, lock, temp, warmList
}

enum FileNames {
    static func pad(_ n: UInt64) -> String {
        let s = String(n)
        return s.count >= 6 ? s : String(repeating: "0", count: 6 - s.count) + s
    }

    static func log(_ dir: String, _ n: UInt64) -> String { joinPath(dir, pad(n) + ".log") }
    static func table(_ dir: String, _ n: UInt64) -> String { joinPath(dir, pad(n) + ".sst") }
    static func manifest(_ dir: String, _ n: UInt64) -> String { joinPath(dir, "MANIFEST-" + pad(n)) }
    static func current(_ dir: String) -> String { joinPath(dir, "CURRENT") }
    static func lock(_ dir: String) -> String { joinPath(dir, "LOCK") }

    /// Parses a directory entry name into its kind and number.
    static func parse(_ name: String) -> (FileKind, UInt64)? {
        if name == "CURRENT" { return (.current, 0) }
        if name == "LOCK" { return (.lock, 0) }
        if name == "WARM" { return (.warmList, 0) }
        if name.hasSuffix(".tmp") { return (.temp, 0) }
        if name.hasPrefix("MANIFEST-"), let n = UInt64(name.dropFirst(9)) { return (.manifest, n) }
        if name.hasSuffix(".log"), let n = UInt64(name.dropLast(4)) { return (.log, n) }
        if name.hasSuffix(".sst"), let n = UInt64(name.dropLast(4)) { return (.table, n) }
        return nil
    }
}
