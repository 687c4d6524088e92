import BallastSDK
import Logging
import Synchronization
import Testing
import TransfersKit

/// `transfers worker` registers its search attribute before serving; a cluster without a
/// leader at that moment (found by the chaos soak: workers exited at start-up) must be waited
/// out, while a real refusal still stops it.
@Suite("transfers worker start-up: waiting out a cluster without a leader")
struct StartupRetryTests {
    private let logger = Logger(label: "test")

    @Test("UNAVAILABLE and DEADLINE_EXCEEDED are retried with a doubling pause of at most 5 s until the call succeeds")
    func retriesWhileUnavailable() async throws {
        let calls = Mutex(0)
        let pauses = Mutex<[Duration]>([])
        let value = try await TransferServices.retryingWhileUnavailable(logger: logger, sleep: { pause in
            pauses.withLock { $0.append(pause) }
        }) { () async throws(BallastClientError) -> String in
            let call = calls.withLock { $0 += 1; return $0 }
            switch call {
            case 1 ... 5: throw .unavailable(method: "/ballast.v1.WorkflowService/AddSearchAttributes", lastError: "no leader", attempts: 13)
            case 6 ... 7: throw .deadlineExceeded(method: "/ballast.v1.WorkflowService/AddSearchAttributes", attempts: 31)
            default: return "registered"
            }
        }
        #expect(value == "registered")
        #expect(calls.withLock { $0 } == 8)
        #expect(pauses.withLock { $0 } == [.milliseconds(200), .milliseconds(400), .milliseconds(800), .milliseconds(1_600),
                                            .milliseconds(3_200), .seconds(5), .seconds(5)])
    }

    @Test("any other error is final: it is thrown at once, without a retry")
    func otherErrorsAreFinal() async {
        let calls = Mutex(0)
        await #expect(throws: BallastClientError.self) {
            _ = try await TransferServices.retryingWhileUnavailable(logger: logger, sleep: { _ in }) { () async throws(BallastClientError) in
                calls.withLock { $0 += 1 }
                throw .invalidArgument("search attribute TransferOutcome is registered as Int")
            }
        }
        #expect(calls.withLock { $0 } == 1)
    }
}
