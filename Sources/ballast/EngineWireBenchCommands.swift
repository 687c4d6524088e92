import ArgumentParser
import BallastEngine
import BallastWire
import Foundation

/// `ballast bench engine`: engine entries applied per second on one thread (start → workflow
/// task → activity → workflow task → complete, 7 entries a workflow), and memory per open run.
/// The figure is the engine's own: each `apply` call is timed, up to and including dropping its
/// result (`EngineBenchmark`). The whole loop, with the driver that builds every request afresh,
/// is reported beside it (`with_driver_entries_per_s`).
struct EngineBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine", abstract: "Engine entries applied per second, single-threaded, and memory per open run.")

    @OptionGroup var options: BenchOptions
    @Option(help: "Workflows per round.") var workflows: Int = 100_000
    @Option(help: "Open runs to hold when measuring memory per open run.") var openRuns: Int = 100_000

    func run() async throws {
        var entries = 0
        var applyNanos: UInt64 = 0
        var wholeNanos: UInt64 = 0
        let deadline = Self.monotonicNanos() + UInt64(max(0, options.duration)) * 1_000_000_000
        repeat {
            let start = Self.monotonicNanos()
            let report = EngineBenchmark.run(
                workflows: workflows, concurrency: max(1, options.concurrency), applyClock: Self.monotonicNanos)
            wholeNanos += Self.monotonicNanos() - start
            guard report.rejected == 0 else { throw ValidationError("the engine rejected \(report.rejected) benchmark entries") }
            entries += report.entries
            applyNanos += report.applyNanos
        } while Self.monotonicNanos() < deadline
        let perEntryMilliseconds = Double(applyNanos) / 1_000_000 / Double(max(1, entries))
        let before = Self.residentBytes()
        let engine = EngineBenchmark.openRuns(openRuns)
        let after = Self.residentBytes()
        // What the leader's dispatcher pays to list a queue's ready tasks (it walks every open run).
        let listingStart = Self.monotonicNanos()
        let listed = engine.readyTasks(namespace: "default", taskQueue: "transfers", limitPerKind: 10_000)
        let listingNanos = Self.monotonicNanos() - listingStart
        withExtendedLifetime((engine, listed)) {}
        BenchResult(
            bench: "engine", opsPerSecond: Double(entries) / (Double(max(1, applyNanos)) / 1e9),
            p50Milliseconds: perEntryMilliseconds, p99Milliseconds: perEntryMilliseconds, concurrency: options.concurrency,
            extra: [
                ("entries", Double(entries)),
                ("with_driver_entries_per_s", Double(entries) / (Double(max(1, wholeNanos)) / 1e9)),
                ("bytes_per_open_run", Double(max(0, after - before)) / Double(openRuns)),
                ("ready_listing_ms", Double(listingNanos) / 1e6),
            ]
        ).print(json: options.json)
    }

    /// CLOCK_MONOTONIC in nanoseconds.
    static func monotonicNanos() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    /// Resident set size from /proc/self/statm (0 where it cannot be read).
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

/// `ballast bench wire`: no-op unary gRPC calls/s through Ballast's client and server over
/// loopback (nghttp2 on both sides), or with `--lz4` the LZ4 event-batch codec's speed.
struct WireBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wire", abstract: "Unary gRPC calls/s over loopback, or LZ4 event-batch MB/s with --lz4.")

    @OptionGroup var options: BenchOptions
    @Option(help: "HTTP/2 connections the concurrency is spread over.") var connections: Int = 1
    @Option(help: "Call a running server at this port instead of starting one.") var port: Int?
    @Flag(help: "Measure LZ4 event-batch encode/decode instead of calls.") var lz4 = false
    @Flag(help: "Only serve the no-op method on --port (for h2load) for --duration seconds.") var serve = false

    func run() async throws {
        if serve {
            guard let port else { throw ValidationError("--serve needs --port") }
            let server = try await WireBenchmark.startNoopServer(port: port)
            print("serving \(WireBenchmark.noopPath) on 127.0.0.1:\(server.port ?? port) for \(options.duration) s")
            try await Task.sleep(for: .seconds(options.duration))
            await server.close()
            return
        }
        if lz4 {
            for result in try WireBenchmark.runLZ4() { print(options.json ? result.json : result.description) }
            return
        }
        guard (1 ... 1024).contains(connections) else { throw ValidationError("--connections must be 1…1024") }
        guard options.concurrency >= connections else { throw ValidationError("--concurrency must be at least --connections") }
        let result = try await WireBenchmark.runUnary(
            connections: connections, concurrency: options.concurrency, duration: .seconds(options.duration), port: port)
        print(result.json)
    }
}
