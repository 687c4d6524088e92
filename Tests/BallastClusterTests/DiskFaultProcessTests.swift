import BallastProto
import BallastServer
import BallastWire
import Foundation
import Testing

/// Disk faults on real server processes (issue 8 §2): a corrupted write-ahead log on a stopped
/// follower, and the documented recovery, with a load running throughout.
@Suite("disk faults on server processes", .serialized)
struct DiskFaultProcessTests {
    @Test("a follower whose WAL has a flipped byte mid-log refuses to start naming file and offset; remove, wipe and rejoin under load")
    func corruptFollowerWALIsReplacedUnderLoad() async throws {
        let cluster = try ProcessCluster(size: 3)
        defer { cluster.shutdown() }
        let leader = try await cluster.waitForLeader()
        let load = StartLoad(ports: DiskFaultSupport.livePorts(cluster), group: cluster.group)
        let loadTask = Task { await load.run(workers: 4) }
        try await waitFor("the load to get going") { load.acknowledgedCount >= 150 }

        let follower = try #require((1 ... 3).first { $0 != leader })
        load.setPorts(DiskFaultSupport.livePorts(cluster, excluding: follower))
        #expect(cluster.stop(follower) == 0)
        let raftDirectory = cluster.directory + "/node-\(follower)/raft"
        let damage = try WALDamage.flipPayloadByteOfMiddleEntry(in: raftDirectory)

        // Started again, it must refuse (non-zero exit) and say which file and which record.
        try cluster.start(follower)
        let process = try #require(cluster.nodes[follower]?.process)
        try await waitFor("the corrupted follower to exit") { !process.isRunning }
        #expect(process.terminationStatus != 0)
        let log = try String(contentsOfFile: cluster.directory + "/node-\(follower).log", encoding: .utf8)
        #expect(log.contains("corrupt WAL record in \(damage.file) at byte offset \(damage.offset)"),
                "the log should name \(damage.file) and offset \(damage.offset): \(log.suffix(600))")

        // The documented recovery (docs/operations.md, "Recovering a node"), while the load runs.
        var before = load.acknowledgedCount
        let removal = try await DiskFaultSupport.cli(cluster, [
            "cluster", "remove-node", "--address", DiskFaultSupport.apiList(cluster, excluding: follower), "--id", String(follower),
        ])
        #expect(removal.0 == 0, "remove-node failed: \(removal.1)")
        cluster.forget(follower)
        try FileManager.default.removeItem(atPath: cluster.directory + "/node-\(follower)")
        try await waitFor("the load to continue after the removal") { load.acknowledgedCount >= before + 50 }

        try await DiskFaultSupport.join(cluster, 4)
        load.setPorts(DiskFaultSupport.livePorts(cluster))
        before = load.acknowledgedCount
        try await waitFor("the load to continue after the rejoin") { load.acknowledgedCount >= before + 50 }
        try await load.pause()
        let current = try await cluster.waitForLeader()
        try await DiskFaultSupport.expectSameState(cluster, member: 4, leader: current)
        load.stop()
        await loadTask.value

        let outcome = load.state.withLock { $0 }
        #expect(outcome.failures.isEmpty, "the load saw failures: \(outcome.failures.prefix(10))")
        #expect(await cluster.status(of: current)?.voters.sorted() == (1 ... 4).filter { $0 != follower }.map(String.init))
        print("corrupt WAL on follower \(follower) at \(damage.file):\(damage.offset); "
              + "\(outcome.acknowledged.count) starts acknowledged, \(outcome.retriedStarts) retried, longest retry \(outcome.longestRetry)")
    }
}

