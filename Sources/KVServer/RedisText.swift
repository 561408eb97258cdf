#if canImport(Glibc)
import KVStore
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Redis's conversions between bytes and numbers, with its strictness rules.
enum RedisText {
    /// Parses a signed 64-bit integer the way Redis's `string2ll` does: optional `-`, digits,
    /// no `+`, no leading zeros, no spaces, no overflow; at most 20 bytes.
    static func parseInt(_ s: [UInt8]) -> Int64? {
        guard !s.isEmpty, s.count <= 20 else { return nil }
        if s.count == 1 && s[0] == UInt8(ascii: "0") { return 0 }
        var i = 0
        var negative = false
        if s[0] == UInt8(ascii: "-") {
            negative = true
            i = 1
            guard s.count > 1 else { return nil }
        }
        // First digit 1-9.
        guard s[i] >= UInt8(ascii: "1") && s[i] <= UInt8(ascii: "9") else { return nil }
        var v: UInt64 = 0
        while i < s.count {
            let c = s[i]
            guard c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") else { return nil }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(c - UInt8(ascii: "0")))
            if o1 || o2 { return nil }
            v = a
            i += 1
        }
        if negative {
            if v > UInt64(Int64.max) + 1 { return nil }
            return v == UInt64(Int64.max) + 1 ? Int64.min : -Int64(v)
        }
        if v > UInt64(Int64.max) { return nil }
        return Int64(v)
    }

    /// Parses an integer argument or throws Redis's "not an integer" error.
    static func int(_ s: [UInt8]) throws(CommandError) -> Int64 {
        guard let v = parseInt(s) else { throw .notInteger }
        return v
    }

    /// The decimal text of `v`.
    @inline(__always)
    static func bytes(_ v: Int64) -> [UInt8] { Array(String(v).utf8) }

    #if arch(x86_64) || arch(i386)
    typealias LongDouble = Float80
    #else
    typealias LongDouble = Double
    #endif

