import BallastChaos
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// The fault proxy with real sockets on 127.0.0.1: a client dials the proxy, the proxy dials a
/// target server.
@Suite struct ProxyTests {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    private func withProxy(echo: Bool = true, targetReads: Bool = true, maxBufferedBytes: Int = 1 << 20,
                           _ body: (FaultProxy, Int, ProxyTestTarget) async throws -> Void) async throws {
        let target = try await ProxyTestTarget(group: group, echo: echo, reads: targetReads)
        let proxy = FaultProxy(name: "1->2", targetHost: "127.0.0.1", targetPort: target.port, loop: group.next(),
                               maxBufferedBytes: maxBufferedBytes, seed: 7, logger: Logger(label: "test.proxy"))
        let port = try await proxy.start()
        do {
            try await body(proxy, port, target)
        } catch {
            await proxy.stop()
            await target.close()
            try await group.shutdownGracefully()
            throw error
        }
        await proxy.stop()
        await target.close()
        try await group.shutdownGracefully()
    }

    @Test func bytesPassUnchangedBothWays() async throws {
        try await withProxy { _, port, target in
            let client = try await ProxyTestClient.connect(group: group, port: port)
            let sent = proxyPayload(300_000, seed: 1)
            for start in stride(from: 0, to: sent.count, by: 7_001) {
                try await client.send(Array(sent[start ..< min(sent.count, start + 7_001)]))
            }
            let echoed = await proxyEventually { client.received.bytes.count >= sent.count }
            #expect(echoed)
            #expect(target.allBytes == sent)
            #expect(client.received.bytes == sent)
            await client.close()
        }
    }

    @Test func cutBlackholesOldAndNewConnectionsAndHealRestoresNewOnes() async throws {
        try await withProxy(echo: false) { proxy, port, target in
            let before = try await ProxyTestClient.connect(group: group, port: port)
            try await before.send([1, 2, 3])
            #expect(await proxyEventually { target.allBytes == [1, 2, 3] })

            await proxy.apply(.cutOff)
            try await before.send([4, 5])
            let during = try await ProxyTestClient.connect(group: group, port: port)
            try await during.send([6])
            // Nothing may cross while cut: watch for a while (an absence cannot be polled for).
            let sealed = await proxyStaysTrue(for: .milliseconds(400)) { target.allBytes.count == 3 && target.connections.count == 1 }
            #expect(sealed, "target saw \(target.allBytes) on \(target.connections.count) connections")
            #expect(!before.received.closed && !during.received.closed, "a cut blackholes, it does not close")

            await proxy.apply(.pass)
            #expect(await proxyEventually { before.received.closed && during.received.closed }, "heal closes what the cut held")
            let after = try await ProxyTestClient.connect(group: group, port: port)
            try await after.send([7, 8])
            #expect(await proxyEventually { target.connections.last?.bytes == [7, 8] })
            #expect(target.allBytes == [1, 2, 3, 7, 8], "bytes sent into the cut are never delivered")
            let statistics = await proxy.currentStatistics()
            #expect(statistics.closedByHeal == 2)
            await after.close()
        }
    }

    @Test func latencyDelaysEveryChunkAndKeepsTheirOrder() async throws {
        try await withProxy(echo: false) { proxy, port, target in
            await proxy.apply(LinkFaults(latency: .milliseconds(300)))
            let client = try await ProxyTestClient.connect(group: group, port: port)
            let sent = proxyPayload(50_000, seed: 2)
            let start = ContinuousClock.now
            for start in stride(from: 0, to: sent.count, by: 5_000) {
                try await client.send(Array(sent[start ..< start + 5_000]))
            }
            #expect(await proxyEventually { target.allBytes.count == sent.count })
            let firstArrival = try #require(target.connections.first?.firstByteAt)
            #expect(firstArrival - start >= .milliseconds(300))
            #expect(target.allBytes == sent)

            await proxy.apply(.pass)
            let quick = ContinuousClock.now
            try await client.send([9])
            #expect(await proxyEventually { target.allBytes.count == sent.count + 1 })
            #expect(ContinuousClock.now - quick < .milliseconds(300), "latency lifted applies to new chunks")
            await client.close()
        }
    }

    @Test func aDroppedChunkResetsTheConnection() async throws {
        try await withProxy(echo: false) { proxy, port, target in
            await proxy.apply(LinkFaults(dropProbability: 1))
            let client = try await ProxyTestClient.connect(group: group, port: port)
            try await client.send([1, 2, 3, 4])
            #expect(await proxyEventually { client.received.closed })
            #expect(target.allBytes.isEmpty)
            #expect(await proxy.currentStatistics().resets == 1)

            await proxy.apply(.pass)
            let again = try await ProxyTestClient.connect(group: group, port: port)
            try await again.send([5])
            #expect(await proxyEventually { target.allBytes == [5] })
            await again.close()
        }
    }

