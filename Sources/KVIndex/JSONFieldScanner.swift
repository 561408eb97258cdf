/// A dotted path into nested JSON objects (`"dims.w"`), split into its member names.
///
/// Invariant: at least one segment, and no segment is empty.
struct JSONFieldPath: Sendable, Hashable {
    /// The member names, outermost first, as UTF-8 bytes.
    let segments: [[UInt8]]
    /// The member names concatenated, and where each ends in it (what the scanner reads).
    let flat: [UInt8]
    let ends: [Int]

    /// Splits `dotted` at every `.`; nil when it is empty or has an empty segment.
    init?(_ dotted: String) {
        var segments: [[UInt8]] = [[]]
        for b in dotted.utf8 {
            if b == UInt8(ascii: ".") { segments.append([]) } else { segments[segments.count - 1].append(b) }
        }
        if segments.contains(where: \.isEmpty) { return nil }
        self.segments = segments
        flat = segments.flatMap { $0 }
        var ends: [Int] = []
        for s in segments { ends.append((ends.last ?? 0) + s.count) }
        self.ends = ends
    }
}

/// The value found at a path: the two kinds an index stores, or anything else.
enum JSONScalar: Equatable, Sendable {
    /// A JSON string, escapes decoded, as UTF-8 bytes.
    case string([UInt8])
    /// A JSON number (±infinity when its magnitude overflows a double).
    case number(Double)
    /// `true`, `false`, `null`, an array or an object.
    case other
}

/// What a scan of a document found.
enum JSONScanResult: Equatable, Sendable {
    /// The bytes are not one well-formed JSON text (RFC 8259).
    case invalid
    /// The document is well-formed but has no value at the path (it is not an object, a
    /// member is missing, or the path runs through a value that is not an object).
    case absent
    /// The value at the path.
    case found(JSONScalar)
}