extension DiskFaultProcessTests {
    @Test("a leader whose disk fills up hands leadership over; the load goes on through the other nodes; it recovers when space returns",
          .enabled(if: Tmpfs.canMount, "needs root and mount -t tmpfs"))
    func leaderOnFullDiskHandsOverAndRecovers() async throws {
        let (cluster, mounts) = try Tmpfs.cluster(size: 3, reserveBytes: Tmpfs.reserveBytes)
        defer { Tmpfs.tearDown(cluster, mounts) }
        let leader = try await cluster.waitForLeader()
        let load = StartLoad(ports: DiskFaultSupport.livePorts(cluster), group: cluster.group)
        let loadTask = Task { await load.run(workers: 4) }
        try await waitFor("the load to get going") { load.acknowledgedCount >= 100 }

        let dataDirectory = cluster.directory + "/node-\(leader)"
        let filler = try Tmpfs.fill(dataDirectory, leaving: Tmpfs.reserveBytes / 2)
        let successor = try await cluster.waitForLeader(excluding: leader)
        var before = load.acknowledgedCount
        try await waitFor("the load to continue on leader \(successor)") { load.acknowledgedCount >= before + 100 }
        let log = try String(contentsOfFile: cluster.directory + "/node-\(leader).log", encoding: .utf8)
        #expect(log.contains("disk full: refusing new proposals"), "\(log.suffix(800))")
        #expect(cluster.nodes[leader]?.process?.isRunning == true)

        try FileManager.default.removeItem(atPath: filler)
        try await waitFor("node \(leader) to see the space again") {
            let text = (try? String(contentsOfFile: cluster.directory + "/node-\(leader).log", encoding: .utf8)) ?? ""
            return text.contains("disk space recovered")
        }
        before = load.acknowledgedCount
        try await waitFor("the load to continue after the recovery") { load.acknowledgedCount >= before + 50 }
        try await load.pause()
        try await DiskFaultSupport.expectSameState(cluster, member: leader, leader: try await cluster.waitForLeader())
        load.stop()
        await loadTask.value
        let outcome = load.state.withLock { $0 }
        #expect(outcome.failures.isEmpty, "the load saw failures: \(outcome.failures.prefix(10))")
        print("full disk on leader \(leader): \(outcome.acknowledged.count) starts acknowledged, \(outcome.retriedStarts) retried "
              + "(\(outcome.resourceExhausted) RESOURCE_EXHAUSTED answers), longest retry \(outcome.longestRetry)")
    }

    @Test("a lone node on a disk that is really full answers RESOURCE_EXHAUSTED, stays up, and takes writes again once space returns, without a restart",
          .enabled(if: Tmpfs.canMount, "needs root and mount -t tmpfs"))
    func loneNodeOnFullDiskRecoversWithoutRestart() async throws {
        // No reserve: the writes themselves meet ENOSPC (the backstop under the reserve).
        let (cluster, mounts) = try Tmpfs.cluster(size: 1, reserveBytes: 0)
        defer { Tmpfs.tearDown(cluster, mounts) }
        _ = try await cluster.waitForLeader()
        let client = try await GRPCClient.connect(host: "127.0.0.1", port: cluster.nodes[1]!.apiPort, group: cluster.group)
        var acknowledged: [String: String] = [:]
        func start(_ id: String, timeout: Duration = .seconds(5)) async throws -> String {
            var request = Ballast_V1_StartWorkflowRequest()
            request.workflowID = id
            request.workflowType.name = "Transfer"
            request.taskQueue = "payments"
            request.requestID = "request-\(id)"
            let response: Ballast_V1_StartWorkflowResponse = try await client.unary(
                BallastMethod.Workflow.start, request: request, timeout: timeout)
            return response.runID
        }
        for number in 0 ..< 20 { acknowledged["before-\(number)"] = try await start("before-\(number)") }

        let filler = try Tmpfs.fill(cluster.directory + "/node-1", leaving: 0)
        // The first writes meet ENOSPC in the history store (the log's segment is preallocated);
        // from then on the node answers at once with RESOURCE_EXHAUSTED naming itself.
        var refusal: GRPCStatus?
        var attempt = 0
        try await waitFor("a RESOURCE_EXHAUSTED answer", timeout: .seconds(30)) {
            attempt += 1
            do {
                acknowledged["during-\(attempt)"] = try await start("during-\(attempt)", timeout: .milliseconds(500))
            } catch let status as GRPCStatus where status.code == .resourceExhausted {
                refusal = status
                return true
            } catch let status as GRPCStatus where status.code == .deadlineExceeded {
            }
            return false
        }
        #expect(refusal?.message.contains("disk full on node 1") == true, "\(String(describing: refusal))")
        // Up and serving HTTP (its Raft loop waits for the history write, so /status would wait too).
        let health = try? await AdminHTTPClient.get(host: "127.0.0.1", port: cluster.nodes[1]!.adminPort, path: "/healthz",
                                                    timeout: .seconds(3), group: cluster.group)
        #expect(health?.0 == 200, "the node must stay up and answer /healthz")
        #expect(cluster.nodes[1]?.process?.isRunning == true)
        let log = try String(contentsOfFile: cluster.directory + "/node-1.log", encoding: .utf8)
        #expect(log.contains("history store full") && log.contains("disk full: refusing new proposals"), "\(log.suffix(800))")

        try FileManager.default.removeItem(atPath: filler)
        try await waitFor("writes to succeed again", timeout: .seconds(30)) {
            (try? await start("after-0", timeout: .seconds(2))).map { acknowledged["after-0"] = $0 } != nil
        }
        for number in 1 ..< 20 { acknowledged["after-\(number)"] = try await start("after-\(number)") }
        await client.close()

        // Committed data is intact across a restart (torn tails, if any, cut on recovery).
        #expect(cluster.stop(1) == 0)
        try cluster.start(1)
        _ = try await cluster.waitForLeader()
        let again = try await GRPCClient.connect(host: "127.0.0.1", port: cluster.nodes[1]!.apiPort, group: cluster.group)
        defer { Task { await again.close() } }
        for (workflowID, runID) in acknowledged.sorted(by: { $0.key < $1.key }) {
            var request = Ballast_V1_DescribeWorkflowExecutionRequest()
            request.execution.workflowID = workflowID
            let found: Ballast_V1_DescribeWorkflowExecutionResponse = try await again.unary(
                BallastMethod.Workflow.describe, request: request, timeout: .seconds(5))
            #expect(found.info.execution.runID == runID, "\(workflowID)")
            #expect(found.info.historyLength > 0, "\(workflowID) has no history")
        }
    }
}

