@testable import BallastEngine
import BallastProto
import Foundation
import SwiftProtobuf
import Testing

/// Engine format 4 counts each run's history size (`HashingVisitor.counted` of every event an
/// entry of format 4 on appends) and fails the run at `EngineLimits.historyMaxBytes`, with a
/// warning once at `historyWarnBytes`. Entries of older formats count nothing.
@Suite("History size limit (engine format 4)")
struct HistorySizeLimitTests {
    /// A signal carrying `bytes` bytes of payload.
    static func bigSignal(_ run: RunKey, _ name: String, bytes: Int) -> Payload {
        var request = Ballast_V1_SignalWorkflowRequest()
        request.namespace = run.namespace
        request.workflowExecution.workflowID = run.workflowId
        request.signalName = name
        var payload = Ballast_V1_Payload()
        payload.data = Data(repeating: 0x61, count: bytes)
        request.input.payloads = [payload]
        return .signalWorkflow(request)
    }

    /// The counted size of a stored event, recomputed from its bytes as the engine counts it.
    static func counted(_ event: Ballast_V1_HistoryEvent) -> Int64 {
        var counted: Int64 = 0
        guard let attributes = event.attributes else { return 0 }
        _ = HashingVisitor.combineEvent(0, eventId: event.eventID, time: event.eventTimeUnixNanos,
                                        attributes: attributes, counted: &counted)
        return counted
    }

    static func limits(warn: Int64, max: Int64) -> EngineLimits {
        var limits = EngineLimits()
        limits.historyWarnBytes = warn
        limits.historyMaxBytes = max
        return limits
    }

    /// Signals of 2 KiB, each followed by a workflow task, until the run closes or `rounds` end.
    /// Returns the size warnings seen and, per entry while open, (the engine's count, the count
    /// recomputed from the stored events).
    static func fill(_ h: inout Harness, _ run: RunKey, rounds: Int) -> (warnings: Int, counts: [(Int64, Int64)]) {
        var warnings = 0
        var counts: [(Int64, Int64)] = []
        func note(_ h: Harness) {
            warnings += h.last.warnings.filter { if case .historySizeWarning = $0 { true } else { false } }.count
            if let state = h.engine.runs[run.runId] {
                counts.append((state.historySizeBytes, h.events(run).reduce(0) { $0 + counted($1) }))
            }
        }
        for round in 0..<rounds {
            h.apply(bigSignal(run, "s\(round)", bytes: 2_048))
            note(h)
            if h.status(run) != .running { break }
            if h.readyWorkflowTask(run) != nil {
                h.workflowTask(run, [])
                note(h)
            }
            if h.status(run) != .running { break }
        }
        return (warnings, counts)
    }

    @Test("a run whose counted history reaches the limit is failed at that entry; the warning comes once")
    func runFailsAtTheLimit() throws {
        var h = Harness(limits: Self.limits(warn: 8 * 1024, max: 32 * 1024))
        #expect(h.formatVersion >= historySizeFormatVersion)
        let run = h.start("big")
        let (warnings, counts) = Self.fill(&h, run, rounds: 100)
        #expect(h.status(run) == .failed)
        let last = try #require(h.events(run).last)
        #expect(last.workflowExecutionFailed.failure.type == "HistorySizeLimitExceeded")
        #expect(last.workflowExecutionFailed.failure.nonRetryable)
        #expect(last.workflowExecutionFailed.failure.message.contains("reached the limit of 32768 bytes"))
        #expect(warnings == 1)
        // While open, the engine's count is exactly the stored events' counted sizes, and it
        // stayed below the limit until the entry that closed the run.
        #expect(!counts.isEmpty)
        for (engine, stored) in counts {
            #expect(engine == stored)
            #expect(engine < 32 * 1024)
        }
        let total = h.events(run).dropLast().reduce(Int64(0)) { $0 + Self.counted($1) }
        #expect(total >= 32 * 1024, "the run closed at \(total) counted bytes")
        #expect(h.engine.runs[run.runId] == nil)
    }

    @Test("entries of format 3 count nothing: the same run stays open, as it did before format 4")
    func olderFormatsCountNothing() {
        var h = Harness(limits: Self.limits(warn: 8 * 1024, max: 32 * 1024))
        h.formatVersion = boundedRetryFormatVersion
        let run = h.start("old")
        let (warnings, counts) = Self.fill(&h, run, rounds: 40)
        #expect(h.status(run) == .running)
        #expect(warnings == 0)
        #expect(counts.allSatisfy { $0.0 == 0 })
        #expect(h.events(run).reduce(Int64(0)) { $0 + Self.counted($1) } > 64 * 1024)
        // Counting starts with the first format-4 entry: only what it appends.
        h.formatVersion = historySizeFormatVersion
        let before = h.events(run).count
        h.apply(Self.bigSignal(run, "now", bytes: 100))
        let appended = h.events(run).dropFirst(before).reduce(Int64(0)) { $0 + Self.counted($1) }
        #expect(appended > 100)
        #expect(h.engine.runs[run.runId]?.historySizeBytes == appended)
    }

    @Test("the count survives a snapshot: a restored engine fails the run at the same entry")
    func countSurvivesASnapshot() throws {
        let limits = Self.limits(warn: 4 * 1024, max: 24 * 1024)
        var h = Harness(limits: limits)
        let run = h.start("snap")
        _ = Self.fill(&h, run, rounds: 4)
        #expect(h.status(run) == .running)
        let counted = try #require(h.engine.runs[run.runId]?.historySizeBytes)
        #expect(counted > 4 * 1024)
        var restored = h
        restored.engine = try WorkflowEngine.restore(h.engine.snapshot(), limits: limits)
        #expect(restored.engine.runs[run.runId]?.historySizeBytes == counted)
        #expect(restored.engine.runs[run.runId]?.historySizeWarned == true)
        #expect(restored.engine.stateDigest() == h.engine.stateDigest())
        let (warningsA, _) = Self.fill(&h, run, rounds: 100)
        let (warningsB, _) = Self.fill(&restored, run, rounds: 100)
        #expect(warningsA == 0 && warningsB == 0, "the warning was given before the snapshot")
        #expect(h.status(run) == .failed && restored.status(run) == .failed)
        #expect(h.events(run).count == restored.events(run).count)
        #expect(h.engine.stateDigest() == restored.engine.stateDigest())
    }

