import KVStore
import TOMLKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The `kvserver` configuration file: TOML, one top-level key per setting, named exactly as
/// the flags are (``ServerSetting/all``):
///
/// ```toml
/// dir = "/var/lib/shale"
/// port = 6380
/// requirepass = "s3cret"
/// protected-mode = true            # or "yes"
/// proto-max-bulk-len = "512mb"     # or 536870912
/// client-output-buffer-limit = "normal 1gb 16mb 60"
/// latency-tracking-info-percentiles = [50, 95, 99, 99.9]
/// ```
///
/// Integers, strings, booleans (`true`/`false`, the same as `yes`/`no`), floats and arrays
/// of numbers are accepted where the setting's text form would be (an array is its
/// elements separated by spaces). Tables, dates and unknown keys are errors. Flags given
/// on the command line override the file.
public enum ConfigFile {
    /// Reads the file at `path` and applies every key to `config`.
    ///
    /// - Throws: ``ConfigFileError`` naming the file and, for a bad key or value, the setting.
    public static func load(path: String, into config: inout ServerConfig) throws(ConfigFileError) {
        let text = try read(path)
        try apply(toml: text, file: path, into: &config)
        config.configFile = path
    }

    /// Applies the TOML document `toml` to `config`; `file` names it in errors.
    ///
    /// - Throws: ``ConfigFileError``.
    public static func apply(toml: String, file: String, into config: inout ServerConfig) throws(ConfigFileError) {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: toml)
        } catch let e as TOMLParseError {
            throw ConfigFileError("\(file): line \(e.source.begin.line), column \(e.source.begin.column): \(e.description)")
        } catch {
            throw ConfigFileError("\(file): \(error)")
        }
        // Apply in file order would depend on the library's ordering; sort for determinism.
        for (key, value) in table.sorted(by: { $0.0 < $1.0 }) {
            guard let setting = ServerSetting.all.first(where: { $0.name == key }) else {
                let hint = ServerSetting.named(key).map { " (did you mean '\($0.name)'?)" } ?? ""
                if key == "config" {
                    throw ConfigFileError("\(file): 'config' can only be given on the command line")
                }
                throw ConfigFileError("\(file): unknown setting '\(key)'\(hint)")
            }
            let text: String
            do throws(SettingError) {
                text = try self.text(of: value, setting: key)
            } catch {
                throw ConfigFileError("\(file): \(error)")
            }
            do throws(SettingError) {
                try setting.parse(text, &config)
            } catch {
                throw ConfigFileError("\(file): \(error) (got \(shown(value)))")
            }
        }
    }

    /// The setting text of a TOML value.
    static func text(of value: any TOMLValueConvertible, setting: String) throws(SettingError) -> String {
        switch value.type {
        case .string: return value.string ?? ""
        case .int: return String(value.int ?? 0)
        case .bool: return value.bool == true ? "yes" : "no"
        case .double:
            let d = value.double ?? 0
            return d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d)
        case .array:
            var parts: [String] = []
            for element in value.array ?? [] {
                switch element.type {
                case .string, .int, .double, .bool: parts.append(try text(of: element, setting: setting))
                default: throw SettingError(setting: setting, reason: "array elements must be numbers or strings")
                }
            }
            return parts.joined(separator: " ")
        default:
            throw SettingError(setting: setting, reason: "value must be a string, number, boolean or array, not a \(value.type)")
        }
    }

    static func shown(_ value: any TOMLValueConvertible) -> String {
        switch value.type {
        case .string: return "'\(value.string ?? "")'"
        default: return "\(value)"
        }
    }

    static func read(_ path: String) throws(ConfigFileError) -> String {
        guard let f = fopen(path, "r") else {
            throw ConfigFileError("\(path): cannot read the configuration file: \(String(cString: strerror(errno)))")
        }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&chunk, 1, chunk.count, f)
            if n > 0 { bytes.append(contentsOf: chunk[0..<n]) }
            if n < chunk.count {
                if ferror(f) != 0 {
                    throw ConfigFileError("\(path): cannot read the configuration file: \(String(cString: strerror(errno)))")
                }
                break
            }
            if bytes.count > 16 << 20 { throw ConfigFileError("\(path): the configuration file is larger than 16 MiB") }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ConfigFileError("\(path): the configuration file is not UTF-8 text")
        }
        return text
    }
}

/// A configuration file that cannot be used; the message names the file, and the setting
/// when one is at fault.
public struct ConfigFileError: Error, Sendable, CustomStringConvertible {
    /// What is wrong.
    public let description: String

    init(_ description: String) { self.description = description }
}
