import Foundation
@testable import KVIndex
import KVTestSupport
import Testing

/// The targeted JSON field scanner: hand-picked cases, then random documents compared with
/// Foundation's `JSONSerialization`.
@Suite("JSON field scanner")
struct JSONFieldScannerTests {
    func scan(_ text: String, _ path: String) -> JSONScanResult {
        JSONFieldScanner.scan(Array(text.utf8), path: JSONFieldPath(path)!)
    }

    @Test func findsTopLevelAndNestedFields() {
        let doc = #"{"category":"books","price":12.5,"dims":{"w":3,"h":{"x":-1e2}},"tags":["a",{"b":1}]}"#
        #expect(scan(doc, "category") == .found(.string(Array("books".utf8))))
        #expect(scan(doc, "price") == .found(.number(12.5)))
        #expect(scan(doc, "dims.w") == .found(.number(3)))
        #expect(scan(doc, "dims.h.x") == .found(.number(-100)))
        #expect(scan(doc, "dims") == .found(.other))
        #expect(scan(doc, "tags") == .found(.other))
        #expect(scan(doc, "tags.b") == .absent)
        #expect(scan(doc, "missing") == .absent)
        #expect(scan(doc, "dims.w.z") == .absent)
        #expect(scan(doc, "category.x") == .absent)
    }

    @Test func decodesEscapes() {
        #expect(scan(#"{"a":"x\"y\\z\/\b\f\n\r\t"}"#, "a") == .found(.string(Array("x\"y\\z/\u{8}\u{c}\n\r\t".utf8))))
        #expect(scan(#"{"a":"\u00e9\u4e2d\ud83d\ude00\u0000"}"#, "a") == .found(.string(Array("é中😀\u{0}".utf8))))
        #expect(scan(#"{"\u0063at":"m"}"#, "cat") == .found(.string([UInt8(ascii: "m")])))
        #expect(scan(#"{"c\"t":1}"#, "c\"t") == .found(.number(1)))
        #expect(scan("{\"a\":\"héllo 中\"}", "a") == .found(.string(Array("héllo 中".utf8))))
    }

    @Test func lastDuplicateMemberWins() {
        #expect(scan(#"{"a":1,"a":"two"}"#, "a") == .found(.string(Array("two".utf8))))
        #expect(scan(#"{"a":{"b":1},"a":{"c":2}}"#, "a.b") == .absent)
        #expect(scan(#"{"a":{"b":1},"a":3}"#, "a.b") == .absent)
        #expect(scan(#"{"a":3,"a":{"b":1}}"#, "a.b") == .found(.number(1)))
    }

    @Test func acceptsWhitespaceEverywhere() {
        #expect(scan(" \t\r\n{ \"a\" :\n[ 1 , { } ] , \"b\"\t:\r\"v\" }\n ", "b") == .found(.string([UInt8(ascii: "v")])))
    }

    @Test func numbers() {
        let cases: [(String, Double)] = [
            ("0", 0), ("-0", -0.0), ("1", 1), ("-17", -17), ("0.5", 0.5), ("-0.001", -0.001), ("1e3", 1000),
            ("1E+3", 1000), ("25e-1", 2.5), ("123456789012345", 123456789012345), ("1234567890123456789", 1234567890123456768.0),
            ("12345678901234567890123", 12345678901234567741440.0), ("0.1", 0.1), ("3.141592653589793", 3.141592653589793),
            ("1e308", 1e308), ("2.2250738585072014e-308", 2.2250738585072014e-308), ("5e-324", .leastNonzeroMagnitude), ("1e-400", 0),
            ("9007199254740993", 9007199254740992), ("0.000000000000000000001", 1e-21), ("1.7976931348623157e308", .greatestFiniteMagnitude),
        ]
        for (text, value) in cases {
            let r = scan("{\"n\":\(text)}", "n")
            guard case .found(.number(let d)) = r else {
                Issue.record("\(text): \(r)")
                continue
            }
            #expect(d == value && d.sign == value.sign, "\(text) gave \(d)")
        }
        #expect(scan(#"{"n":1e400}"#, "n") == .found(.number(.infinity)))
        #expect(scan(#"{"n":-1e400}"#, "n") == .found(.number(-.infinity)))
    }