/// A size-limited tmpfs for a node's data directory (root only).
enum Tmpfs {
    static let sizeMegabytes = 96
    static let reserveBytes: UInt64 = 8 << 20

    /// A cluster whose nodes' data directories are tmpfs mounts of `sizeMegabytes`, and the mounts.
    static func cluster(size: Int, reserveBytes: UInt64) throws -> (ProcessCluster, [String]) {
        var mounts: [String] = []
        do {
            let cluster = try ProcessCluster(size: size, extraArguments: ["--disk-reserve-bytes", String(reserveBytes)],
                                             prepareDataDirectory: { path in
                try mount(at: path, megabytes: sizeMegabytes)
                mounts.append(path)
            })
            return (cluster, mounts)
        } catch {
            for path in mounts { unmount(path) }
            throw error
        }
    }

    /// Stops the cluster, unmounts its tmpfs mounts and removes its directory.
    static func tearDown(_ cluster: ProcessCluster, _ mounts: [String]) {
        cluster.shutdown()
        for path in mounts { unmount(path) }
        try? FileManager.default.removeItem(atPath: cluster.directory)
    }

    /// Whether this process may mount a tmpfs (tried once, on a scratch directory).
    static let canMount: Bool = {
        let probe = NSTemporaryDirectory() + "ballast-tmpfs-probe-\(UUID().uuidString)"
        guard (try? FileManager.default.createDirectory(atPath: probe, withIntermediateDirectories: true)) != nil else { return false }
        defer { try? FileManager.default.removeItem(atPath: probe) }
        guard (try? mount(at: probe, megabytes: 1)) != nil else {
            print("skipping the full-disk process tests: mount -t tmpfs was refused (they need root)")
            return false
        }
        unmount(probe)
        return true
    }()

