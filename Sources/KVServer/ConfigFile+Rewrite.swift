import KVStore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension ConfigFile {
    /// `CONFIG REWRITE`: writes `config` (the effective settings) back to the TOML file at
    /// `path`, changing as little as Redis does: a setting the file already names keeps its
    /// line, with the new value; a setting it does not name is appended when its value differs
    /// from the default; comments, blank lines and the order stay. Values are written as
    /// TOML strings (every setting reads its text form). The new file is written beside the
    /// old one, fsynced and renamed over it, and the directory is fsynced, so a crash leaves
    /// the old file or the new one.
    ///
    /// - Throws: ``ConfigFileError`` naming the file and the failed step.
    public static func rewrite(path: String, with config: ServerConfig) throws(ConfigFileError) {
        var lines: [String] = []
        if access(path, F_OK) == 0 {
            lines = try read(path).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            if lines.last == "" { lines.removeLast() }
        }
        let defaults = ServerConfig()
        var written = Set<String>()
        var out: [String] = []
        var i = 0
        while i < lines.count {
            let line = lines[i]
            guard let key = settingKey(of: line), let setting = ServerSetting.all.first(where: { $0.name == key }) else {
                out.append(line)
                i += 1
                continue
            }
            // A multi-line array value runs to its closing bracket.
            var end = i
            if let eq = line.firstIndex(of: "="), line[line.index(after: eq)...].trimmingSpaces.hasPrefix("["),
               !line.contains("]") {
                while end + 1 < lines.count && !lines[end].contains("]") { end += 1 }
            }
            if written.insert(key).inserted {
                out.append("\(key) = \(literal(setting.render(config)))")
            }
            i = end + 1
        }
        var appended = false
        for setting in ServerSetting.all where !written.contains(setting.name) {
            let value = setting.render(config)
            guard value != setting.render(defaults) else { continue }
            if !appended {
                out.append("")
                out.append("# Written by CONFIG REWRITE.")
                appended = true
            }
            out.append("\(setting.name) = \(literal(value))")
        }
        try replace(path, with: out.joined(separator: "\n") + "\n")
    }

    /// The top-level key a line sets (`name = ...`, also a quoted name), or nil.
    static func settingKey(of line: String) -> String? {
        let t = line.trimmingSpaces
        guard !t.isEmpty, !t.hasPrefix("#"), !t.hasPrefix("["), let eq = t.firstIndex(of: "=") else { return nil }
        var key = t[..<eq].trimmingSpaces
        if key.count >= 2, let q = key.first, q == "\"" || q == "'", key.last == q {
            key = String(key.dropFirst().dropLast())
        }
        return key
    }

    /// `text` as a TOML basic string.
    static func literal(_ text: String) -> String {
        var s = "\""
        for ch in text.unicodeScalars {
            switch ch {
            case "\"": s += "\\\""
            case "\\": s += "\\\\"
            case "\n": s += "\\n"
            case "\r": s += "\\r"
            case "\t": s += "\\t"
            default:
                if ch.value < 0x20 || ch.value == 0x7F {
                    s += "\\u" + String(repeating: "0", count: 4 - String(ch.value, radix: 16).count) + String(ch.value, radix: 16)
                } else {
                    s.unicodeScalars.append(ch)
                }
            }
        }
        return s + "\""
    }

    /// Writes `text` to `path` atomically: a temporary file beside it, fsynced, renamed over
    /// it, then the directory fsynced.
    static func replace(_ path: String, with text: String) throws(ConfigFileError) {
        let tmp = path + ".rewrite.tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw ConfigFileError("\(tmp): cannot create: \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, bytes.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let e = String(cString: strerror(errno))
                close(fd)
                unlink(tmp)
                throw ConfigFileError("\(tmp): cannot write: \(e)")
            }
            done += n
        }
        guard fsync(fd) == 0 else {
            let e = String(cString: strerror(errno))
            close(fd)
            unlink(tmp)
            throw ConfigFileError("\(tmp): cannot fsync: \(e)")
        }
        close(fd)
        guard rename(tmp, path) == 0 else {
            let e = String(cString: strerror(errno))
            unlink(tmp)
            throw ConfigFileError("\(path): cannot replace: \(e)")
        }
        let dir = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let dfd = open(dir.isEmpty ? "/" : dir, O_RDONLY)
        if dfd >= 0 {
            _ = fsync(dfd)
            close(dfd)
        }
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs.
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s.removeLast() }
        return String(s)
    }
}