    @Test func rejectsMalformedDocuments() {
        let bad = [
            "", " ", "{", "}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{\"a\":1 \"b\":2}", "[1,]", "{\"a\":[1,]}", "{a:1}",
            "{'a':1}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":-}", "{\"a\":1e}", "{\"a\":+1}", "{\"a\":0x10}",
            "{\"a\":tru}", "{\"a\":nul}", "{\"a\":True}", "{\"a\":NaN}", "{\"a\":Infinity}", "{\"a\":\"x}", "{\"a\":\"\\x\"}",
            "{\"a\":\"\\u12\"}", "{\"a\":\"\\ud800\"}", "{\"a\":\"\\udc00\"}", "{\"a\":\"\\ud800\\u0041\"}", "{\"a\":\"\u{1}\"}",
            "{\"a\":\"\t\"}", "{\"a\":1} x", "{\"a\":1}{}", "\u{FEFF}{\"a\":1}", "{\"a\":1}//", "{\"a\":/*c*/1}",
        ]
        for text in bad { #expect(scan(text, "a") == .invalid, "\(text.debugDescription)") }
        let badUTF8: [[UInt8]] = [
            [0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xC0, 0x80, 0x22, 0x7D],  // overlong
            [0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xED, 0xA0, 0x80, 0x22, 0x7D],  // encoded surrogate
            [0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xF4, 0x90, 0x80, 0x80, 0x22, 0x7D],  // above U+10FFFF
            [0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xE4, 0xB8, 0x22, 0x7D],  // truncated
            [0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0x80, 0x22, 0x7D],  // lone continuation
            [0x7B, 0x22, 0x61, 0x22, 0x3A, 0x31, 0xFF, 0x7D],  // outside a string
        ]
        for doc in badUTF8 { #expect(JSONFieldScanner.scan(doc, path: JSONFieldPath("a")!) == .invalid, "\(doc)") }
    }

    @Test func valuesThatAreNotObjectsAreAbsent() {
        for text in ["1", "\"a\"", "[{\"a\":1}]", "null", "true", " [ ] "] { #expect(scan(text, "a") == .absent, "\(text)") }
    }

    @Test func nestingIsCapped() {
        let deep = String(repeating: "[", count: JSONFieldScanner.maxDepth + 1) + String(repeating: "]", count: JSONFieldScanner.maxDepth + 1)
        #expect(scan("{\"a\":1,\"b\":\(deep)}", "a") == .invalid)
        let ok = String(repeating: "[", count: JSONFieldScanner.maxDepth - 1) + String(repeating: "]", count: JSONFieldScanner.maxDepth - 1)
        #expect(scan("{\"a\":1,\"b\":\(ok)}", "a") == .found(.number(1)))
        var nested = "1"
        for _ in 0..<(JSONFieldScanner.maxDepth + 5) { nested = "{\"a\":\(nested)}" }
        #expect(scan(nested, "a") == .invalid)
    }

    @Test func pathsAndIndexValues() {
        #expect(JSONFieldPath("") == nil)
        #expect(JSONFieldPath("a..b") == nil)
        #expect(JSONFieldPath(".a") == nil)
        #expect(JSONFieldPath("a.") == nil)
        #expect(JSONFieldPath("dims.w")?.segments == [[UInt8(ascii: "d"), 0x69, 0x6D, 0x73], [0x77]])
        let s = IndexDefinition(name: "s", field: "c", type: .string)
        let n = IndexDefinition(name: "n", field: "c", type: .number)
        #expect(s.indexValue(of: Array(#"{"c":"x"}"#.utf8)) == .string([0x78]))
        #expect(s.indexValue(of: Array(#"{"c":1}"#.utf8)) == nil)
        #expect(n.indexValue(of: Array(#"{"c":-0}"#.utf8)) == .number(0))
        #expect(n.indexValue(of: Array(#"{"c":1e999}"#.utf8)) == nil)
        #expect(n.indexValue(of: Array(#"{"c":"1"}"#.utf8)) == nil)
        #expect(n.indexValue(of: Array(#"{"c":[1]}"#.utf8)) == nil)
        #expect(n.indexValue(of: Array("not json".utf8)) == nil)
        let long = String(repeating: "x", count: IndexDefinition.maxIndexedStringLength + 1)
        #expect(s.indexValue(of: Array("{\"c\":\"\(long)\"}".utf8)) == nil)
    }

    // MARK: differential against JSONSerialization

    /// A random JSON tree.
    indirect enum Node {
        case string(String)
        case number(String, Double)
        case bool(Bool)
        case null
        case array([Node])
        case object([(String, Node)])
    }

    struct Generator {
        var r: TestRandom

        mutating func string() -> String {
            let alphabet: [Character] = ["a", "b", "z", "A", "0", "9", " ", "_", "\"", "\\", "/", "\n", "\t", "\u{1}", "\u{7f}", "é", "中", "😀", "\u{0}", ":", ",", "{", "}"]
            var s = ""
            for _ in 0..<r.next(8) { s.append(alphabet[r.next(alphabet.count)]) }
            return s
        }

        mutating func key() -> String {
            let keys = ["a", "b", "c", "cat", "price", "dims", "w", "é", "k\"q", "x y", ""]
            return keys[r.next(keys.count)]
        }

        mutating func number() -> (String, Double) {
            switch r.next(6) {
            case 0:
                let n = Int(truncatingIfNeeded: r.rng.next()) % 1_000_000
                return (String(n), Double(n))
            case 1:
                let n = Int(r.next(100_000)) - 50_000
                let d = r.next(1000)
                let text = "\(n < 0 ? "-" : "")\(abs(n)).\(String(d).leftPadded(3))"
                return (text, Double(text)!)
            case 2:
                let m = r.next(10_000)
                let e = r.next(60) - 30
                let text = "\(m)e\(e)"
                return (text, Double(text)!)
            case 3:
                let text = ["0", "-0", "0.0", "-0.0e5", "1E+2", "5e-324", "1.5E-7", "-2.25e+10"][r.next(8)]
                return (text, Double(text)!)
            case 4:
                let d = Double(bitPattern: r.rng.next() & 0x7FEF_FFFF_FFFF_FFFF)
                let text = "\(r.chance(50) ? "-" : "")\(d)"
                return (text, Double(text)!)
            default:
                let n = r.next(1 << 20)
                return ("\(n).5", Double(n) + 0.5)
            }
        }

        mutating func node(depth: Int) -> Node {
            let k = r.next(depth >= 4 ? 4 : 7)
            switch k {
            case 0: return .string(string())
            case 1:
                let (t, d) = number()
                return .number(t, d)
            case 2: return .bool(r.chance(50))
            case 3: return .null
            case 4: return .array((0..<r.next(4)).map { _ in node(depth: depth + 1) })
            default: return object(depth: depth + 1)
            }
        }

        mutating func object(depth: Int) -> Node {
            .object((0..<r.next(5)).map { _ in (key(), node(depth: depth)) })
        }

        mutating func ws() -> String {
            r.chance(70) ? "" : [" ", "\n", "\t", "\r\n", "  "][r.next(5)]
        }

        mutating func render(_ s: String) -> String {
            var out = "\""
            for ch in s.unicodeScalars {
                let v = ch.value
                switch ch {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += r.chance(50) ? "\\n" : "\\u000a"
                case "\t": out += "\\t"
                default:
                    if v < 0x20 || r.chance(10) {
                        if v > 0xFFFF {
                            let u = v - 0x10000
                            out += String(format: "\\u%04x\\u%04X", 0xD800 + (u >> 10), 0xDC00 + (u & 0x3FF))
                        } else {
                            out += String(format: r.chance(50) ? "\\u%04x" : "\\u%04X", v)
                        }
                    } else if ch == "/" && r.chance(50) {
                        out += "\\/"
                    } else {
                        out.unicodeScalars.append(ch)
                    }
                }
            }
            return out + "\""
        }

        mutating func render(_ n: Node) -> String {
            switch n {
            case .string(let s): return render(s)
            case .number(let t, _): return t
            case .bool(let b): return b ? "true" : "false"
            case .null: return "null"
            case .array(let items):
                return "[" + ws() + items.map { render($0) }.map { $0 + ws() }.joined(separator: "," + ws()) + "]"
            case .object(let members):
                return "{" + ws() + members.map { render($0.0) + ws() + ":" + ws() + render($0.1) + ws() }.joined(separator: "," + ws()) + "}"
            }
        }

        /// Paths that exist in `n` (up to three deep), plus some that do not.
        mutating func paths(_ n: Node) -> [String] {
            var out: [String] = []
            func walk(_ n: Node, _ prefix: String, _ depth: Int) {
                guard case .object(let members) = n, depth < 3 else { return }
                for (k, v) in members where !k.isEmpty && !k.contains(".") {
                    let p = prefix.isEmpty ? k : prefix + "." + k
                    out.append(p)
                    walk(v, p, depth + 1)
                }
            }
            walk(n, "", 0)
            let k = key()
            out.append(k.isEmpty ? "missing" : k + ".zz")
            out.append("nope")
            return out
        }
    }

    /// What JSONSerialization finds at `path`, in the scanner's terms.
    static func foundation(_ doc: [UInt8], _ path: String) -> (JSONScanResult, String?) {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(doc), options: [.fragmentsAllowed])
        } catch {
            return (.invalid, "\(error)")
        }
        var current: Any = object
        for segment in path.split(separator: ".", omittingEmptySubsequences: false) {
            guard let dict = current as? [String: Any], let next = dict[String(segment)] else { return (.absent, nil) }
            current = next
        }
        if let s = current as? String { return (.found(.string(Array(s.utf8))), nil) }
        if let n = current as? NSNumber {
            if String(describing: type(of: n)).contains("Boolean") { return (.found(.other), nil) }
            return (.found(.number(n.doubleValue)), nil)
        }
        return (.found(.other), nil)
    }

    static func sameNumber(_ a: Double, _ b: Double) -> Bool {
        if a == b { return true }
        // Foundation converts some numbers (long significands, large exponents) through
        // Decimal and is off by a few units in the last place; the scanner rounds correctly
        // (see `numbers()`, checked against the standard library's parser).
        return abs(a - b) <= abs(b) * 1e-13
    }

    @Test func randomDocumentsAgreeWithFoundation() {
        let seed = testSeed("randomDocumentsAgreeWithFoundation")
        var g = Generator(r: TestRandom(seed: seed))
        let rounds = soakEnabled ? 50_000 : 4_000
        var compared = 0
        for round in 0..<rounds {
            let tree = g.object(depth: 0)
            let doc = Array(g.render(tree).utf8)
            for path in g.paths(tree) {
                let ours = JSONFieldScanner.scan(doc, path: JSONFieldPath(path)!)
                let (theirs, _) = Self.foundation(doc, path)
                compared += 1
                switch (ours, theirs) {
                case (.found(.number(let a)), .found(.number(let b))):
                    #expect(Self.sameNumber(a, b), "seed \(seed) round \(round) path \(path): \(a) vs \(b) in \(String(decoding: doc, as: UTF8.self))")
                default:
                    #expect(ours == theirs, "seed \(seed) round \(round) path \(path): \(ours) vs \(theirs) in \(String(decoding: doc, as: UTF8.self))")
                }
            }
        }
        #expect(compared > rounds)
    }

    @Test func mutatedDocumentsAgreeWithFoundationOnValidity() {
        let seed = testSeed("mutatedDocumentsAgreeWithFoundationOnValidity")
        var g = Generator(r: TestRandom(seed: seed))
        let alphabet = Array("{}[]\":,\\ -+.0123456789eEtrufalsn\n/u".utf8) + [0x01, 0x7F, 0xC3, 0xA9, 0xE4, 0xFF]
        let rounds = soakEnabled ? 50_000 : 4_000
        var invalid = 0
        for round in 0..<rounds {
            var doc = Array(g.render(g.object(depth: 0)).utf8)
            for _ in 0..<(1 + g.r.next(3)) {
                let at = g.r.next(doc.count + 1)
                switch g.r.next(3) {
                case 0 where at < doc.count: doc.remove(at: at)
                case 1 where at < doc.count: doc[at] = alphabet[g.r.next(alphabet.count)]
                default: doc.insert(alphabet[g.r.next(alphabet.count)], at: at)
                }
            }
            let ours = JSONFieldScanner.scan(doc, path: JSONFieldPath("a")!)
            let (theirs, error) = Self.foundation(doc, "a")
            if (ours == .invalid) == (theirs == .invalid) {
                if ours == .invalid { invalid += 1 }
                continue
            }
            // Documented leniencies of Foundation: trailing commas; and it refuses numbers that
            // overflow a double, which the scanner reads as infinities.
            let text = String(decoding: doc, as: UTF8.self)
            if theirs != .invalid, text.range(of: #",\s*[\]}]"#, options: .regularExpression) != nil { continue }
            if let error, error.contains("not representable") { continue }
            Issue.record("seed \(seed) round \(round): scanner \(ours), Foundation \(theirs) \(error ?? "") for \(text.debugDescription) \(doc)")
        }
        #expect(invalid > rounds / 4)
    }
}
