import BallastEngine
import BallastServer
import Foundation
import Testing

@Suite("ballast server processes", .serialized)
struct ClusterProcessTests {
    @Test("three nodes elect one leader and every member describes the same cluster")
    func electAndAgree() async throws {
        let cluster = try ProcessCluster(size: 3)
        defer { cluster.shutdown() }
        let leader = try await cluster.waitForLeader()
        var views: [ClusterView] = []
        let deadline = ContinuousClock.now + .seconds(10)
        repeat {
            views = []
            for id in 1 ... 3 { if let view = await cluster.view(from: id) { views.append(view) } }
            if views.count == 3, views.allSatisfy({ $0.members.allSatisfy(\.reachable) && $0.leader == String(leader) }) { break }
            try await Task.sleep(for: .milliseconds(20))
        } while ContinuousClock.now < deadline
        #expect(views.count == 3)
        for view in views {
            #expect(view.leader == String(leader))
            #expect(view.members.map(\.id) == ["1", "2", "3"])
            #expect(view.members.filter { $0.role == "leader" }.map(\.id) == [String(leader)])
            for member in view.members {
                let node = try #require(cluster.nodes[Int(member.id) ?? 0])
                #expect(member.raft == "127.0.0.1:\(node.raftPort)")
                #expect(member.api == "127.0.0.1:\(node.apiPort)")
                #expect(member.admin == "127.0.0.1:\(node.adminPort)")
            }
        }
    }

    @Test("`ballast cluster status --json` gives the same answer from every API address, in the fixed format")
    func cliStatusFromEveryAddress() async throws {
        let cluster = try ProcessCluster(size: 3)
        defer { cluster.shutdown() }
        let leader = try await cluster.waitForLeader()
        var outputs: [[String: Any]] = []
        let deadline = ContinuousClock.now + .seconds(10)
        repeat {
            outputs = []
            for id in 1 ... 3 {
                let address = "127.0.0.1:\(cluster.nodes[id]!.apiPort)"
                let (status, text) = try cluster.runCLI(["cluster", "status", "--address", address, "--json"])
                #expect(status == 0, "cluster status via \(address) failed: \(text)")
                if let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] { outputs.append(object) }
            }
            let agreed = outputs.count == 3 && outputs.allSatisfy { output in
                output["leader"] as? String == String(leader)
                    && (output["members"] as? [[String: Any]])?.allSatisfy { $0["reachable"] as? Bool == true } == true
            }
            if agreed { break }
            try await Task.sleep(for: .milliseconds(50))
        } while ContinuousClock.now < deadline
        for output in outputs {
            #expect(output["leader"] as? String == String(leader))
            let members = try #require(output["members"] as? [[String: Any]])
            #expect(members.compactMap { $0["id"] as? String } == ["1", "2", "3"])
            for member in members {
                #expect(["leader", "follower", "candidate", "learner"].contains(member["role"] as? String ?? ""))
                for key in ["term", "commit", "applied"] { #expect(member[key] is Int, "\(key) must be an integer") }
                for key in ["api", "raft", "admin"] {
                    let value = member[key] as? String ?? ""
                    #expect(value.hasPrefix("127.0.0.1:") && Int(value.dropFirst(10)) != nil, "\(key) must be bare HOST:PORT")
                }
                #expect(member["reachable"] as? Bool == true)
                #expect(member["engineFormatVersion"] as? Int == Int(newestEngineFormatVersion), "each member reports the newest engine format it applies")
            }
        }
        let (status, text) = try cluster.runCLI(["cluster", "status", "--address", "127.0.0.1:1", "--json"])
        #expect(status != 0 && text.contains("no node answered"), "an unreachable address must fail clearly: \(text)")
    }

    @Test("after SIGKILL of the leader a new leader is serving within 2 seconds")
    func failover() async throws {
        let cluster = try ProcessCluster(size: 3)
        defer { cluster.shutdown() }
        let first = try await cluster.waitForLeader()
        let killedAt = ContinuousClock.now
        cluster.kill(first)
        let second = try await cluster.waitForLeader(excluding: first, timeout: .seconds(5))
        let elapsed = ContinuousClock.now - killedAt
        #expect(second != first)
        #expect(elapsed < .seconds(2), "failover took \(elapsed)")
    }

    @Test("SIGTERM hands leadership over and exits 0; a full stop and start resumes in a later term")
    func gracefulStopAndFullRestart() async throws {
        let cluster = try ProcessCluster(size: 3)
        defer { cluster.shutdown() }
        let first = try await cluster.waitForLeader()
        let termBefore = try #require(await cluster.view(from: first)?.members.first { $0.id == String(first) }?.term)
        #expect(cluster.stop(first) == 0)
        _ = try await cluster.waitForLeader(excluding: first, timeout: .seconds(5))
        for id in 1 ... 3 { _ = cluster.stop(id) }
        for id in 1 ... 3 { try cluster.start(id) }
        let leader = try await cluster.waitForLeader()
        let termAfter = try #require(await cluster.view(from: leader)?.members.first { $0.id == String(leader) }?.term)
        #expect(termAfter > termBefore, "terms must survive restarts: \(termBefore) then \(termAfter)")
    }
}