/// A targeted JSON scanner: validates a whole document and extracts the value at one dotted
/// path, without building a tree and without allocating except for the string it returns.
///
/// Validation is strict RFC 8259: exactly one value surrounded by optional whitespace
/// (space, tab, LF, CR); strings with no unescaped control characters, only the escapes
/// `\" \\ \/ \b \f \n \r \t \uXXXX`, surrogate escapes only as high-low pairs, and valid UTF-8
/// (no overlong forms, no encoded surrogates, nothing above U+10FFFF); numbers as
/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`; no trailing commas, comments or
/// byte-order mark; nesting at most ``maxDepth`` containers deep.
///
/// Member names are compared after their escapes are decoded (`"\u0063at"` is `cat`). When an
/// object repeats a member name, the last occurrence wins, as in JavaScript's `JSON.parse` and
/// Foundation's `JSONSerialization`.
///
/// Numbers are converted with correct rounding: exactly (Clinger's fast path) when the
/// significand has at most 15 digits and the decimal exponent is within ±22, otherwise by the
/// standard library's `strtod`-based parser.
enum JSONFieldScanner {
    /// Deepest container nesting accepted.
    static let maxDepth = 512

    /// Scans `document` for the value at `path`.
    static func scan(_ document: UnsafeRawBufferPointer, path: JSONFieldPath) -> JSONScanResult {
        guard let base = document.baseAddress, document.count > 0 else { return .invalid }
        return path.flat.withUnsafeBufferPointer { flat in
            path.ends.withUnsafeBufferPointer { ends in
                var parser = Parser(p: base.assumingMemoryBound(to: UInt8.self), n: document.count, flat: flat, ends: ends)
                return parser.document()
            }
        }
    }

    /// Scans a document held in an array.
    static func scan(_ document: [UInt8], path: JSONFieldPath) -> JSONScanResult {
        document.withUnsafeBytes { scan($0, path: path) }
    }

    /// The parser state: the document and the read position.
    struct Parser {
        let p: UnsafePointer<UInt8>
        let n: Int
        /// The path's member names, concatenated, and their end offsets (see JSONFieldPath).
        let flat: UnsafeBufferPointer<UInt8>
        let ends: UnsafeBufferPointer<Int>
        var i = 0

        init(p: UnsafePointer<UInt8>, n: Int, flat: UnsafeBufferPointer<UInt8>, ends: UnsafeBufferPointer<Int>) {
            self.p = p
            self.n = n
            self.flat = flat
            self.ends = ends
        }

        mutating func document() -> JSONScanResult {
            skipWhitespace()
            guard i < n else { return .invalid }
            var result = JSONScanResult.absent
            if p[i] == UInt8(ascii: "{") {
                guard let r = object(depth: 1, level: 0) else { return .invalid }
                result = r
            } else {
                guard skipValue(depth: 0) else { return .invalid }
            }
            skipWhitespace()
            return i == n ? result : .invalid
        }

        @inline(__always)
        mutating func skipWhitespace() {
            while i < n {
                let c = p[i]
                guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 else { return }
                i += 1
            }
        }

        /// Parses the object at `i` (which is `{`), looking for `path[level]`. Returns what was
        /// found below it (absent when the member is missing), or nil when malformed.
        mutating func object(depth: Int, level: Int) -> JSONScanResult? {
            guard depth <= JSONFieldScanner.maxDepth else { return nil }
            i += 1
            skipWhitespace()
            var result = JSONScanResult.absent
            guard i < n else { return nil }
            if p[i] == UInt8(ascii: "}") {
                i += 1
                return result
            }
            let last = level == ends.count - 1
            let nameStart = level == 0 ? 0 : ends[level - 1]
            let name = UnsafeBufferPointer(rebasing: flat[nameStart..<ends[level]])
            while true {
                guard i < n, p[i] == UInt8(ascii: "\"") else { return nil }
                guard let matches = memberName(equals: name) else { return nil }
                skipWhitespace()
                guard i < n, p[i] == UInt8(ascii: ":") else { return nil }
                i += 1
                skipWhitespace()
                guard i < n else { return nil }
                if !matches {
                    guard skipValue(depth: depth) else { return nil }
                } else if last {
                    guard let v = capture(depth: depth) else { return nil }
                    result = .found(v)
                } else if p[i] == UInt8(ascii: "{") {
                    guard let r = object(depth: depth + 1, level: level + 1) else { return nil }
                    result = r
                } else {
                    guard skipValue(depth: depth) else { return nil }
                    result = .absent
                }
                skipWhitespace()
                guard i < n else { return nil }
                if p[i] == UInt8(ascii: ",") {
                    i += 1
                    skipWhitespace()
                    continue
                }
                guard p[i] == UInt8(ascii: "}") else { return nil }
                i += 1
                return result
            }
        }

        /// Parses the value at `i` (not whitespace) and returns it as a scalar.
        mutating func capture(depth: Int) -> JSONScalar? {
            let c = p[i]
            if c == UInt8(ascii: "\"") {
                guard let s = decodeString() else { return nil }
                return .string(s)
            }
            if c == UInt8(ascii: "-") || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) {
                return number()
            }
            return skipValue(depth: depth) ? .other : nil
        }

        /// Validates and skips the value at `i` (not whitespace).
        mutating func skipValue(depth: Int) -> Bool {
            guard i < n else { return false }
            switch p[i] {
            case UInt8(ascii: "\""):
                return skipString() != nil
            case UInt8(ascii: "{"):
                guard depth < JSONFieldScanner.maxDepth else { return false }
                i += 1
                skipWhitespace()
                guard i < n else { return false }
                if p[i] == UInt8(ascii: "}") {
                    i += 1
                    return true
                }
                while true {
                    guard i < n, p[i] == UInt8(ascii: "\""), skipString() != nil else { return false }
                    skipWhitespace()
                    guard i < n, p[i] == UInt8(ascii: ":") else { return false }
                    i += 1
                    skipWhitespace()
                    guard skipValue(depth: depth + 1) else { return false }
                    skipWhitespace()
                    guard i < n else { return false }
                    if p[i] == UInt8(ascii: ",") {
                        i += 1
                        skipWhitespace()
                        continue
                    }
                    guard p[i] == UInt8(ascii: "}") else { return false }
                    i += 1
                    return true
                }
            case UInt8(ascii: "["):
                guard depth < JSONFieldScanner.maxDepth else { return false }
                i += 1
                skipWhitespace()
                guard i < n else { return false }
                if p[i] == UInt8(ascii: "]") {
                    i += 1
                    return true
                }
                while true {
                    guard skipValue(depth: depth + 1) else { return false }
                    skipWhitespace()
                    guard i < n else { return false }
                    if p[i] == UInt8(ascii: ",") {
                        i += 1
                        skipWhitespace()
                        continue
                    }
                    guard p[i] == UInt8(ascii: "]") else { return false }
                    i += 1
                    return true
                }
            case UInt8(ascii: "t"):
                return literal("true")
            case UInt8(ascii: "f"):
                return literal("false")
            case UInt8(ascii: "n"):
                return literal("null")
            default:
                return skipNumber() != nil
            }
        }

        mutating func literal(_ word: StaticString) -> Bool {
            let len = word.utf8CodeUnitCount
            guard n - i >= len else { return false }
            let w = word.utf8Start
            for k in 0..<len where p[i + k] != w[k] { return false }
            i += len
            return true
        }

        // MARK: strings

        /// Validates the string at `i` (which is `"`) and moves past it. Returns whether it
        /// contained escapes, or nil when malformed.
        mutating func skipString() -> Bool? {
            i += 1
            var escaped = false
            while i < n {
                let c = p[i]
                if c == UInt8(ascii: "\"") {
                    i += 1
                    return escaped
                }
                if c == UInt8(ascii: "\\") {
                    escaped = true
                    var none: [UInt8] = []
                    guard escape(&none, decoding: false) else { return nil }
                } else if c < 0x20 {
                    return nil
                } else if c < 0x80 {
                    i += 1
                } else {
                    guard utf8Sequence() else { return nil }
                }
            }
            return nil
        }

        /// Parses a member name at `i` (which is `"`) and tells whether it equals `name`.
        mutating func memberName(equals name: UnsafeBufferPointer<UInt8>) -> Bool? {
            let start = i + 1
            guard let escaped = skipString() else { return nil }
            let length = i - 1 - start
            if !escaped {
                guard length == name.count else { return false }
                for k in 0..<length where p[start + k] != name[k] { return false }
                return true
            }
            let end = i
            i = start - 1
            let decoded = decodeString()
            i = end
            return decoded.map { $0.elementsEqual(name) }
        }

        /// Decodes the string at `i` (which is `"`), escapes resolved, and moves past it.
        mutating func decodeString() -> [UInt8]? {
            let start = i
            guard let escaped = skipString() else { return nil }
            if !escaped { return Array(UnsafeBufferPointer(start: p + start + 1, count: i - start - 2)) }
            i = start + 1
            var out: [UInt8] = []
            var run = i
            while i < n {
                let c = p[i]
                if c == UInt8(ascii: "\"") {
                    out.append(contentsOf: UnsafeBufferPointer(start: p + run, count: i - run))
                    i += 1
                    return out
                }
                if c == UInt8(ascii: "\\") {
                    out.append(contentsOf: UnsafeBufferPointer(start: p + run, count: i - run))
                    guard escape(&out, decoding: true) else { return nil }
                    run = i
                } else if c < 0x20 {
                    return nil
                } else if c < 0x80 {
                    i += 1
                } else {
                    guard utf8Sequence() else { return nil }
                }
            }
            return nil
        }

        /// Validates the escape at `i` (which is `\`), moves past it, and when `decoding`
        /// appends the bytes it stands for to `out`.
        mutating func escape(_ out: inout [UInt8], decoding: Bool) -> Bool {
            guard i + 1 < n else { return false }
            let e = p[i + 1]
            let byte: UInt8
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): byte = e
            case UInt8(ascii: "b"): byte = 0x08
            case UInt8(ascii: "f"): byte = 0x0C
            case UInt8(ascii: "n"): byte = 0x0A
            case UInt8(ascii: "r"): byte = 0x0D
            case UInt8(ascii: "t"): byte = 0x09
            case UInt8(ascii: "u"):
                guard var scalar = hex4(at: i + 2) else { return false }
                i += 6
                if scalar >= 0xD800 && scalar <= 0xDBFF {
                    guard i + 1 < n, p[i] == UInt8(ascii: "\\"), p[i + 1] == UInt8(ascii: "u"),
                        let low = hex4(at: i + 2), low >= 0xDC00 && low <= 0xDFFF
                    else { return false }
                    i += 6
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                    return false
                }
                if decoding { appendUTF8(scalar, to: &out) }
                return true
            default:
                return false
            }
            i += 2
            if decoding { out.append(byte) }
            return true
        }

        func hex4(at k: Int) -> UInt32? {
            guard k + 4 <= n else { return nil }
            var v: UInt32 = 0
            for j in k..<(k + 4) {
                let c = p[j]
                let d: UInt8
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
                default: return nil
                }
                v = v << 4 | UInt32(d)
            }
            return v
        }

        func appendUTF8(_ s: UInt32, to out: inout [UInt8]) {
            switch s {
            case ..<0x80:
                out.append(UInt8(s))
            case ..<0x800:
                out.append(UInt8(0xC0 | (s >> 6)))
                out.append(UInt8(0x80 | (s & 0x3F)))
            case ..<0x10000:
                out.append(UInt8(0xE0 | (s >> 12)))
                out.append(UInt8(0x80 | ((s >> 6) & 0x3F)))
                out.append(UInt8(0x80 | (s & 0x3F)))
            default:
                out.append(UInt8(0xF0 | (s >> 18)))
                out.append(UInt8(0x80 | ((s >> 12) & 0x3F)))
                out.append(UInt8(0x80 | ((s >> 6) & 0x3F)))
                out.append(UInt8(0x80 | (s & 0x3F)))
            }
        }

        /// Validates the multi-byte UTF-8 sequence at `i` and moves past it.
        mutating func utf8Sequence() -> Bool {
            let c = p[i]
            var need: Int
            var lo: UInt8 = 0x80
            var hi: UInt8 = 0xBF
            switch c {
            case 0xC2...0xDF: need = 1
            case 0xE0: need = 2; lo = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: need = 2
            case 0xED: need = 2; hi = 0x9F
            case 0xF0: need = 3; lo = 0x90
            case 0xF1...0xF3: need = 3
            case 0xF4: need = 3; hi = 0x8F
            default: return false
            }
            guard i + need < n else { return false }
            let first = p[i + 1]
            guard first >= lo && first <= hi else { return false }
            var k = 2
            while k <= need {
                guard p[i + k] & 0xC0 == 0x80 else { return false }
                k += 1
            }
            i += need + 1
            return true
        }

        // MARK: numbers

        @inline(__always)
        func isDigit(_ k: Int) -> Bool { k < n && p[k] >= UInt8(ascii: "0") && p[k] <= UInt8(ascii: "9") }

        /// Validates the number at `i` and moves past it. Returns its significant digits (at
        /// most 19, leading zeros dropped), their count, whether more were dropped, and the
        /// decimal exponent to apply to them; nil when malformed.
        mutating func skipNumber() -> (mantissa: UInt64, digits: Int, truncated: Bool, exponent: Int)? {
            var mantissa: UInt64 = 0
            var digits = 0
            var truncated = false
            var exponent = 0
            if i < n && p[i] == UInt8(ascii: "-") { i += 1 }
            guard isDigit(i) else { return nil }
            if p[i] == UInt8(ascii: "0") {
                i += 1
            } else {
                while isDigit(i) {
                    if digits < 19 {
                        mantissa = mantissa &* 10 &+ UInt64(p[i] - UInt8(ascii: "0"))
                        digits += 1
                    } else {
                        truncated = true
                        exponent += 1
                    }
                    i += 1
                }
            }
            if i < n && p[i] == UInt8(ascii: ".") {
                i += 1
                guard isDigit(i) else { return nil }
                while isDigit(i) {
                    let d = p[i] - UInt8(ascii: "0")
                    if digits == 0 && d == 0 {
                        exponent -= 1
                    } else if digits < 19 {
                        mantissa = mantissa &* 10 &+ UInt64(d)
                        digits += 1
                        exponent -= 1
                    } else {
                        truncated = true
                    }
                    i += 1
                }
            }
            if i < n && (p[i] == UInt8(ascii: "e") || p[i] == UInt8(ascii: "E")) {
                i += 1
                var negative = false
                if i < n && (p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-")) {
                    negative = p[i] == UInt8(ascii: "-")
                    i += 1
                }
                guard isDigit(i) else { return nil }
                var e = 0
                while isDigit(i) {
                    if e < 100_000 { e = e * 10 + Int(p[i] - UInt8(ascii: "0")) }
                    i += 1
                }
                exponent += negative ? -e : e
            }
            return (mantissa, digits, truncated, exponent)
        }

        static let powersOfTen: [Double] = [
            1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
            1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
        ]

        /// Parses the number at `i` into a correctly rounded double.
        mutating func number() -> JSONScalar? {
            let start = i
            guard let (mantissa, digits, truncated, exponent) = skipNumber() else { return nil }
            let negative = p[start] == UInt8(ascii: "-")
            if digits == 0 { return .number(negative ? -0.0 : 0.0) }
            if !truncated && digits <= 15 && exponent >= -22 && exponent <= 22 {
                // Both the significand and the power of ten are exact doubles, so one
                // multiplication or division rounds correctly.
                var d = Double(mantissa)
                d = exponent >= 0 ? d * Self.powersOfTen[exponent] : d / Self.powersOfTen[-exponent]
                return .number(negative ? -d : d)
            }
            let text = String(decoding: UnsafeBufferPointer(start: p + start, count: i - start), as: UTF8.self)
            guard let d = Double(text) else { return nil }
            return .number(d)
        }
    }
}