    /// Signals that arrive while a workflow task runs wait in the run's memory on every node until
    /// the task ends: up to 2,000 of up to 2 MiB each. From format 4 they count as they arrive.
    @Test("signals waiting for a running workflow task count: the run fails while they wait", arguments: [UInt32(3), 4])
    func bufferedSignalsCount(format: UInt32) throws {
        var h = Harness(limits: Self.limits(warn: 8 * 1024, max: 32 * 1024))
        h.formatVersion = format
        let run = h.start("held")
        _ = h.startWorkflowTask(run)
        var sent = 0
        while sent < 40, h.status(run) == .running {
            h.apply(Self.bigSignal(run, "s\(sent)", bytes: 2_048))
            sent += 1
        }
        let state = h.engine.runs[run.runId]
        if format >= historySizeFormatVersion {
            #expect(h.status(run) == .failed)
            // 40 of them would be 80 KiB; the history without them is a few hundred bytes.
            #expect(sent < 20, "failed after \(sent) signals of 2 KiB")
            #expect(h.events(run).last?.workflowExecutionFailed.failure.type == "HistorySizeLimitExceeded")
        } else {
            #expect(h.status(run) == .running)
            #expect(state?.buffered.count == 40)
            #expect(state?.historySizeBytes == 0)
        }
    }

    @Test("the waiting signals' size is counted again on restore, the same as when they arrived")
    func bufferedSizeSurvivesARestore() throws {
        var h = Harness()
        let run = h.start("held")
        let token = h.startWorkflowTask(run)
        for index in 0..<3 { h.apply(Self.bigSignal(run, "s\(index)", bytes: 1_000 + index)) }
        let state = try #require(h.engine.runs[run.runId])
        #expect(state.buffered.count == 3)
        #expect(state.bufferedSize > 3_003)
        let restored = try WorkflowEngine.restore(h.engine.snapshot())
        #expect(restored.runs[run.runId]?.bufferedSize == state.bufferedSize)
        // Written when the task completes: the history's count grows by their counted sizes
        // (now with event ids and times) and nothing waits any more.
        let before = state.historySizeBytes
        h.completeWorkflowTask(token, [])
        let after = try #require(h.engine.runs[run.runId])
        #expect(after.bufferedSize == 0)
        #expect(after.historySizeBytes > before + state.bufferedSize)
    }

    /// The count is an upper bound of the encoding (what the store keeps and a reader is sent),
    /// and close to it for events that carry payloads.
    @Test("the counted size of every event is at least its encoded size", arguments: [UInt64(1), 2, 3, 4])
    func countedBoundsTheEncoding(seed: UInt64) throws {
        var h = Harness()
        var generator = EntryGenerator(seed: seed)
        var events = 0
        for _ in 0..<1_500 {
            let (payload, advance) = generator.next(h.engine)
            let result = h.apply(payload, advance: advance)
            for batch in result.events {
                for event in batch.events {
                    let size = Int64((try event.serializedBytes() as [UInt8]).count)
                    let counted = Self.counted(event)
                    #expect(counted >= size, "\(event.attributes.map { "\($0)" }?.prefix(60) ?? "")")
                    events += 1
                }
            }
        }
        #expect(events > 500)
        // A signal with 1 MiB of payload counts within 1 % of its encoding.
        var big = Harness()
        let run = big.start("one")
        big.apply(Self.bigSignal(run, "mega", bytes: 1 << 20))
        let signalled = try #require(big.events(run).last)
        let size = Int64((try signalled.serializedBytes() as [UInt8]).count)
        #expect(Self.counted(signalled) >= size && Self.counted(signalled) < size + size / 100)
    }

    @Test("map entries, repeated fields and unknown fields are counted")
    func countsEveryKindOfField() throws {
        var attributes = Ballast_V1_WorkflowExecutionStartedEventAttributes()
        attributes.workflowType.name = "T"
        var payload = Ballast_V1_Payload()
        payload.data = Data(repeating: 1, count: 300)
        payload.metadata["encoding"] = Data("json/plain".utf8)
        attributes.input.payloads = [payload, payload]
        attributes.memo.fields["note"] = payload
        attributes.header.fields["trace"] = payload
        var withUnknown = payload
        withUnknown.unknownFields = try {
            var donor = Ballast_V1_Payload()
            donor.data = Data(repeating: 2, count: 500)
            // Field 1 of another message, read as unknown by one that lacks it: same bytes.
            let bytes: [UInt8] = try donor.serializedBytes()
            return try Ballast_V1_WorkflowType(serializedBytes: bytes).unknownFields
        }()
        attributes.lastCompletionResult.payloads = [withUnknown]
        var event = Ballast_V1_HistoryEvent()
        event.eventID = 1
        event.eventTimeUnixNanos = 1_700_000_000 * second
        event.workflowExecutionStarted = attributes
        let size = Int64((try event.serializedBytes() as [UInt8]).count)
        let counted = Self.counted(event)
        #expect(counted >= size)
        #expect(size > 5 * 300 + 500)
        #expect(counted < size + size / 4, "counted \(counted) for \(size) encoded bytes")
    }
}
