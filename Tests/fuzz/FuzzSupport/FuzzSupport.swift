// What every libFuzzer target of Tests/fuzz shares: failing loudly, and handing the
// executable's entry point over to libFuzzer's driver.

#if canImport(Glibc)
import Glibc
#endif

/// Reports a failure and aborts (optimized builds drop the messages of precondition and
/// fatalError).
public func fail(_ message: String) -> Never {
    let text = Array("fuzz target failed: \(message)\n".utf8)
    _ = text.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    abort()
}

/// libFuzzer's driver (in the runtime -sanitize=fuzzer links).
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ body: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// Runs libFuzzer's driver over `body` with the executable's arguments. Each target calls it
/// from `<module>_main`, the symbol SwiftPM links `main` to in debug builds (a
/// -parse-as-library module has no main of its own); release builds use libFuzzer's `main`.
public func runFuzzer(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
    _ body: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt {
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments, body)
}
