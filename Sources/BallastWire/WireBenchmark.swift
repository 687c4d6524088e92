import BallastProto
import NIOCore
import NIOPosix

/// Benchmarks of the wire: unary calls over HTTP/2 and the LZ4 event-batch codec.
///
/// `ballast bench wire` calls these; `docs/benchmarks.md` records their figures.
public enum WireBenchmark {
    /// The no-op unary method h2load and the client benchmark call (empty request and response).
    public static let noopPath = "/ballast.v1.testing.EchoService/Noop"

    /// One benchmark outcome, printable as the `--json` line of DESIGN.md.
    public struct Result: Sendable, CustomStringConvertible {
        /// Benchmark name, e.g. `wire-unary` or `wire-lz4-encode`.
        public var name: String
        /// Operations per second (calls, or batches for LZ4).
        public var opsPerSecond: Double
        /// Median latency in milliseconds (0 when not measured).
        public var p50Milliseconds: Double
        /// 99th percentile latency in milliseconds (0 when not measured).
        public var p99Milliseconds: Double
        /// Concurrent calls in flight (streams over all connections).
        public var concurrency: Int
        /// Extra named figures (connections, MB/s, compression ratio).
        public var extra: [String: Double]

        /// The result as one JSON line.
        public var json: String {
            var fields = [#""bench": "\#(name)""#, #""ops_per_s": \#(rounded(opsPerSecond))"#,
                          #""p50_ms": \#(rounded(p50Milliseconds))"#, #""p99_ms": \#(rounded(p99Milliseconds))"#,
                          #""concurrency": \#(concurrency)"#]
            fields += extra.keys.sorted().map { #""\#($0)": \#(rounded(extra[$0] ?? 0))"# }
            return "{" + fields.joined(separator: ", ") + "}"
        }

        /// A human-readable line.
        public var description: String { json }

        private func rounded(_ value: Double) -> String { String(format: "%.3f", value) }
    }

    /// A registry holding only the no-op method, answered on the event loop.
    public static func noopRegistry() -> GRPCMethodRegistry {
        var registry = GRPCMethodRegistry()
        registry.register(noopPath, GRPCMethodHandler(kind: .unary) { _, _, responder in
            _ = responder.send([])
            responder.finish(.ok)
            return nil
        })
        return registry
    }

    /// Starts a server answering the no-op method on `host:port` (port 0: any free port).
    public static func startNoopServer(host: String = "127.0.0.1", port: Int = 0,
                                       group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> GRPCServer {
        var configuration = GRPCServerConfiguration()
        configuration.http2.maxConcurrentStreams = 1024
        return try await GRPCServer.start(host: host, port: port, registry: noopRegistry(), configuration: configuration, group: group)
    }

    /// Unary no-op calls per second from Ballast's own client: `connections` connections,
    /// `concurrency` calls in flight in total, for `duration`. Starts its own server unless given a port.
    public static func runUnary(connections: Int, concurrency: Int, duration: Duration,
                                host: String = "127.0.0.1", port: Int? = nil) async throws -> Result {
        precondition(connections > 0 && concurrency >= connections, "need at least one call per connection")
        let server = port == nil ? try await startNoopServer(host: host) : nil
        let target = try port ?? (server?.port).unwrapped("benchmark server has no port")
        var clients: [GRPCClient] = []
        for _ in 0..<connections { clients.append(try await GRPCClient.connect(host: host, port: target)) }
        let clock = ContinuousClock()
        let end = clock.now + duration
        let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
            for worker in 0..<concurrency {
                let client = clients[worker % connections]
                group.addTask {
                    var samples: [Double] = []
                    while clock.now < end {
                        let start = clock.now
                        let (status, _, _) = await client.rawUnary(noopPath, payload: [])
                        guard status.code == .ok else { throw status }
                        samples.append(milliseconds(clock.now - start))
                    }
                    return samples
                }
            }
            return try await group.reduce(into: [Double]()) { $0 += $1 }.sorted()
        }
        for client in clients { await client.close() }
        await server?.close()
        let seconds = milliseconds(duration) / 1000
        return Result(name: "wire-unary", opsPerSecond: Double(latencies.count) / seconds,
                      p50Milliseconds: percentile(latencies, 0.50), p99Milliseconds: percentile(latencies, 0.99),
                      concurrency: concurrency, extra: ["connections": Double(connections)])
    }

    /// LZ4 event-batch encode and decode throughput (MB/s of uncompressed history) and ratio,
    /// on a generated money-transfer history of `eventCount` events in 1 MiB batches.
    public static func runLZ4(eventCount: Int = 20_000, iterations: Int = 5) throws -> [Result] {
        let events = SampleHistory.transfer(eventCount: eventCount)
        let serialized: [[UInt8]] = try events.map { try $0.serializedBytes() }
        let clock = ContinuousClock()
        var batches: [LZ4EventBatch] = []
        let encodeStart = clock.now
        for _ in 0..<iterations {
            batches = try LZ4EventBatchCodec.makeBatches(serializedEvents: serialized, firstEventID: 1)
        }
        let encodeSeconds = milliseconds(clock.now - encodeStart) / 1000
        let decodeStart = clock.now
        var decodedEvents = 0
        for _ in 0..<iterations {
            for batch in batches { decodedEvents += try LZ4EventBatchCodec.decode(batch).count }
        }
        let decodeSeconds = milliseconds(clock.now - decodeStart) / 1000
        precondition(decodedEvents == eventCount * iterations, "decoded a different number of events")
        let frameStart = clock.now
        for _ in 0..<iterations {
            for batch in batches { _ = try LZ4Frame.decompress(batch.lz4Frame, maxOutputBytes: 16 << 20) }
        }
        let frameDecodeSeconds = milliseconds(clock.now - frameStart) / 1000
        let plainBytes = Double(batches.reduce(0) { $0 + Int($1.uncompressedBytes) })
        let compressedBytes = Double(batches.reduce(0) { $0 + $1.lz4Frame.count })
        let megabytes = plainBytes * Double(iterations) / 1_000_000
        let common: [String: Double] = ["ratio": plainBytes / compressedBytes, "events": Double(eventCount),
                                        "uncompressed_mb": plainBytes / 1_000_000]
        return [
            Result(name: "wire-lz4-encode", opsPerSecond: Double(batches.count * iterations) / encodeSeconds,
                   p50Milliseconds: 0, p99Milliseconds: 0, concurrency: 1,
                   extra: common.merging(["mb_per_s": megabytes / encodeSeconds]) { $1 }),
            Result(name: "wire-lz4-decode", opsPerSecond: Double(batches.count * iterations) / decodeSeconds,
                   p50Milliseconds: 0, p99Milliseconds: 0, concurrency: 1,
                   extra: common.merging(["mb_per_s": megabytes / decodeSeconds,
                                          "frame_only_mb_per_s": megabytes / frameDecodeSeconds]) { $1 }),
        ]
    }

    static func milliseconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }

    static func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * fraction))]
    }
}

extension Optional {
    /// The value, or a GRPCStatus(.internal) error naming what was missing.
    func unwrapped(_ what: String) throws -> Wrapped {
        guard let value = self else { throw GRPCStatus(.internal, what) }
        return value
    }
}
