#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension RESPEncoder {
    /// Formats a double the way Redis 7.0's `addReplyDouble` does, the text of RESP3 doubles
    /// and of doubles sent as RESP2 bulk strings: `%.17g` (`0.1` is `0.10000000000000001`,
    /// `1e20` is `1e+20`, `-0` stays `-0`), with `inf`, `-inf` and `nan` spelled out.
    public static func formatDouble(_ value: Double) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value < 0 ? "-inf" : "inf" }
        var buf = [CChar](repeating: 0, count: 40)
        let n = withVaList([value]) { vsnprintf(&buf, buf.count, "%.17g", $0) }
        return String(decoding: buf.prefix(Int(max(0, n))).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
