extension RESPEncoder {
    /// Formats a double the way Redis's `d2string` does (Redis 7.2 and later), the text
    /// of RESP3 doubles and of doubles sent as RESP2 bulk strings.
    ///
    /// - `nan`, `inf`, `-inf`; `0` and `-0` for the zeros.
    /// - Integral values within ±2^62 print as integers: `3`, `-1000000`.
    /// - Other values print the shortest digits that read back as the same double, in
    ///   the layout of Redis's `fpconv_dtoa`: plain decimals such as `3.14`, `0.000001`
    ///   or `4611686018427389000`, and otherwise exponents without padding such as
    ///   `1e-7`, `1.5e-10`, `1e+20`, `1.7976931348623157e+308`.
    public static func formatDouble(_ value: Double) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value < 0 ? "-inf" : "inf" }
        if value == 0 { return value.sign == .minus ? "-0" : "0" }
        let bound = Double(Int64.max / 2)
        if value >= -bound && value <= bound {
            let integral = Int64(value)
            if Double(integral) == value { return String(integral) }
        }
        let (digits, exponent) = shortestDigits(value.magnitude)
        return emit(digits: digits, exponent: exponent, negative: value.sign == .minus)
    }

    /// The shortest round-trip decimal digits of a positive finite `value`, without
    /// leading or trailing zeros, and `K` such that `value == digits × 10^K`.
    private static func shortestDigits(_ value: Double) -> (digits: [UInt8], exponent: Int) {
        var digits: [UInt8] = []
        var fractionDigits = 0
        var afterPoint = false
        var exponent = 0
        var exponentText: Substring = ""
        let text = value.description
        var index = text.utf8.startIndex
        while index < text.utf8.endIndex {
            let byte = text.utf8[index]
            if byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
                exponentText = text[text.utf8.index(after: index)...]
                break
            }
            if byte == UInt8(ascii: ".") {
                afterPoint = true
            } else {
                digits.append(byte)
                if afterPoint { fractionDigits += 1 }
            }
            index = text.utf8.index(after: index)
        }
        if !exponentText.isEmpty {
            if exponentText.first == "+" { exponentText = exponentText.dropFirst() }
            exponent = Int(exponentText) ?? 0
        }
        exponent -= fractionDigits
        let firstSignificant = digits.firstIndex { $0 != UInt8(ascii: "0") } ?? digits.endIndex
        digits.removeSubrange(..<firstSignificant)
        while let last = digits.last, last == UInt8(ascii: "0") {
            digits.removeLast()
            exponent += 1
        }
        return (digits, exponent)
    }

    /// `emit_digits` of Redis's `fpconv_dtoa.c`.
    private static func emit(digits: [UInt8], exponent k: Int, negative: Bool) -> String {
        let count = digits.count
        let decimalExponent = abs(k + count - 1)
        var out: [UInt8] = negative ? [UInt8(ascii: "-")] : []
        if k >= 0 && decimalExponent < count + 7 {
            out += digits
            out += repeatElement(UInt8(ascii: "0"), count: k)
        } else if k < 0 && (k > -7 || decimalExponent < 4) {
            let offset = count - abs(k)
            if offset <= 0 {
                out += [UInt8(ascii: "0"), UInt8(ascii: ".")]
                out += repeatElement(UInt8(ascii: "0"), count: -offset)
                out += digits
            } else {
                out += digits[..<offset]
                out.append(UInt8(ascii: "."))
                out += digits[offset...]
            }
        } else {
            out.append(digits[0])
            if count > 1 {
                out.append(UInt8(ascii: "."))
                out += digits[1...]
            }
            out.append(UInt8(ascii: "e"))
            out.append(k + count - 1 < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+"))
            var rest = decimalExponent
            var hundreds = 0
            if rest > 99 {
                hundreds = rest / 100
                out.append(UInt8(ascii: "0") + UInt8(hundreds))
                rest -= hundreds * 100
            }
            if rest > 9 {
                out.append(UInt8(ascii: "0") + UInt8(rest / 10))
                rest %= 10
            } else if hundreds > 0 {
                out.append(UInt8(ascii: "0"))
            }
            out.append(UInt8(ascii: "0") + UInt8(rest))
        }
        return String(decoding: out, as: UTF8.self)
    }
}