    /// Writes to `client` until its channel refuses more (the proxy stopped reading from it).
    private func writeUntilPushedBack(_ client: ProxyTestClient) async -> Bool {
        let chunk = proxyPayload(64 * 1024, seed: 3)
        return await proxyEventually(.seconds(20)) {
            if !client.channel.isWritable { return true }
            client.channel.writeAndFlush(client.channel.allocator.buffer(bytes: chunk), promise: nil)
            return false
        }
    }

    @Test func aReceiverThatDoesNotReadPushesBackToTheSender() async throws {
        try await withProxy(echo: false, targetReads: false, maxBufferedBytes: 64 * 1024) { proxy, port, target in
            let client = try await ProxyTestClient.connect(group: group, port: port)
            #expect(await writeUntilPushedBack(client))
            #expect(await proxy.currentStatistics().peakBufferedBytes <= 2 * 64 * 1024)
            await client.close()
        }
    }

    /// Found by the 2026-11-26 09:00 soak: once the target's side had written its whole delay
    /// line and then turned writable again, nothing resumed reading from the sender, so the link
    /// stayed stuck (a follower cut off for good) although no fault was in force.
    @Test func aReceiverThatResumesReadingGetsEveryByte() async throws {
        try await withProxy(echo: false, targetReads: false, maxBufferedBytes: 64 * 1024) { proxy, port, target in
            let client = try await ProxyTestClient.connect(group: group, port: port)
            let chunk = proxyPayload(64 * 1024, seed: 5)
            let sent = Mutex(0)
            let pushedBack = await proxyEventually(.seconds(20)) {
                if !client.channel.isWritable { return true }
                client.channel.writeAndFlush(client.channel.allocator.buffer(bytes: chunk), promise: nil)
                sent.withLock { $0 += chunk.count }
                return false
            }
            #expect(pushedBack)
            target.resumeReading()
            let expected = sent.withLock { $0 }
            let arrived = await proxyEventually(.seconds(20)) { target.allBytes.count >= expected }
            #expect(arrived, "\(target.allBytes.count) of \(expected) bytes reached the target")
            await client.close()
        }
    }

    @Test func aLongLatencyHoldsAtMostTheBoundThenPushesBack() async throws {
        let bound = 128 * 1024
        try await withProxy(echo: false, maxBufferedBytes: bound) { proxy, port, target in
            await proxy.apply(LinkFaults(latency: .seconds(30)))
            let client = try await ProxyTestClient.connect(group: group, port: port)
            #expect(await writeUntilPushedBack(client))
            let statistics = await proxy.currentStatistics()
            // The bound is checked before each read, so one read (at most 64 KiB) may land past it.
            #expect(statistics.peakBufferedBytes >= bound)
            #expect(statistics.peakBufferedBytes <= bound + 64 * 1024)
            #expect(target.allBytes.isEmpty, "nothing is due before 30 s")
            await client.close()
        }
    }

    @Test func aDownTargetClosesTheConnectionAfterAShortHold() async throws {
        let target = try await ProxyTestTarget(group: group, echo: false)
        let deadPort = target.port
        await target.close()
        let proxy = FaultProxy(name: "1->3", targetHost: "127.0.0.1", targetPort: deadPort, loop: group.next(),
                               logger: Logger(label: "test.proxy"))
        let port = try await proxy.start()
        let client = try await ProxyTestClient.connect(group: group, port: port)
        #expect(await proxyEventually { client.received.closed })
        #expect(await proxy.currentStatistics().targetRefused == 1)
        await proxy.stop()
        try await group.shutdownGracefully()
    }

    @Test func theMeshRoutesEachDirectedLinkThroughItsOwnProxy() async throws {
        var targets: [Int: ProxyTestTarget] = [:]
        for node in 1 ... 3 { targets[node] = try await ProxyTestTarget(group: group, echo: false) }
        let mesh = try await ProxyMesh.start(raftPorts: targets.mapValues(\.port), loop: group.next(), seed: 1,
                                             logger: Logger(label: "test.mesh"))
        let argument = mesh.peerAddressArgument(for: 1)
        let entries = argument.split(separator: ",").map(String.init)
        #expect(entries.count == 2 && entries[0].hasPrefix("2=127.0.0.1:") && entries[1].hasPrefix("3=127.0.0.1:"), "\(argument)")
        await mesh.apply(.cutOff, to: [Link(from: 1, to: 2)])
        let oneToTwo = try await ProxyTestClient.connect(group: group, port: try #require(mesh.port(of: Link(from: 1, to: 2))))
        let threeToTwo = try await ProxyTestClient.connect(group: group, port: try #require(mesh.port(of: Link(from: 3, to: 2))))
        try await oneToTwo.send([1])
        try await threeToTwo.send([3])
        let nodeTwo = try #require(targets[2])
        #expect(await proxyEventually { nodeTwo.allBytes == [3] }, "the other link into node 2 still passes")
        let faulted = await mesh.faultedLinks().map(\.0)
        #expect(faulted == [Link(from: 1, to: 2)])
        await mesh.healAll()
        #expect(await mesh.faultedLinks().isEmpty)
        await oneToTwo.close()
        await threeToTwo.close()
        await mesh.stop()
        for target in targets.values { await target.close() }
        try await group.shutdownGracefully()
    }
}