    static func mount(at path: String, megabytes: Int) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let status = run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(megabytes)m", "tmpfs", path])
        guard status == 0 else { throw ClusterTestFailure("mount -t tmpfs at \(path) failed with status \(status)") }
    }

    static func unmount(_ path: String) {
        _ = run("/bin/umount", ["-l", path])
    }

    /// Writes a filler file into `directory` until only `leaving` bytes are free (or none);
    /// returns its path.
    static func fill(_ directory: String, leaving: UInt64) throws -> String {
        let path = directory + "/filler"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw ClusterTestFailure("cannot create \(path)") }
        defer { close(fd) }
        let chunk = [UInt8](repeating: 0xAB, count: 64 << 10)
        while true {
            var info = statvfs()
            guard statvfs(directory, &info) == 0 else { break }
            let free = UInt64(info.f_bavail) * UInt64(info.f_frsize)
            if free <= leaving { break }
            let size = Int(min(UInt64(chunk.count), free - leaving))
            let written = chunk.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, size) }
            if written <= 0 { break }  // ENOSPC: the disk is full
        }
        return path
    }

    private static func run(_ executable: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }
}

/// Damage done to a segment file on purpose.
struct WALDamage {
    var file: String
    var offset: Int

    /// Flips the first payload byte of the middle entry record of the newest segment in
    /// `directory` (a record with valid records after it: real mid-log corruption, not a torn tail).
    static func flipPayloadByteOfMiddleEntry(in directory: String) throws -> WALDamage {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
            .filter { $0.hasPrefix("segment-") && $0.hasSuffix(".wal") }.sorted()
        let name = try #require(names.last)
        let path = directory + "/" + name
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        func u32(_ at: Int) -> Int { (0 ..< 4).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) } }
        var entries: [Int] = []
        var offset = 64
        while offset + 32 <= bytes.count {
            let length = u32(offset + 4)
            let type = bytes[offset + 8]
            if type == 0 { break }
            if type == 1 && length > 0 { entries.append(offset) }
            offset += (32 + length + 7) & ~7
        }
        try #require(entries.count >= 10, "expected a log with entries in \(path), found \(entries.count)")
        let target = entries[entries.count / 2]
        bytes[target + 32] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return WALDamage(file: name, offset: target)
    }
}

/// Cluster steps shared by the disk-fault tests.
enum DiskFaultSupport {
    static func livePorts(_ cluster: ProcessCluster, excluding: Int? = nil) -> [Int] {
        cluster.nodes.keys.sorted().filter { $0 != excluding && cluster.nodes[$0]?.process != nil }.map { cluster.nodes[$0]!.apiPort }
    }

    static func apiList(_ cluster: ProcessCluster, excluding: Int? = nil) -> String {
        livePorts(cluster, excluding: excluding).map { "127.0.0.1:\($0)" }.joined(separator: ",")
    }

    /// Runs the CLI on a thread of its own, so the test's cooperative threads keep driving the load.
    static func cli(_ cluster: ProcessCluster, _ arguments: [String]) async throws -> (Int32, String) {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try cluster.runCLI(arguments) }) }.start()
        }
    }

    /// Starts node `id` on an empty data directory with `--join` and runs `ballast cluster add-node`.
    static func join(_ cluster: ProcessCluster, _ id: Int) async throws {
        let addresses = apiList(cluster)
        try cluster.addNode(id, extraArguments: ["--join", addresses])
        let node = try #require(cluster.nodes[id])
        try await waitFor("node \(id) to serve its admin port") { await cluster.status(of: id) != nil }
        let (code, output) = try await cli(cluster, [
            "cluster", "add-node", "--address", addresses, "--id", String(id), "--raft", "127.0.0.1:\(node.raftPort)",
            "--api", "127.0.0.1:\(node.apiPort)", "--admin", "127.0.0.1:\(node.adminPort)", "--timeout", "60",
        ])
        #expect(code == 0 && output.contains("promoted to voter"), "add-node failed: \(output)")
    }

    /// Waits until `member` has applied exactly what `leader` has and their engine digests match.
    static func expectSameState(_ cluster: ProcessCluster, member: Int, leader: Int) async throws {
        var pair: (NodeStatus?, NodeStatus?) = (nil, nil)
        try await waitFor("node \(member) to reach the leader's state digest") {
            pair = (await cluster.status(of: member), await cluster.status(of: leader))
            guard let mine = pair.0, let theirs = pair.1 else { return false }
            return mine.digestIndex == theirs.digestIndex && mine.stateDigest == theirs.stateDigest && mine.applied == theirs.applied
        }
        #expect(pair.0?.stateDigest != nil && pair.0?.stateDigest == pair.1?.stateDigest)
    }
}
