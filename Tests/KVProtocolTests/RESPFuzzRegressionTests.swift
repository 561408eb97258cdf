import KVProtocol
import NIOCore
import Testing

/// Regressions found by the `fuzz-resp` libFuzzer target (Tests/fuzz): each input must decode
/// the same under every split of the stream.
@Suite("RESP fuzz regressions")
struct RESPFuzzRegressionTests {
    /// A header line of exactly `maxInlineLength` bytes was accepted when it arrived whole but
    /// refused as too big when the stream paused between its CR and LF: the waiting check
    /// counted the CR, which the complete-line check does not.
    @Test(arguments: [("$", "ERR Protocol error: invalid bulk length", "ERR Protocol error: too big bulk count string"),
                      ("*", "ERR Protocol error: invalid multibulk length", "ERR Protocol error: too big mbulk count string")])
    func headerLineAtTheLimitIsSplitIndependent(prefix: String, atLimit: String, overLimit: String) {
        var rng = SeededGenerator(seed: testSeed("headerLineAtTheLimitIsSplitIndependent"))
        let limits = RESPLimits(maxBulkLength: 5, maxMultibulkLength: 3, maxInlineLength: 16)
        // Inside a multibulk request for "$", at the start of a request for "*".
        let lead = prefix == "$" ? "*2\r\n" : ""
        for (digits, expected) in [(14, atLimit), (15, atLimit), (16, overLimit)] {
            let line = prefix + String(repeating: "9", count: digits)
            let input = bytes(lead + line + "\r\n")
            let (outcome, mismatches) = decodeRequestsEverySplit(input, limits: limits, rng: &rng, randomCount: 16)
            #expect(mismatches.isEmpty, "\(line.count)-byte \(prefix) line: \(mismatches)")
            #expect(outcome.error?.message == expected, "\(line.count)-byte \(prefix) line")
        }
    }

    /// The stream of the input the fuzzer found (committed to Tests/fuzz/corpus/fuzz-resp as
    /// regression-header-cr-at-limit), under the small limits its flags select.
    @Test func fuzzerInput() {
        var rng = SeededGenerator(seed: testSeed("fuzzerInput"))
        // A bulk header of 48 bytes before its CR: "$", 0xF1 bytes around "Def", "3".
        let input = Array("*0\r\n$4\r\nPING\r\n*2\r\n$".utf8) + Array(repeating: 0xF1, count: 7) + Array("Def".utf8)
            + Array(repeating: 0xF1, count: 36) + Array("3\r\nGET\r\n$1\r\nk\r\n".utf8)
        let limits = RESPLimits(maxBulkLength: 64, maxMultibulkLength: 16, maxInlineLength: 48)
        let (outcome, mismatches) = decodeRequestsEverySplit(input, limits: limits, rng: &rng, randomCount: 16)
        #expect(mismatches.isEmpty, "\(mismatches)")
        #expect(outcome.messages.map(\.byteArguments) == [[bytes("$4")], [bytes("PING")]])
        #expect(outcome.error?.message == "ERR Protocol error: invalid bulk length")
    }
}
