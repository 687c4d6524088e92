import ArgumentParser
import BallastServer
import BallastWire
import Foundation

/// `ballast bench cluster`: committed engine operations per second and their latency through the
/// gRPC API of a 3-node cluster (real `ballast server` processes, fsync on), or with
/// `--failover N` the time a client waits when the leader is SIGKILLed, N times.
struct ClusterBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "Engine operations/s and latency through the gRPC API of a 3-node cluster, or leader-kill failover times.",
        discussion: """
            Starts three `ballast server` processes of this binary on free 127.0.0.1 ports (data under a \
            temporary directory, removed afterwards) unless given --address. Every operation is a \
            StartWorkflow with a new workflow id (or, with --signal-percent, a SignalWorkflow to a run this \
            benchmark started): one committed, applied engine entry. --concurrency callers in a closed loop \
            share --connections HTTP/2 connections to the leader.
            """)

    @OptionGroup var options: BenchOptions
    @Option(help: "API addresses HOST:PORT of a running cluster, comma-separated (default: start a 3-node cluster).")
    var address: String?
    @Option(help: "HTTP/2 connections to the leader, each on its own event loop (default: min(concurrency, cores)).")
    var connections: Int?
    @Option(help: "Percent of operations that signal a run this benchmark started instead of starting one (0…100).")
    var signalPercent: Int = 0
    @Option(help: "Seconds of load before measuring.")
    var warmUp: Double = 2
    @Option(help: "Instead of load: SIGKILL the leader this many times and time the recovery (own cluster only).")
    var failover: Int?
    @Option(help: "Nodes in the cluster this benchmark starts.")
    var nodes: Int = 3
    @Option(help: "Directory for the nodes' data and logs (default: a temporary directory, removed afterwards).")
    var dataDir: String?
    @Option(help: "The server binary (default: this executable).")
    var serverBinary: String?
    @Option(help: "The nodes' log level.")
    var serverLogLevel: String = "info"
    @Flag(help: "Keep the temporary data directory and node logs.")
    var keep = false
    @Flag(help: "Measure twice in this run, TLS off then mutual TLS on every port (a fresh cluster each, throwaway certificates), and report the cost.")
    var tls = false

    func validate() throws {
        guard (0 ... 100).contains(signalPercent) else { throw ValidationError("--signal-percent must be 0…100") }
        guard warmUp >= 0, warmUp <= 600 else { throw ValidationError("--warm-up must be 0…600 seconds") }
        guard (1 ... 15).contains(nodes) else { throw ValidationError("--nodes must be 1…15") }
        let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
        guard levels.contains(serverLogLevel) else { throw ValidationError("--server-log-level must be one of \(levels.joined(separator: ", "))") }
        if let connections, !(1 ... 256).contains(connections) || connections > options.concurrency {
            throw ValidationError("--connections must be 1…256 and at most --concurrency")
        }
        if let failover {
            guard (1 ... 1000).contains(failover) else { throw ValidationError("--failover must be 1…1000") }
            guard address == nil else { throw ValidationError("--failover kills nodes, so it needs its own cluster: drop --address") }
            guard nodes >= 3 else { throw ValidationError("--failover needs --nodes 3 or more (a majority must survive)") }
        }
        if tls {
            guard address == nil, failover == nil else { throw ValidationError("--tls starts its own clusters: drop --address and --failover") }
        }
    }

    func run() async throws {
        let loadAverage = ProcessCPU.loadAverage().first ?? -1
        if let address {
            let seeds = try address.split(separator: ",").map { try HostPort(parsing: String($0)) }
            guard !seeds.isEmpty else { throw ValidationError("--address needs at least one HOST:PORT") }
            try await measureLoad(seeds: seeds, nodePIDs: [], loadAverage: loadAverage)
            return
        }
        BenchChildren.shared.installSignalHandlers()
        if tls {
            try await compareTLS(loadAverage: loadAverage)
            return
        }
        let cluster = try BenchCluster(size: nodes, binary: try serverBinary ?? Self.ownExecutable(), dataDirectory: dataDir,
                                       logLevel: serverLogLevel)
        do {
            _ = try await cluster.waitForLeader(timeout: .seconds(30))
            if let failover {
                try await measureFailover(cluster: cluster, trials: failover, loadAverage: loadAverage)
            } else {
                let seeds = try cluster.apiAddresses.map { try HostPort(parsing: $0) }
                try await measureLoad(seeds: seeds, nodePIDs: cluster.pids, loadAverage: loadAverage)
                try cluster.checkAlive()
            }
        } catch {
            cluster.shutdown(keep: true)
            FileHandle.standardError.write(Data("node logs kept in \(cluster.directory)\n".utf8))
            throw error
        }
        cluster.shutdown(keep: keep)
    }

    /// This process's executable, so the nodes run exactly the code being measured.
    static func ownExecutable() throws -> String {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        guard let first = CommandLine.arguments.first, FileManager.default.isExecutableFile(atPath: first) else {
            throw ValidationError("cannot find this executable; pass --server-binary")
        }
        return first
    }

    /// `--tls`: the same load on a cleartext cluster, then on a TLS cluster; both results, then the cost.
    private func compareTLS(loadAverage: Double) async throws {
        var throughput: [Bool: Double] = [:]
        for tlsOn in [false, true] {
            let directory = dataDir.map { $0 + (tlsOn ? "/tls-on" : "/tls-off") }
            let cluster = try BenchCluster(size: nodes, binary: try serverBinary ?? Self.ownExecutable(), dataDirectory: directory,
                                           logLevel: serverLogLevel, tls: tlsOn)
            do {
                _ = try await cluster.waitForLeader(timeout: .seconds(30))
                let seeds = try cluster.apiAddresses.map { try HostPort(parsing: $0) }
                throughput[tlsOn] = try await measureLoad(seeds: seeds, nodePIDs: cluster.pids, loadAverage: loadAverage,
                                                          tls: cluster.tls?.client)
                try cluster.checkAlive()
            } catch {
                cluster.shutdown(keep: true)
                FileHandle.standardError.write(Data("node logs kept in \(cluster.directory)\n".utf8))
                throw error
            }
            cluster.shutdown(keep: keep)
        }
        let off = throughput[false] ?? 0, on = throughput[true] ?? 0
        let cost = off > 0 ? (1 - on / off) * 100 : 0
        BenchResult(bench: "cluster-tls-cost", opsPerSecond: on, p50Milliseconds: -1, p99Milliseconds: -1,
                    concurrency: options.concurrency,
                    extra: [("tls_off_ops_per_s", off), ("tls_on_ops_per_s", on), ("tls_cost_percent", cost)]).print(json: options.json)
    }

    @discardableResult
    private func measureLoad(seeds: [HostPort], nodePIDs: [(Int, Int32)], loadAverage: Double,
                             tls: TLSClientOptions? = nil) async throws -> Double {
        let connectionCount = connections ?? min(options.concurrency, ProcessInfo.processInfo.activeProcessorCount)
        var configuration = GRPCClientConfiguration()
        configuration.tls = tls
        let leader = try await LeaderConnections.connect(seeds: seeds, connections: connectionCount, timeout: .seconds(30),
                                                         configuration: configuration)
        let load = ClusterLoad(concurrency: options.concurrency, signalPercent: signalPercent, measure: .seconds(options.duration))
        let measureStart = ContinuousClock.now + .seconds(warmUp)
        async let running = load.run(leader, measureStart: measureStart)
        try await Task.sleep(until: measureStart)
        let meter = CPUMeter(pids: [("client", getpid())] + nodePIDs.map { ("node\($0.0)", $0.1) })
        try await Task.sleep(until: measureStart + .seconds(options.duration))
        let cpu = meter.finish()
        let result = await running
        let leaderAddress = leader.client(for: 0).address
        await leader.close()
        report(result, cpu: cpu, connections: connectionCount, leader: leaderAddress, loadAverage: loadAverage, tls: tls != nil)
        return Double(result.operations) / result.measuredSeconds
    }

    private func report(_ result: ClusterLoadResult, cpu: (perProcess: [(String, Double)], machineBusyCores: Double?),
                        connections: Int, leader: HostPort, loadAverage: Double, tls: Bool) {
        let seconds = result.measuredSeconds
        let histogram = result.histogram
        var extra: [(String, Double)] = [
            ("p999_ms", histogram.percentileMilliseconds(0.999)), ("max_ms", Double(histogram.maxNanoseconds) / 1e6),
            ("mean_ms", histogram.meanMilliseconds), ("operations", Double(result.operations)),
            ("starts", Double(result.starts)), ("signals", Double(result.signals)), ("errors", Double(result.errorCount)),
            ("connections", Double(connections)), ("signal_percent", Double(signalPercent)), ("duration_s", seconds),
        ]
        // CPU seconds used during the measured window, and as a share of one core.
        extra += cpu.perProcess.map { ("\($0.0)_cpu_s", $0.1) }
        let nodeSeconds = cpu.perProcess.filter { $0.0 != "client" }.map(\.1)
        if !nodeSeconds.isEmpty { extra.append(("nodes_cpu_s", nodeSeconds.reduce(0, +))) }
        if let busy = cpu.machineBusyCores { extra.append(("machine_busy_cores", busy)) }
        extra.append(("loadavg_1m", loadAverage))
        extra.append(("tls", tls ? 1 : 0))
        extra += result.errors.sorted { $0.key < $1.key }.map { ("errors_\($0.key)", Double($0.value)) }
        let bench = BenchResult(
            bench: "cluster", opsPerSecond: Double(result.operations) / seconds, p50Milliseconds: histogram.percentileMilliseconds(0.5),
            p99Milliseconds: histogram.percentileMilliseconds(0.99), concurrency: options.concurrency, extra: extra)
        bench.print(json: options.json)
        if !options.json { print("leader       \(leader)") }
        for (code, count) in result.errors.sorted(by: { $0.key < $1.key }) {
            let message = result.firstErrorMessages[code] ?? ""
            FileHandle.standardError.write(Data("errors: \(code) × \(count), the first: \(message)\n".utf8))
        }
    }

    private func measureFailover(cluster: BenchCluster, trials: Int, loadAverage: Double) async throws {
        let runner = FailoverTrials(trials: trials)
        let results = try await runner.run(on: cluster) { number, trial in
            let success = trial.firstSuccessMilliseconds.map { "\(Int($0.rounded())) ms" } ?? "none within 30 s"
            let seen = trial.leaderSeenMilliseconds.map { "\(Int($0.rounded())) ms" } ?? "not seen"
            FileHandle.standardError.write(Data(("failover trial \(number): killed node \(trial.killed), new leader "
                + "\(trial.newLeader.map(String.init) ?? "?"); new leader seen after \(seen), first successful start after "
                + "\(success) (\(trial.probes) probes); restarted node caught up in \(Int(trial.catchUpMilliseconds)) ms\n").utf8))
        }
        let success = DurationSummary(milliseconds: results.compactMap(\.firstSuccessMilliseconds))
        let seen = DurationSummary(milliseconds: results.compactMap(\.leaderSeenMilliseconds))
        let failed = results.filter { $0.firstSuccessMilliseconds == nil }.count
        // The fixed fields: p50 is the median and p99 the maximum of the kill-to-first-success times.
        BenchResult(
            bench: "cluster-failover", opsPerSecond: 0, p50Milliseconds: success?.median ?? -1,
            p99Milliseconds: success?.maximum ?? -1, concurrency: 1,
            extra: [("trials", Double(trials)), ("failed", Double(failed)),
                    ("first_success_min_ms", success?.minimum ?? -1), ("first_success_median_ms", success?.median ?? -1),
                    ("first_success_max_ms", success?.maximum ?? -1),
                    ("leader_seen_median_ms", seen?.median ?? -1), ("leader_seen_max_ms", seen?.maximum ?? -1),
                    ("loadavg_1m", loadAverage)]
        ).print(json: options.json)
    }
}
