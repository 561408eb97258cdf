// libFuzzer target for the RESP decoders (KVProtocol): RESPRequestDecoder, which parses what
// clients send to kvserver, and RESPValueDecoder, which parses replies.
//
// Input layout: byte 0 = flags (bit 0: small limits; bit 1: authentication required;
// bit 2: compact the buffer after every chunk; bit 3: decode replies instead of requests),
// bytes 1...4 = chunk sizes for the split run, the rest = the byte stream.
//
// Beyond "no crash, no sanitizer report, no hang", every input is decoded three ways — whole,
// in the chunks the header names, and one byte at a time (inputs up to 512 bytes) — and the
// results (requests or values, then the error or the end) must be identical: the decoders
// promise that how the stream is split into reads does not matter. A decoder that has failed
// must keep failing with the same error.
//
// `SHALE_FUZZ_SEEDS=DIR` writes the seed corpus to DIR and exits (Tools/fuzz.sh seeds).
// Built only by Tools/fuzz.sh (SHALE_FUZZ=1 swift build -Xswiftc -sanitize=fuzzer,address).

import FuzzSupport
import KVProtocol
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

struct Run: Equatable {
    var items: [String] = []
    var error: String?
}

let smallLimits = RESPLimits(
    maxBulkLength: 64, maxMultibulkLength: 16, maxInlineLength: 48, maxAggregateLength: 16, maxNestingDepth: 4)

func describe(_ request: RESPRequest) -> String {
    request.arguments.map { "\(Array($0.readableBytesView))" }.joined(separator: ",")
}

/// Decodes `stream` fed in chunks of the given sizes (cycled); `nil` chunk sizes feed it whole.
func decode(_ stream: UnsafeRawBufferPointer, chunks: [Int]?, flags: UInt8) -> Run {
    let limits = flags & 1 != 0 ? smallLimits : RESPLimits()
    var requests = RESPRequestDecoder(limits: limits, authenticationRequired: flags & 2 != 0)
    var replies = RESPValueDecoder(limits: limits)
    let decodeReplies = flags & 8 != 0
    var buffer = ByteBufferAllocator().buffer(capacity: 0)
    var run = Run()
    var position = 0
    var chunk = 0
    while position < stream.count {
        let size = chunks.map { min(max(1, $0[chunk % $0.count]), stream.count - position) } ?? stream.count
        chunk += 1
        buffer.writeBytes(UnsafeRawBufferPointer(rebasing: stream[position..<(position + size)]))
        position += size
        do throws(RESPProtocolError) {
            if decodeReplies {
                while let value = try replies.decode(buffer: &buffer) { run.items.append(value.description) }
            } else {
                while let request = try requests.decode(buffer: &buffer) { run.items.append(describe(request)) }
            }
        } catch {
            run.error = error.message
            // A failed decoder stays failed, with the same error.
            do throws(RESPProtocolError) {
                var more = ByteBuffer(string: "*1\r\n$4\r\nPING\r\n")
                if decodeReplies { _ = try replies.decode(buffer: &more) } else { _ = try requests.decode(buffer: &more) }
                fail("a failed decoder decoded again")
            } catch let again {
                if again != error { fail("a failed decoder threw \(again) after \(error)") }
            }
            return run
        }
        if flags & 4 != 0 { buffer.discardReadBytes() }
    }
    return run
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRESP(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size >= 5 else { return 0 }
    let input = UnsafeRawBufferPointer(start: data, count: size)
    let flags = input[0]
    let chunks = (1...4).map { Int(input[$0] % 32) + 1 }
    let stream = UnsafeRawBufferPointer(rebasing: input[5...])
    let whole = decode(stream, chunks: nil, flags: flags)
    let split = decode(stream, chunks: chunks, flags: flags)
    if whole != split { fail("split \(chunks) decodes differently:\n whole \(whole)\n split \(split)") }
    if stream.count <= 512 {
        let drip = decode(stream, chunks: [1], flags: flags)
        if whole != drip { fail("byte-at-a-time decodes differently:\n whole \(whole)\n drip \(drip)") }
    }
    return 0
}

// MARK: seed corpus

/// Seeds: header (flags, four chunk sizes) then the stream.
let seeds: [(String, UInt8, String)] = [
    ("set", 0, "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n"),
    ("pipeline", 4, "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*3\r\n$4\r\nINCR\r\n$1\r\nc\r\n$0\r\n\r\n"),
    ("inline", 0, "SET k \"quoted \\x41 value\" 'single'\r\nPING\n  \r\n"),
    ("empty-and-negative", 0, "*0\r\n*-1\r\n\r\n*1\r\n$4\r\nPING\r\n"),
    ("bad-bulk", 0, "*1\r\n$x\r\nPING\r\n"),
    ("null-bulk", 0, "*2\r\n$3\r\nGET\r\n$-1\r\n"),
    ("small-limits", 1, "*20\r\n$100\r\n" + String(repeating: "a", count: 100) + "\r\n"),
    ("auth", 2, "*11\r\n$1\r\na\r\n"),
    ("nul-in-header", 0, "*1\0\r\n$4\r\nPING\r\n"),
    ("replies-resp2", 8, "+OK\r\n-ERR bad\r\n:42\r\n$5\r\nhello\r\n$-1\r\n*2\r\n$1\r\na\r\n:2\r\n*-1\r\n"),
    ("replies-resp3", 8, "%1\r\n+k\r\n,1.5\r\n_\r\n#t\r\n(123456789012345678901234567890\r\n=15\r\ntxt:Some string\r\n~2\r\n+a\r\n+b\r\n>1\r\n+p\r\n|1\r\n+a\r\n+b\r\n:1\r\n!3\r\nerr\r\n"),
    ("replies-nested", 9, "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n"),
]

func writeSeeds(_ dir: String) {
    mkdir(dir, 0o755)
    for (name, flags, stream) in seeds {
        let bytes = [flags, 1, 3, 7, 16] + Array(stream.utf8)
        guard let f = fopen(dir + "/" + name, "wb") else { fail("cannot write \(dir)/\(name)") }
        if fwrite(bytes, 1, bytes.count, f) != bytes.count { fail("cannot write \(dir)/\(name)") }
        fclose(f)
    }
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> CInt {
    if let dir = getenv("SHALE_FUZZ_SEEDS") {
        writeSeeds(String(cString: dir))
        exit(0)
    }
    return 0
}

// MARK: entry point

/// The executable's entry point in debug builds (see `runFuzzer`).
@_cdecl("FuzzRESP_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzRESP)
}
