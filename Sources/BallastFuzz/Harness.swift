// libFuzzer harness for the network-facing decoders (issue 8 §3, docs/reliability.md "Fuzzing").
//
// Built by `scripts/fuzz` with `-sanitize=fuzzer -DBALLAST_LIBFUZZER`: then `main` hands control
// to libFuzzer (`LLVMFuzzerRunDriver`), which calls `fuzzOne` with coverage-guided inputs for the
// decoder named by `BALLAST_FUZZ_TARGET`. In an ordinary build the same executable replays
// input files instead: `BallastFuzz TARGET FILE…` (a finding's reproducer, without libFuzzer).
#if canImport(Glibc)
import Glibc
#endif

/// The target chosen for this process (libFuzzer calls `fuzzOne` without context).
nonisolated(unsafe) var selectedTarget = FuzzTarget.raftMessage

/// Writes a line to standard error.
func complain(_ text: String) {
    let line = Array((text + "\n").utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

/// One input from libFuzzer.
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    selectedTarget.run(bytes)
    return 0
}

#if BALLAST_LIBFUZZER
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32
#endif

@main
struct BallastFuzzHarness {
    static func main() {
        #if BALLAST_LIBFUZZER
        let name = getenv("BALLAST_FUZZ_TARGET").map { String(cString: $0) } ?? ""
        guard let target = FuzzTarget(rawValue: name) else {
            complain("set BALLAST_FUZZ_TARGET to one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))")
            exit(2)
        }
        selectedTarget = target
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { fuzzOne($0, $1) })
        #else
        let arguments = CommandLine.arguments.dropFirst()
        guard let name = arguments.first, let target = FuzzTarget(rawValue: name) else {
            complain("usage: BallastFuzz TARGET FILE…  (targets: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")))")
            exit(2)
        }
        selectedTarget = target
        for path in arguments.dropFirst() {
            guard let file = fopen(path, "rb") else {
                complain("cannot open \(path)")
                exit(1)
            }
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = fread(&chunk, 1, chunk.count, file)
                if count <= 0 { break }
                bytes += chunk[0 ..< count]
            }
            fclose(file)
            _ = bytes.withUnsafeBufferPointer { fuzzOne($0.baseAddress, $0.count) }
            print("\(path): \(bytes.count) bytes, no crash")
        }
        #endif
    }
}
