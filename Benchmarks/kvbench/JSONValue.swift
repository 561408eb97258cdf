import Foundation

/// A JSON document with ordered object members, for `--json` and for engine statistics
/// (which the human-readable summary prints from the same value).
enum JSONValue: Sendable {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    /// `value` as a number, or null when absent.
    static func optional(_ value: Int?) -> JSONValue { value.map { .integer($0) } ?? .null }

    /// Compact one-line rendering for the text summary.
    var inline: String {
        switch self {
        case .null: return "-"
        case .bool(let b): return b ? "true" : "false"
        case .integer(let i): return String(i)
        case .number(let d): return String(format: "%.3f", d)
        case .string(let s): return s
        case .array(let a): return "[" + a.map(\.inline).joined(separator: ", ") + "]"
        case .object(let o): return "{" + o.map { "\($0.0): \($0.1.inline)" }.joined(separator: ", ") + "}"
        }
    }

    /// Pretty-printed JSON text.
    func rendered(indent: Int = 0) -> String {
        let pad = String(repeating: "  ", count: indent + 1)
        let close = String(repeating: "  ", count: indent)
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .integer(let i): return String(i)
        case .number(let d): return d.isFinite ? String(format: "%.6g", d) : "null"
        case .string(let s): return Self.quote(s)
        case .array(let a):
            if a.isEmpty { return "[]" }
            if a.allSatisfy({ if case .integer = $0 { return true } else { return false } }) {
                return "[" + a.map { $0.rendered() }.joined(separator: ", ") + "]"
            }
            return "[\n" + a.map { pad + $0.rendered(indent: indent + 1) }.joined(separator: ",\n") + "\n\(close)]"
        case .object(let o):
            if o.isEmpty { return "{}" }
            return "{\n"
                + o.map { pad + Self.quote($0.0) + ": " + $0.1.rendered(indent: indent + 1) }.joined(separator: ",\n")
                + "\n\(close)}"
        }
    }

    private static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}
