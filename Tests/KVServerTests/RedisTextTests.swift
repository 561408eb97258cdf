@testable import KVServer
import Testing

@Suite("Redis text")
struct RedisTextTests {
    @Test func integersFollowString2ll() {
        let ok: [(String, Int64)] = [("0", 0), ("1", 1), ("-1", -1), ("9223372036854775807", .max), ("-9223372036854775808", .min)]
        for (s, v) in ok { #expect(RedisText.parseInt(Array(s.utf8)) == v, "\(s)") }
        for s in ["", "-", "+1", "01", "-0", " 1", "1 ", "9223372036854775808", "-9223372036854775809", "1.0", "abc", "123456789012345678901"] {
            #expect(RedisText.parseInt(Array(s.utf8)) == nil, "\(s)")
        }
    }

    @Test func longDoublesFormatLikeRedis() {
        func f(_ s: String) -> String { RedisText.formatHuman(RedisText.parseLongDouble(Array(s.utf8))!) }
        #expect(f("10.5") == "10.5")
        #expect(f("3.0e3") == "3000")
        #expect(f("-0") == "0")
        #expect(f("5") == "5")
        let sum = RedisText.parseLongDouble(Array("10.5".utf8))! + RedisText.parseLongDouble(Array("0.1".utf8))!
        #expect(RedisText.formatHuman(sum) == "10.6")
        #expect(RedisText.parseLongDouble(Array(" 1".utf8)) == nil)
        #expect(RedisText.parseLongDouble(Array("1x".utf8)) == nil)
        #expect(RedisText.parseLongDouble(Array("nan".utf8)) == nil)
        #expect(RedisText.parseLongDouble(Array("".utf8)) == nil)
    }

    @Test func globMatchesLikeStringmatchlen() {
        func m(_ p: String, _ s: String, nocase: Bool = false) -> Bool { Glob.match(Array(p.utf8), Array(s.utf8), noCase: nocase) }
        #expect(m("*", "anything"))
        #expect(m("h?llo", "hello"))
        #expect(!m("h?llo", "hllo"))
        #expect(m("h*llo", "heeeello"))
        #expect(m("h[ae]llo", "hallo"))
        #expect(!m("h[ae]llo", "hillo"))
        #expect(m("h[^e]llo", "hallo"))
        #expect(!m("h[^e]llo", "hello"))
        #expect(m("h[a-b]llo", "hbllo"))
        #expect(m("h[b-a]llo", "hallo"))
        #expect(m("h\\*llo", "h*llo"))
        #expect(!m("h\\*llo", "hello"))
        #expect(m("a*b*c", "axxbyyc"))
        #expect(!m("a*b*c", "axxbyy"))
        #expect(m("HELLO", "hello", nocase: true))
        #expect(m("[abc", "a"))
        #expect(m("*a", "ba"))
        #expect(!m("*", ""))  // Redis: KEYS * special-cases this
        #expect(Glob.literalPrefix(Array("user:*".utf8)) == Array("user:".utf8))
    }
}
