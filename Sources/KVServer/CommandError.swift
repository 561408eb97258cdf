/// An error reply of a command: the full text after the `-`, starting with its code
/// (`ERR`, `WRONGTYPE`, `NOAUTH`...), worded as Redis words it.
public struct CommandError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The reply text, for example `ERR syntax error`.
    public let message: String

    /// An error with a full reply text.
    public init(_ message: String) {
        // Error replies are one line.
        self.message = String(message.map { $0 == "\r" || $0 == "\n" ? " " : $0 })
    }

    public var description: String { message }

    static let syntax = CommandError("ERR syntax error")
    static let notInteger = CommandError("ERR value is not an integer or out of range")
    static let notFloat = CommandError("ERR value is not a valid float")
    static let overflow = CommandError("ERR increment or decrement would overflow")
    static let noSuchKey = CommandError("ERR no such key")
    static let noAuth = CommandError("NOAUTH Authentication required.")
    static let wrongPass = CommandError("WRONGPASS invalid username-password pair or user is disabled.")
    static let offsetOutOfRange = CommandError("ERR offset is out of range")
    static let tooLarge = CommandError("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
    static let dbIndexOutOfRange = CommandError("ERR DB index is out of range")
    static let invalidCursor = CommandError("ERR invalid cursor")
    static let wrongType = CommandError("WRONGTYPE Operation against a key holding the wrong kind of value")

    static func wrongArity(_ name: String) -> CommandError {
        CommandError("ERR wrong number of arguments for '\(name)' command")
    }

    static func invalidExpire(_ command: String) -> CommandError {
        CommandError("ERR invalid expire time in '\(command)' command")
    }

    static func unknownSubcommand(_ sub: [UInt8], of command: String) -> CommandError {
        CommandError("ERR unknown subcommand '\(String(decoding: sub.prefix(128), as: UTF8.self))'. Try \(command.uppercased()) HELP.")
    }
}
