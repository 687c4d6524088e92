@testable import BallastEngine
import BallastProto
import Foundation
import SwiftProtobuf
import Testing

@Suite("Hashing")
struct HashingTests {
    @Test("SHA-256 matches the FIPS 180-4 test vectors, however the input is split")
    func sha256Vectors() {
        let vectors: [(String, String)] = [
            ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
             "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        ]
        for (input, expected) in vectors {
            #expect(hexString(SHA256Hasher.hash(Array(input.utf8))) == expected)
            for split in 0...input.utf8.count {
                var hasher = SHA256Hasher()
                hasher.update(Array(input.utf8.prefix(split)))
                hasher.update(Array(input.utf8.dropFirst(split)))
                #expect(hexString(hasher.finalize()) == expected, "split at \(split)")
            }
        }
        let million = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        #expect(hexString(SHA256Hasher.hash(million)) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test("RollingHash.combine is FNV-1a 64 over the previous hash's 8 big-endian bytes, then the bytes")
    func rollingHashIsFNVOfPreviousThenBytes() {
        var random = SeededRandom(seed: 7)
        for length in 0..<40 {
            let previous = UInt64.random(in: 0...UInt64.max, using: &random)
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            var expected: UInt64 = previous
            let prefix = (0..<8).map { UInt8(truncatingIfNeeded: previous >> (56 - 8 * UInt64($0))) }
            for byte in prefix + bytes { expected = (expected ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
            #expect(RollingHash.combine(previous, bytes) == expected)
        }
    }

    @Test("the rolling history hash changes with event content and repeats for the same history")
    func historyHashSensitivity() {
        var first = Harness(), second = Harness()
        let a = first.start("w") { $0.input = payloads("x") }
        let b = second.start("w") { $0.input = payloads("y") }
        let hashA = try? first.engine.describe(namespace: "default", execution: a.execution).info.historyHash
        let hashB = try? second.engine.describe(namespace: "default", execution: b.execution).info.historyHash
        #expect(hashA != nil && hashA != hashB, "a different input gives a different history hash")
        var third = Harness()
        let c = third.start("w") { $0.input = payloads("x") }
        let hashC = try? third.engine.describe(namespace: "default", execution: c.execution).info.historyHash
        #expect(hashA == hashC, "the same history gives the same hash")
    }

    /// Every attribute case of a history event, empty or carrying an unknown field (hashed as such).
    static func everyAttributesCase(withUnknown: Bool) -> [Ballast_V1_HistoryEvent.OneOf_Attributes] {
        [
            .workflowExecutionStarted(variant(Ballast_V1_WorkflowExecutionStartedEventAttributes.self, withUnknown)),
            .workflowExecutionCompleted(variant(Ballast_V1_WorkflowExecutionCompletedEventAttributes.self, withUnknown)),
            .workflowExecutionFailed(variant(Ballast_V1_WorkflowExecutionFailedEventAttributes.self, withUnknown)),
            .workflowExecutionTimedOut(variant(Ballast_V1_WorkflowExecutionTimedOutEventAttributes.self, withUnknown)),
            .workflowExecutionCanceled(variant(Ballast_V1_WorkflowExecutionCanceledEventAttributes.self, withUnknown)),
            .workflowExecutionTerminated(variant(Ballast_V1_WorkflowExecutionTerminatedEventAttributes.self, withUnknown)),
            .workflowExecutionContinuedAsNew(variant(Ballast_V1_WorkflowExecutionContinuedAsNewEventAttributes.self, withUnknown)),
            .workflowTaskScheduled(variant(Ballast_V1_WorkflowTaskScheduledEventAttributes.self, withUnknown)),
            .workflowTaskStarted(variant(Ballast_V1_WorkflowTaskStartedEventAttributes.self, withUnknown)),
            .workflowTaskCompleted(variant(Ballast_V1_WorkflowTaskCompletedEventAttributes.self, withUnknown)),
            .workflowTaskTimedOut(variant(Ballast_V1_WorkflowTaskTimedOutEventAttributes.self, withUnknown)),
            .workflowTaskFailed(variant(Ballast_V1_WorkflowTaskFailedEventAttributes.self, withUnknown)),
            .activityTaskScheduled(variant(Ballast_V1_ActivityTaskScheduledEventAttributes.self, withUnknown)),
            .activityTaskStarted(variant(Ballast_V1_ActivityTaskStartedEventAttributes.self, withUnknown)),
            .activityTaskCompleted(variant(Ballast_V1_ActivityTaskCompletedEventAttributes.self, withUnknown)),
            .activityTaskFailed(variant(Ballast_V1_ActivityTaskFailedEventAttributes.self, withUnknown)),
            .activityTaskTimedOut(variant(Ballast_V1_ActivityTaskTimedOutEventAttributes.self, withUnknown)),
            .activityTaskCancelRequested(variant(Ballast_V1_ActivityTaskCancelRequestedEventAttributes.self, withUnknown)),
            .activityTaskCanceled(variant(Ballast_V1_ActivityTaskCanceledEventAttributes.self, withUnknown)),
            .timerStarted(variant(Ballast_V1_TimerStartedEventAttributes.self, withUnknown)),
            .timerFired(variant(Ballast_V1_TimerFiredEventAttributes.self, withUnknown)),
            .timerCanceled(variant(Ballast_V1_TimerCanceledEventAttributes.self, withUnknown)),
            .workflowExecutionSignaled(variant(Ballast_V1_WorkflowExecutionSignaledEventAttributes.self, withUnknown)),
            .workflowExecutionCancelRequested(variant(Ballast_V1_WorkflowExecutionCancelRequestedEventAttributes.self, withUnknown)),
            .markerRecorded(variant(Ballast_V1_MarkerRecordedEventAttributes.self, withUnknown)),
            .upsertWorkflowSearchAttributes(variant(Ballast_V1_UpsertWorkflowSearchAttributesEventAttributes.self, withUnknown)),
            .startChildWorkflowExecutionInitiated(variant(Ballast_V1_StartChildWorkflowExecutionInitiatedEventAttributes.self, withUnknown)),
            .startChildWorkflowExecutionFailed(variant(Ballast_V1_StartChildWorkflowExecutionFailedEventAttributes.self, withUnknown)),
            .childWorkflowExecutionStarted(variant(Ballast_V1_ChildWorkflowExecutionStartedEventAttributes.self, withUnknown)),
            .childWorkflowExecutionCompleted(variant(Ballast_V1_ChildWorkflowExecutionCompletedEventAttributes.self, withUnknown)),
            .childWorkflowExecutionFailed(variant(Ballast_V1_ChildWorkflowExecutionFailedEventAttributes.self, withUnknown)),
            .childWorkflowExecutionCanceled(variant(Ballast_V1_ChildWorkflowExecutionCanceledEventAttributes.self, withUnknown)),
            .childWorkflowExecutionTimedOut(variant(Ballast_V1_ChildWorkflowExecutionTimedOutEventAttributes.self, withUnknown)),
            .childWorkflowExecutionTerminated(variant(Ballast_V1_ChildWorkflowExecutionTerminatedEventAttributes.self, withUnknown)),
            .signalExternalWorkflowExecutionInitiated(variant(Ballast_V1_SignalExternalWorkflowExecutionInitiatedEventAttributes.self, withUnknown)),
            .signalExternalWorkflowExecutionFailed(variant(Ballast_V1_SignalExternalWorkflowExecutionFailedEventAttributes.self, withUnknown)),
            .externalWorkflowExecutionSignaled(variant(Ballast_V1_ExternalWorkflowExecutionSignaledEventAttributes.self, withUnknown)),
        ]
    }

    /// An empty message, or one holding an unknown varint field 999 (so its own hash is not the empty one).
    static func variant<M: SwiftProtobuf.Message>(_ type: M.Type, _ withUnknown: Bool) -> M {
        guard withUnknown else { return M() }
        return (try? M(serializedBytes: [UInt8]([0xb8, 0x3e, 0x07]))) ?? M()
    }

    @Test("hashing an event from its parts equals traversing the event, for every attribute case")
    func eventHashFromParts() {
        var seen: Set<UInt64> = []
        for withUnknown in [false, true] {
            for attributes in Self.everyAttributesCase(withUnknown: withUnknown) {
                for (eventId, time) in [(Int64(0), Int64(0)), (1, 0), (0, 1_700_000_000_000_000_000), (42, -5)] {
                    var event = Ballast_V1_HistoryEvent()
                    event.eventID = eventId
                    event.eventTimeUnixNanos = time
                    event.attributes = attributes
                    let previous: UInt64 = 0x1234_5678_9abc_def0
                    let expected = HashingVisitor.combine(previous, event)
                    #expect(HashingVisitor.combineEvent(previous, eventId: eventId, time: time, attributes: attributes) == expected,
                            "\(attributes) id \(eventId) time \(time)")
                    seen.insert(expected)
                }
            }
        }
        #expect(seen.count == 37 * 2 * 4, "every case, content and id/time gives its own hash")
    }

    /// `combineEvent` hashes `event_id` (1), `event_time_unix_nanos` (2) and the attributes case;
    /// a field added to `HistoryEvent` outside the `attributes` oneof would be left out of the
    /// history hash silently. This reads the schema and fails until `combineEvent` is taught the
    /// new field (and this list with it).
    @Test("HistoryEvent has no field outside the attributes oneof that combineEvent does not hash")
    func historyEventFieldsAreAllHashed() throws {
        var root = URL(fileURLWithPath: #filePath)
        while root.path != "/" && !FileManager.default.fileExists(atPath: root.appendingPathComponent("Package.swift").path) {
            root.deleteLastPathComponent()
        }
        let schema = try String(contentsOf: root.appendingPathComponent("proto/ballast/v1/history.proto"), encoding: .utf8)
        let start = try #require(schema.range(of: "message HistoryEvent {"))
        var depth = 0
        var outside: [Int] = []
        var line = ""
        for character in schema[start.upperBound...] {
            guard character != "\n" else {
                if depth == 0, let equals = line.range(of: "= "), let number = Int(line[equals.upperBound...].prefix { $0.isNumber }) {
                    outside.append(number)
                }
                line = ""
                continue
            }
            line.append(character)
            if character == "{" { depth += 1 }
            if character == "}" {
                if depth == 0 { break }
                depth -= 1
            }
        }
        #expect(outside == [1, 2], "HistoryEvent fields outside the oneof: \(outside); teach HashingVisitor.combineEvent the new ones")
    }
}