    /// Parses a long double the way Redis's `string2ld` does: `strtold` over the whole
    /// string, no leading space, not NaN; at most 5 KiB.
    static func parseLongDouble(_ s: [UInt8]) -> LongDouble? {
        guard !s.isEmpty, s.count <= 5 * 1024 else { return nil }
        if isspace(Int32(s[0])) != 0 { return nil }
        var z = s
        z.append(0)
        return z.withUnsafeBufferPointer { p -> LongDouble? in
            let start = UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: CChar.self)
            var end: UnsafeMutablePointer<CChar>?
            errno = 0
            #if arch(x86_64) || arch(i386)
            let v = strtold(start, &end)
            #else
            let v = strtod(start, &end)
            #endif
            guard let end, UnsafeRawPointer(end) == UnsafeRawPointer(start + s.count) else { return nil }
            if v.isNaN { return nil }
            if errno == ERANGE && (v.isInfinite || v == 0) { return nil }
            return v
        }
    }

    /// Parses a score bound the way Redis's `zslParseRange` does: `strtod` must consume every
    /// byte (so the empty string is 0 and leading spaces pass), NaN is refused, overflow is
    /// the infinity it rounds to.
    static func parseRangeDouble(_ s: [UInt8]) -> Double? {
        guard s.count <= 5 * 1024, !s.contains(0) else { return nil }
        var z = s
        z.append(0)
        return z.withUnsafeBufferPointer { p -> Double? in
            let start = UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: CChar.self)
            var end: UnsafeMutablePointer<CChar>?
            let v = strtod(start, &end)
            guard let end, UnsafeRawPointer(end) == UnsafeRawPointer(start + s.count), !v.isNaN else { return nil }
            return v
        }
    }

    /// Parses a double the way Redis's `string2d` (via `getDoubleFromObject`) does.
    static func parseDouble(_ s: [UInt8]) -> Double? {
        guard !s.isEmpty, s.count <= 5 * 1024 else { return nil }
        if isspace(Int32(s[0])) != 0 { return nil }
        var z = s
        z.append(0)
        return z.withUnsafeBufferPointer { p -> Double? in
            let start = UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: CChar.self)
            var end: UnsafeMutablePointer<CChar>?
            errno = 0
            let v = strtod(start, &end)
            guard let end, UnsafeRawPointer(end) == UnsafeRawPointer(start + s.count) else { return nil }
            if v.isNaN { return nil }
            if errno == ERANGE && (v.isInfinite || v == 0) { return nil }
            return v
        }
    }

    /// Formats a long double as Redis's `ld2string(..., LD_STR_HUMAN)` does: `%.17Lf` with
    /// trailing zeros (and a trailing dot) removed, and `-0` as `0`.
    static func formatHuman(_ v: LongDouble) -> String {
        if v.isInfinite { return v > 0 ? "inf" : "-inf" }
        var buf = [CChar](repeating: 0, count: 5 * 1024 + 64)
        #if arch(x86_64) || arch(i386)
        let n = withVaList([v]) { vsnprintf(&buf, buf.count, "%.17Lf", $0) }
        #else
        let n = withVaList([v]) { vsnprintf(&buf, buf.count, "%.17f", $0) }
        #endif
        guard n > 0 && Int(n) < buf.count else { return "0" }
        var s = String(decoding: buf.prefix(Int(n)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if s.contains(".") {
            while s.hasSuffix("0") { s.removeLast() }
            if s.hasSuffix(".") { s.removeLast() }
        }
        if s == "-0" { s = "0" }
        return s
    }

    /// Lower-cased ASCII text of a command name or option.
    static func lower(_ s: [UInt8]) -> String {
        // Command names are short: lower-case them on the stack (no intermediate array).
        if s.count <= 32 {
            return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { buffer in
                for i in 0..<s.count { buffer[i] = s[i] >= 65 && s[i] <= 90 ? s[i] | 0x20 : s[i] }
                return String(decoding: UnsafeBufferPointer(rebasing: buffer[..<s.count]), as: UTF8.self)
            }
        }
        return String(decoding: s.map { $0 >= 65 && $0 <= 90 ? $0 | 0x20 : $0 }, as: UTF8.self)
    }

    /// Whether `s` equals the ASCII word `word` (lower-case), ignoring case.
    @inline(__always)
    static func eq(_ s: [UInt8], _ word: StaticString) -> Bool {
        guard s.count == word.utf8CodeUnitCount else { return false }
        let w = word.utf8Start
        for i in 0..<s.count {
            let c = s[i] >= 65 && s[i] <= 90 ? s[i] | 0x20 : s[i]
            if c != w[i] { return false }
        }
        return true
    }
}

/// Redis's glob matching (`stringmatchlen`): `*`, `?`, `[...]` with ranges and `^`, and `\`
/// escapes.
enum Glob {
    static func match(_ pattern: [UInt8], _ string: [UInt8], noCase: Bool = false) -> Bool {
        pattern.withUnsafeBufferPointer { p in
            string.withUnsafeBufferPointer { s in
                var skipLongerMatches = false
                return matchImpl(p, 0, s, 0, noCase, &skipLongerMatches, 0)
            }
        }
    }

    private static func fold(_ c: UInt8, _ noCase: Bool) -> UInt8 {
        noCase && c >= 65 && c <= 90 ? c | 0x20 : c
    }

    private static func matchImpl(
        _ p: UnsafeBufferPointer<UInt8>, _ pi0: Int, _ s: UnsafeBufferPointer<UInt8>, _ si0: Int,
        _ noCase: Bool, _ skipLonger: inout Bool, _ nesting: Int
    ) -> Bool {
        // Protect from abusive patterns, as Redis does.
        if nesting > 1000 { return false }
        var pi = pi0
        var si = si0
        while pi < p.count && si < s.count {
            switch p[pi] {
            case UInt8(ascii: "*"):
                while pi + 1 < p.count && p[pi + 1] == UInt8(ascii: "*") { pi += 1 }
                if pi + 1 == p.count { return true }
                var k = si
                while k < s.count {
                    if matchImpl(p, pi + 1, s, k, noCase, &skipLonger, nesting + 1) { return true }
                    if skipLonger { return false }
                    k += 1
                }
                skipLonger = true
                return false
            case UInt8(ascii: "?"):
                si += 1
            case UInt8(ascii: "["):
                pi += 1
                let not = pi < p.count && p[pi] == UInt8(ascii: "^")
                if not { pi += 1 }
                var matched = false
                while true {
                    if pi < p.count && p[pi] == UInt8(ascii: "\\") && pi + 1 < p.count {
                        pi += 1
                        if p[pi] == s[si] { matched = true }
                    } else if pi >= p.count || p[pi] == UInt8(ascii: "]") {
                        break
                    } else if pi + 2 < p.count && p[pi + 1] == UInt8(ascii: "-") {
                        var start = p[pi]
                        var end = p[pi + 2]
                        let c = fold(s[si], noCase)
                        if start > end { swap(&start, &end) }
                        start = fold(start, noCase)
                        end = fold(end, noCase)
                        pi += 2
                        if c >= start && c <= end { matched = true }
                    } else {
                        if fold(p[pi], noCase) == fold(s[si], noCase) { matched = true }
                    }
                    pi += 1
                }
                if pi >= p.count { pi -= 1 }  // an unterminated class: stay on its last byte
                if not { matched = !matched }
                if !matched { return false }
                si += 1
            case UInt8(ascii: "\\"):
                if pi + 1 < p.count { pi += 1 }
                if fold(p[pi], noCase) != fold(s[si], noCase) { return false }
                si += 1
            default:
                if fold(p[pi], noCase) != fold(s[si], noCase) { return false }
                si += 1
            }
            pi += 1
            if si == s.count {
                while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
                break
            }
        }
        return pi == p.count && si == s.count
    }

    /// The literal prefix of a pattern (bytes before the first special character), used to
    /// narrow a scan.
    static func literalPrefix(_ pattern: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        for c in pattern {
            if c == UInt8(ascii: "*") || c == UInt8(ascii: "?") || c == UInt8(ascii: "[") || c == UInt8(ascii: "\\") { break }
            out.append(c)
        }
        return out
    }
}
