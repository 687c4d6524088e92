import BallastProto
import BallastServer
import BallastWire
import Foundation
import Testing

/// Hostile and broken clients against a real server process (issue 8 §3): stream floods,
/// clients that never read, oversized messages and mid-call disconnects, driven by
/// `ballast bench hostile` while its well-behaved client keeps calling.
@Suite("hostile clients on a server process", .serialized)
struct HostileClientProcessTests {
    @Test("under stream floods, non-readers, oversized messages and mid-call hang-ups the node stays up and every good call succeeds in time")
    func goodClientSurvivesHostileCrowd() async throws {
        let cluster = try ProcessCluster(size: 1)
        defer { cluster.shutdown() }
        _ = try await cluster.waitForLeader()
        let node = try #require(cluster.nodes[1])
        let (code, output) = try await DiskFaultSupport.cli(cluster, [
            "bench", "hostile", "--address", "127.0.0.1:\(node.apiPort)", "--duration", "3", "--concurrency", "4",
            "--hostile-connections", "4", "--flood-streams", "1000", "--json",
        ])
        #expect(code == 0, "bench hostile failed: \(output)")
        let line = try #require(output.split(separator: "\n").last { $0.hasPrefix("{") }, "no JSON line in \(output)")
        let figures = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        func number(_ key: String) -> Double { (figures[key] as? NSNumber)?.doubleValue ?? -1 }
        // The good client: every call answered OK within its 2 s deadline, alone and under attack.
        #expect(number("good_failures") == 0, "good calls failed: \(figures["good_failure_sample"] ?? "")")
        #expect(number("ops_per_s") > 0 && number("baseline_ops_per_s") > 0)
        // The hostile ones were really there, and were answered as documented.
        #expect(number("flood_streams_sent") >= 1000)
        #expect(number("flood_goaways") > 0, "a stream flood must get GOAWAY: \(line)")
        #expect(number("flood_closed_by_server") > 0, "a stream flood must be closed by the node: \(line)")
        #expect(number("never_read_requests") > 0 && number("midcall_disconnects") > 0)
        #expect(number("oversized_calls") > 0 && number("oversized_resource_exhausted") == number("oversized_calls"),
                "every oversized message must get RESOURCE_EXHAUSTED: \(line)")
        #expect(cluster.nodes[1]?.process?.isRunning == true)
        #expect(await cluster.status(of: 1) != nil, "the node must still answer")
        print("hostile clients: \(line)")
    }
}
