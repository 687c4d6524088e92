import BallastRaft
import BallastServer
import BallastStorage
import Foundation
import Logging
import Testing

@Suite("Slow Raft loop turns")
struct SlowTurnLogTests {
    @Test("a turn that waited rather than computed says so: its CPU time is far below its length")
    func aTurnThatWaitedShowsLittleCPU() async throws {
        let directory = NSTemporaryDirectory() + "ballast-slow-turn-\(UInt64.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let captured = CapturedLogLines()
        var slowTurns: [Logger.Metadata] { captured.metadata(ofLinesStartingWith: "slow Raft loop turn") }
        let id = NodeID(1)
        let driver = try RaftDriver(
            configuration: RaftConfiguration(id: id), log: try WriteAheadLog(directory: directory),
            bootstrap: Membership(voters: [id]), stateMachine: RecordingStateMachine(), transport: LocalTransport(),
            randomSeed: 1, logger: captured.logger(label: "test.slow-turn"))
        defer { driver.stop() }
        // A turn held 300 ms in a sleep on the loop thread: long, and almost no CPU.
        driver.inspect { _ in usleep(300_000) }
        try await waitUntil("the slow turn is logged") {
            slowTurns.contains { Int("\($0["micros"] ?? "0")") ?? 0 >= 300_000 }
        }
        let line = try #require(slowTurns.first { Int("\($0["micros"] ?? "0")") ?? 0 >= 300_000 })
        let micros = try #require(Int("\(line["micros"] ?? "")"))
        let handled = try #require(Int("\(line["handleMicros"] ?? "")"))
        let cpu = try #require(Int("\(line["cpuMicros"] ?? "")"))
        #expect(handled >= 300_000 && handled <= micros, "the sleep was in handling an event")
        #expect(cpu >= 0 && cpu < micros / 2, "a sleeping loop uses little CPU: \(cpu) µs of \(micros) µs")
        // The handling is put down to the inspection, the turn's slowest event.
        let byKind = "\(line["handledByKind"] ?? "")"
        let inspect = byKind.split(separator: " ").first { $0.hasPrefix("inspect=") }
        let inspectMicros = inspect.flatMap { Int($0.dropFirst("inspect=".count).prefix { $0 != "/" }) }
        #expect(inspectMicros.map { $0 >= 300_000 && $0 <= handled } == true, "by kind: \(byKind)")
        #expect(inspect?.hasSuffix("/1") == true, "one inspection: \(byKind)")
        let slowest = "\(line["slowestEvent"] ?? "")"
        #expect(slowest.hasPrefix("inspect=") && Int(slowest.dropFirst("inspect=".count)).map { $0 >= 300_000 } == true,
                "slowest event: \(slowest)")
        // Nothing was sent or read in that turn; the parts of the Ready are still reported.
        #expect(Int("\(line["sendMicros"] ?? "")").map { $0 < 300_000 } == true)
        #expect(Int("\(line["readsMicros"] ?? "")").map { $0 < 300_000 } == true)
    }
}
