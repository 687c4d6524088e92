import ArgumentParser
import BallastProto
import BallastSDK
import Foundation
import Synchronization

/// `ballast bench visibility`: loads a mix of workflows into a node, then times the first page
/// (50 runs) of filtered lists, and a few counts, over the API on the leader.
struct VisibilityBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "visibility",
        abstract: "First-page latency of filtered workflow lists over 100,000 runs, through the API on the leader.",
        discussion: """
            Starts a one-node cluster (--nodes 3 for three) of this binary on free 127.0.0.1 ports unless \
            given --address, registers the search attributes BenchRegion (keyword) and BenchAmount (int), \
            starts --workflows runs of five types (Transfer, Refund, Payout, Audit and 1% Rare) with those \
            attributes, terminates 25% of them and gives 15% a 1 s run timeout (so they time out), then \
            sends each query --samples times, one call at a time (page size 50), and prints p50/p99 per query.
            """)

    @Option(help: "API addresses HOST:PORT of a running cluster, comma-separated (default: start a cluster).")
    var address: String?
    @Option(help: "Workflows to load.") var workflows = 100_000
    @Option(help: "Starts kept in flight while loading.") var concurrency = 64
    @Option(help: "Calls timed per query.") var samples = 200
    @Option(help: "Runs per page.") var pageSize = 50
    @Option(help: "Nodes in the cluster this benchmark starts.") var nodes = 1
    @Option(help: "The server binary (default: this executable).") var serverBinary: String?
    @Flag(help: "Print one JSON line instead of a table.") var json = false

    /// The queries timed: what each exercises in the planner.
    static let queries: [(name: String, query: String)] = [
        ("newest", ""),
        ("type", "WorkflowType = 'Transfer'"),
        ("status", "ExecutionStatus = 'Running'"),
        ("type_status_time", "WorkflowType = 'Transfer' AND ExecutionStatus = 'Running' AND StartTime > '2000-01-01T00:00:00Z'"),
        ("rare_type", "WorkflowType = 'Rare' AND ExecutionStatus = 'Running'"),
        ("keyword", "BenchRegion = 'mars'"),
        ("or_in", "WorkflowType = 'Rare' OR BenchRegion IN ('mars', 'venus')"),
        ("closed_by_close_time", "ExecutionStatus = 'Terminated' ORDER BY CloseTime DESC"),
        ("type_and_int", "WorkflowType = 'Payout' AND BenchAmount >= 900"),
        ("unindexed_scan", "BenchAmount < 5"),
    ]

    func validate() throws {
        guard (1 ... 1_000_000).contains(workflows) else { throw ValidationError("--workflows must be 1…1000000") }
        guard (1 ... 1_024).contains(concurrency) else { throw ValidationError("--concurrency must be 1…1024") }
        guard (1 ... 100_000).contains(samples) else { throw ValidationError("--samples must be 1…100000") }
        guard (1 ... 1_000).contains(pageSize) else { throw ValidationError("--page-size must be 1…1000") }
        guard (1 ... 7).contains(nodes) else { throw ValidationError("--nodes must be 1…7") }
    }

    func run() async throws {
        if let address {
            try await measure(addresses: address, nodePID: nil)
            return
        }
        BenchChildren.shared.installSignalHandlers()
        let cluster = try BenchCluster(size: nodes, binary: try serverBinary ?? ClusterBenchCommand.ownExecutable(),
                                       dataDirectory: nil, logLevel: "warning")
        do {
            let leader = try await cluster.waitForLeader(timeout: .seconds(60))
            try await cluster.waitForAllUp(timeout: .seconds(60))
            let pid = cluster.pids.first { $0.0 == leader.id }?.1
            try await measure(addresses: cluster.apiAddresses.joined(separator: ","), nodePID: pid)
            try cluster.checkAlive()
        } catch {
            cluster.shutdown(keep: true)
            FileHandle.standardError.write(Data("node logs kept in \(cluster.directory)\n".utf8))
            throw error
        }
        cluster.shutdown()
    }

    func measure(addresses: String, nodePID: Int32?) async throws {
        var options = BallastClientOptions()
        options.callTimeout = .seconds(60)
        options.identity = "bench-visibility"
        let client = try BallastClient(addresses: addresses, options: options)
        do {
            try await measure(client, nodePID: nodePID)
        } catch {
            await client.close()
            throw error
        }
        await client.close()
    }

    func measure(_ client: BallastClient, nodePID: Int32?) async throws {
        try await client.addSearchAttributes(["BenchRegion": .keyword, "BenchAmount": .int])
        let rssBefore = nodePID.flatMap(Self.residentBytes)
        let loadStart = ContinuousClock.now
        let (terminated, timingOut) = try await load(client)
        // The 1 s run timeouts fire from the leader's timer wheel.
        let deadline = ContinuousClock.now + .seconds(120)
        while try await client.count(query: "ExecutionStatus = 'TimedOut'") < Int64(timingOut), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
        }
        let loadSeconds = Self.seconds(ContinuousClock.now - loadStart)
        let rssAfter = nodePID.flatMap(Self.residentBytes)
        let total = try await client.countByStatus(query: "")
        var results: [(name: String, query: String, p50: Double, p99: Double, rows: Int)] = []
        for (name, query) in Self.queries {
            var latencies = LatencySamples()
            var rows = 0
            for sample in 0..<(samples + 5) {
                let started = ContinuousClock.now
                let page = try await client.list(query: query, pageSize: Int32(pageSize), limit: pageSize)
                if sample >= 5 { latencies.record(ContinuousClock.now - started) }
                rows = page.count
            }
            let percentiles = latencies.percentilesMilliseconds(0.5, 0.99)
            results.append((name, query, percentiles[0], percentiles[1], rows))
        }
        var counts: [(name: String, p50: Double, p99: Double)] = []
        for (name, query) in [("count_all", ""), ("count_type", "WorkflowType = 'Transfer'"), ("count_scan", "BenchAmount < 5")] {
            var latencies = LatencySamples()
            for _ in 0..<max(10, samples / 10) {
                let started = ContinuousClock.now
                _ = try await client.countByStatus(query: query)
                latencies.record(ContinuousClock.now - started)
            }
            let percentiles = latencies.percentilesMilliseconds(0.5, 0.99)
            counts.append((name, percentiles[0], percentiles[1]))
        }
        let statuses = total.statusCounts.map { "\(WorkflowStatusName.text($0.status))=\($0.count)" }.joined(separator: " ")
        let perRun = rssBefore.flatMap { before in rssAfter.map { Double($0 - before) / Double(max(1, workflows)) } }
        if json {
            var fields = ["\"bench\": \"visibility\"", "\"concurrency\": 1", "\"workflows\": \(workflows)",
                          "\"rows\": \(total.count)", "\"load_s\": \(Self.rounded(loadSeconds))",
                          "\"terminated\": \(terminated)", "\"timed_out\": \(timingOut)"]
            if let first = results.first {
                fields += ["\"ops_per_s\": \(Self.rounded(1_000 / max(first.p50, 0.001)))", "\"p50_ms\": \(Self.rounded(first.p50))",
                           "\"p99_ms\": \(Self.rounded(first.p99))"]
            }
            if let perRun { fields.append("\"node_rss_bytes_per_run\": \(Int(perRun))") }
            for result in results {
                fields.append("\"\(result.name)_p50_ms\": \(Self.rounded(result.p50)), \"\(result.name)_p99_ms\": \(Self.rounded(result.p99))")
            }
            for count in counts {
                fields.append("\"\(count.name)_p50_ms\": \(Self.rounded(count.p50)), \"\(count.name)_p99_ms\": \(Self.rounded(count.p99))")
            }
            print("{" + fields.joined(separator: ", ") + "}")
            return
        }
        print("loaded \(workflows) workflows in \(Self.rounded(loadSeconds)) s; rows \(total.count): \(statuses)")
        if let perRun { print("leader RSS grew by \(Int(perRun)) bytes per run (all engine state, history store cache included)") }
        print("query                  p50 ms   p99 ms   rows  text")
        for result in results {
            print("\(result.name.padding(toLength: 22, withPad: " ", startingAt: 0)) \(Self.column(result.p50)) \(Self.column(result.p99)) \(String(result.rows).benchLeftPadded(5))  \(result.query.isEmpty ? "(none)" : result.query)")
        }
        for count in counts {
            print("\(count.name.padding(toLength: 22, withPad: " ", startingAt: 0)) \(Self.column(count.p50)) \(Self.column(count.p99))")
        }
    }

    /// Starts the runs, `concurrency` at a time; terminates every fourth. Returns (terminated, timing out).
    func load(_ client: BallastClient) async throws -> (Int, Int) {
        let next = BenchCounter()
        let total = workflows
        let regions = ["eu", "us", "apac", "latam", "africa", "oceania", "arctic", "antarctic"]
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<min(concurrency, total) {
                group.addTask {
                    while true {
                        let number = next.value.add(1, ordering: .relaxed).oldValue
                        guard number < total else { return }
                        var options = WorkflowStartOptions()
                        options.requestID = "bench-visibility-\(number)"
                        let region = number % 200 == 17 ? "mars" : (number % 500 == 3 ? "venus" : regions[number % regions.count])
                        options.searchAttributes = ["BenchRegion": .keyword(region), "BenchAmount": .int(Int64(number % 1_000))]
                        if number % 20 >= 17 { options.runTimeout = .seconds(1) }
                        let type = number % 100 == 42 ? "Rare" : ["Transfer", "Refund", "Payout", "Audit"][number % 4]
                        let handle = try await client.start(type, id: "bench-\(number)", taskQueue: "bench-visibility",
                                                            payloads: nil, options: options)
                        if number % 4 == 1 { try await client.terminate(workflowID: handle.workflowID, runID: handle.runID, reason: "bench") }
                    }
                }
            }
            try await group.waitForAll()
        }
        let terminated = (0..<total).filter { $0 % 4 == 1 }.count
        let timingOut = (0..<total).filter { $0 % 20 >= 17 && $0 % 4 != 1 }.count
        return (terminated, timingOut)
    }

    static func residentBytes(_ pid: Int32) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kilobytes = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return nil }
        return kilobytes * 1_024
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func rounded(_ value: Double) -> String { String(Double(Int(value * 1000)) / 1000) }
    static func column(_ value: Double) -> String { rounded(value).benchLeftPadded(8) }
}

/// A counter shared by the load tasks.
final class BenchCounter: Sendable {
    let value = Atomic<Int>(0)
}

private extension String {
    func benchLeftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
