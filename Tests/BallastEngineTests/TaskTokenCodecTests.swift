@testable import BallastEngine
import BallastFuzzSupport
import BallastProto
import Foundation
import SwiftProtobuf
import Testing

/// The engine's own task-token codec must agree with swift-protobuf byte for byte and on every
/// accept/reject decision (a token is part of the replicated entries).
@Suite("Task token codec")
struct TaskTokenCodecTests {
    static let texts = ["", "default", "transfer-7", "0000000000000001-1234-5678-9abc-def012345678", "é☃𝄞", "debit",
                        String(repeating: "x", count: 200)]
    static let numbers: [Int64] = [0, 1, 127, 128, 300, 16_384, Int64(Int32.max), -1, Int64.min, Int64.max]

    static func randomToken(_ random: inout SeededRandom) -> Ballast_V1_TaskToken {
        var token = Ballast_V1_TaskToken()
        token.namespace = Self.texts.randomElement(using: &random)!
        token.workflowID = Self.texts.randomElement(using: &random)!
        token.runID = Self.texts.randomElement(using: &random)!
        token.scheduledEventID = Self.numbers.randomElement(using: &random)!
        token.attempt = Int32(truncatingIfNeeded: Self.numbers.randomElement(using: &random)!)
        token.activityID = Self.texts.randomElement(using: &random)!
        token.isActivity = Bool.random(using: &random)
        token.taskQueue = Self.texts.randomElement(using: &random)!
        return token
    }

    @Test("encoding gives swift-protobuf's bytes")
    func encodeMatches() throws {
        var random = SeededRandom(seed: 7)
        for _ in 0..<2_000 {
            let token = Self.randomToken(&random)
            let expected: [UInt8] = try token.serializedBytes()
            let encoded = TaskTokenCodec.encode(
                namespace: token.namespace, workflowId: token.workflowID, runId: token.runID,
                scheduledEventId: token.scheduledEventID, attempt: token.attempt, activityId: token.activityID,
                isActivity: token.isActivity, taskQueue: token.taskQueue)
            #expect(Array(encoded) == expected, "\(token)")
            #expect(try TaskTokenCodec.decode(encoded) == token)
            let ascii = [token.namespace, token.workflowID, token.runID, token.activityID, token.taskQueue].allSatisfy { $0.utf8.allSatisfy { $0 < 0x80 } }
            let fast = expected.withUnsafeBytes { TaskTokenCodec.decodeCanonical($0) }
            #expect(fast == (ascii ? token : nil), "canonical ASCII tokens take the fast path, others the generic one")
        }
    }

    @Test("a ready task's token bytes are the serialized token")
    func readyTaskBytes() throws {
        let run = RunKey(namespace: "default", workflowId: "w", runId: "0000000000000001-0000-0000-0000-000000000000")
        for kind in [ReadyTask.Kind.workflow, .activity] {
            let task = ReadyTask(kind: kind, taskQueue: "q", run: run, scheduledEventId: 5, attempt: 3,
                                 activityId: kind == .activity ? "a" : "", sequence: 1)
            #expect(task.taskTokenBytes == (try task.taskToken.serializedBytes()))
        }
    }

    @Test("decoding agrees with swift-protobuf on mutated, truncated and reordered bytes")
    func decodeAgrees() async throws {
        var random = SeededRandom(seed: 11)
        var fastPath = 0
        var yielder = PoolYielder() // seconds of work in a debug build: the other tests' waits go on
        for round in 0..<20_000 {
            await yielder.yieldIfDue()
            var bytes: [UInt8] = try Self.randomToken(&random).serializedBytes()
            switch round % 5 {
            case 0 where !bytes.isEmpty: bytes[Int.random(in: 0..<bytes.count, using: &random)] ^= UInt8.random(in: 1...255, using: &random)
            case 1 where !bytes.isEmpty: bytes.removeLast(Int.random(in: 1...bytes.count, using: &random))
            case 2: bytes += try Self.randomToken(&random).serializedBytes() // repeated fields: the last wins
            case 3: bytes += [0x48, 0x01] // an unknown field 9
            default: break
            }
            let generic = try? Ballast_V1_TaskToken(serializedBytes: bytes)
            let ours = try? TaskTokenCodec.decode(Data(bytes))
            #expect(ours == generic, "bytes \(bytes)")
            if bytes.withUnsafeBytes({ TaskTokenCodec.decodeCanonical($0) }) != nil { fastPath += 1 }
        }
        #expect(fastPath > 1_000, "well-formed ASCII tokens take the fast path")
    }

    @Test("the word-wise ASCII check finds a high bit at any position of any length")
    func asciiCheck() {
        for length in 0...24 {
            let plain = [UInt8](repeating: 0x7f, count: length)
            #expect(plain.withUnsafeBytes { TaskTokenCodec.isASCII($0) }, "length \(length)")
            for position in 0..<length {
                var bytes = plain
                bytes[position] = 0x80
                #expect(!bytes.withUnsafeBytes { TaskTokenCodec.isASCII($0) }, "length \(length), high bit at \(position)")
            }
        }
    }
}
