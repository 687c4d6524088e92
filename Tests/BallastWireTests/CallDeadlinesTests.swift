@testable import BallastWire
import BallastFuzzSupport
import BallastHTTP2
import NIOCore
import NIOEmbedded
import Testing

/// `CallDeadlines` against a model: calls start with random deadlines, finish at random moments,
/// and virtual time advances; the one task must never be armed later than the earliest deadline
/// of a call in flight, must find every due call when it runs, and memory must follow the calls
/// in flight.
@Suite("Call deadlines")
struct CallDeadlinesTests {
    @Test("random starts, finishes and clock advances: every deadline of a call in flight fires once, at its time")
    func modelCheck() {
        for seed in UInt64(1)...16 {
            var random = FuzzRandom(seed: seed)
            let loop = EmbeddedEventLoop()
            var deadlines = CallDeadlines()
            var inFlight: [HTTP2StreamID: UInt64] = [:]  // stream id → deadline (uptime nanoseconds)
            var scheduledFor: [UInt64] = []
            var nextStreamID: HTTP2StreamID = 1
            var now: UInt64 = 1_000_000
            var expired = 0
            func schedule(_ at: NIODeadline) -> Scheduled<Void> {
                scheduledFor.append(at.uptimeNanoseconds)
                return loop.scheduleTask(deadline: at) {}
            }
            for _ in 0..<3_000 {
                switch random.below(10) {
                case 0..<5:
                    let id = nextStreamID
                    nextStreamID += 2
                    let due = now + 1 + UInt64(random.below(2_000))
                    inFlight[id] = due
                    deadlines.add(.uptimeNanoseconds(due), streamID: id, liveCalls: inFlight.count,
                                  isLive: { inFlight[$0] != nil }, schedule: schedule)
                    #expect(deadlines.count <= 2 * inFlight.count + 65, "seed \(seed): entries do not follow the calls in flight")
                case 5..<8:
                    if let id = inFlight.keys.sorted().randomElement(using: &random) { inFlight[id] = nil }
                default:
                    now += UInt64(random.below(600))
                    guard let armed = deadlines.armedFor, armed.uptimeNanoseconds <= now else { break }
                    #expect(scheduledFor.last == armed.uptimeNanoseconds)
                    let due = deadlines.fired(now: .uptimeNanoseconds(now))
                    #expect(Set(due).count == due.count, "seed \(seed): a stream came due twice")
                    for id in due {
                        guard let deadline = inFlight.removeValue(forKey: id) else { continue }
                        #expect(deadline <= now, "seed \(seed): stream \(id) fired before its deadline")
                        expired += 1
                    }
                    deadlines.rearm(isLive: { inFlight[$0] != nil }, schedule: schedule)
                    #expect(!inFlight.values.contains { $0 <= now }, "seed \(seed): a due call was not returned")
                }
                // Whatever happened, the task is armed no later than the earliest deadline in flight.
                if let earliest = inFlight.values.min() {
                    let armed = deadlines.armedFor?.uptimeNanoseconds
                    #expect(armed != nil && armed! <= earliest, "seed \(seed): armed for \(String(describing: armed)), a call is due at \(earliest)")
                }
            }
            #expect(expired > 100, "seed \(seed): the run should expire calls")
            deadlines.removeAll()
            #expect(deadlines.count == 0 && deadlines.armedFor == nil)
        }
    }

    @Test("grpc-accept-encoding lists are read name by name, spaces and tabs around names ignored")
    func acceptEncodingList() {
        #expect(GRPCWireValue.list("lz4", names: "lz4"))
        #expect(GRPCWireValue.list("identity, lz4", names: "lz4"))
        #expect(GRPCWireValue.list("gzip,\tlz4 ,identity", names: "lz4"))
        #expect(!GRPCWireValue.list("lz4hc,identity", names: "lz4"))
        #expect(!GRPCWireValue.list("", names: "lz4"))
        #expect(!GRPCWireValue.list("l z4", names: "lz4"))
        #expect(!GRPCWireValue.list("LZ4", names: "lz4"))
    }

    @Test("a client timeout too long for 64-bit nanoseconds is Int64.max, not a trap in the caller")
    func timeoutNanosecondsSaturate() {
        #expect(GRPCClient.nanoseconds(.milliseconds(1_500)) == 1_500_000_000)
        #expect(GRPCClient.nanoseconds(.nanoseconds(7)) == 7)
        #expect(GRPCClient.nanoseconds(.seconds(Int64.max)) == .max)
        #expect(GRPCClient.nanoseconds(.seconds(9_223_372_036)) == 9_223_372_036_000_000_000)
        #expect(GRPCClient.nanoseconds(.seconds(9_223_372_036) + .milliseconds(900)) == .max)
        #expect(GRPCClient.nanoseconds(.seconds(-Int64.max)) == .min)
    }
}
