import BallastProto
import Foundation

/// Realistic-looking histories for benchmarks and tests: money transfers with JSON payloads.
public enum SampleHistory {
    /// A history of `eventCount` events shaped like the reference transfer workflow:
    /// started, then rounds of workflow task → activity scheduled/started/completed.
    public static func transfer(eventCount: Int, seed: UInt64 = 1) -> [Ballast_V1_HistoryEvent] {
        var generator = SplitMix64(seed: seed)
        var events: [Ballast_V1_HistoryEvent] = []
        events.reserveCapacity(eventCount)
        let activities = ["DebitAccount", "FetchFxQuote", "ComplianceCheck", "InstructCorrespondent", "CreditAccount"]
        let time: Int64 = 1_764_000_000_000_000_000
        for index in 0..<eventCount {
            var event = Ballast_V1_HistoryEvent()
            event.eventID = Int64(index + 1)
            event.eventTimeUnixNanos = time + Int64(index) * 1_250_000 + Int64(generator.next() % 1_000_000)
            fill(&event, index: index, activity: activities[(index / 6) % activities.count], generator: &generator)
            events.append(event)
        }
        return events
    }

    private static func fill(_ event: inout Ballast_V1_HistoryEvent, index: Int, activity: String,
                             generator: inout SplitMix64) {
        switch index % 6 {
        case 0 where index == 0:
            var started = Ballast_V1_WorkflowExecutionStartedEventAttributes()
            started.workflowType.name = "MoneyTransfer"
            started.taskQueue = "payments"
            started.input = payloads(json(&generator, activity))
            started.identity = "worker-7@host-3"
            started.requestID = uuid(&generator)
            started.firstExecutionRunID = uuid(&generator)
            event.workflowExecutionStarted = started
        case 0, 1:
            var scheduled = Ballast_V1_WorkflowTaskScheduledEventAttributes()
            scheduled.taskQueue = "payments"
            scheduled.startToCloseTimeoutNanos = 10_000_000_000
            scheduled.attempt = 1
            event.workflowTaskScheduled = scheduled
        case 2:
            var scheduled = Ballast_V1_ActivityTaskScheduledEventAttributes()
            scheduled.activityID = "\(index / 6 + 1)"
            scheduled.activityType.name = activity
            scheduled.taskQueue = "payments"
            scheduled.input = payloads(json(&generator, activity))
            scheduled.startToCloseTimeoutNanos = 30_000_000_000
            scheduled.workflowTaskCompletedEventID = Int64(index)
            event.activityTaskScheduled = scheduled
        case 3:
            var started = Ballast_V1_ActivityTaskStartedEventAttributes()
            started.scheduledEventID = Int64(index)
            started.identity = "worker-\(generator.next() % 16)@host-\(generator.next() % 4)"
            started.requestID = uuid(&generator)
            started.attempt = 1
            event.activityTaskStarted = started
        case 4:
            var completed = Ballast_V1_ActivityTaskCompletedEventAttributes()
            completed.scheduledEventID = Int64(index - 1)
            completed.startedEventID = Int64(index)
            completed.result = payloads(json(&generator, activity))
            completed.identity = "worker-3@host-1"
            event.activityTaskCompleted = completed
        default:
            var completed = Ballast_V1_WorkflowTaskCompletedEventAttributes()
            completed.scheduledEventID = Int64(index - 1)
            completed.startedEventID = Int64(index)
            completed.identity = "worker-7@host-3"
            completed.binaryChecksum = "b1e2c3d4"
            event.workflowTaskCompleted = completed
        }
    }

    private static func payloads(_ text: String) -> Ballast_V1_Payloads {
        var payload = Ballast_V1_Payload()
        payload.metadata["encoding"] = Data("json/plain".utf8)
        payload.data = Data(text.utf8)
        var payloads = Ballast_V1_Payloads()
        payloads.payloads = [payload]
        return payloads
    }

    private static func json(_ generator: inout SplitMix64, _ step: String) -> String {
        let amount = generator.next() % 1_000_000
        let currencies = ["EUR", "USD", "GBP", "CHF", "JPY"]
        return #"{"transferId":"\#(uuid(&generator))","step":"\#(step)","amount":{"units":\#(amount / 100),"cents":\#(amount % 100),"currency":"\#(currencies[Int(generator.next() % 5)])"},"from":"DE89370400440532\#(generator.next() % 10_000)","to":"GB29NWBK6016133\#(generator.next() % 100_000)","reference":"invoice \#(generator.next() % 100_000)"}"#
    }

    private static func uuid(_ generator: inout SplitMix64) -> String {
        let high = generator.next(), low = generator.next()
        let hex = String(high, radix: 16) + String(low, radix: 16)
        return String(hex.prefix(32))
    }
}

/// A tiny seeded generator (SplitMix64) so sample data is reproducible.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// Creates a generator from a seed.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
