import Testing
@testable import TransfersKit

@Suite("simulated correspondent bank")
struct BankTests {
    @Test("decisions are deterministic per seed and transfer, and follow the configured rates")
    func deterministicRates() throws {
        let behavior = BankBehavior(seed: 42, permanentRejectionRate: 0.1, transientFailureRate: 0.2)
        let bank = try CorrespondentBank(behavior: behavior)
        let again = try CorrespondentBank(behavior: behavior)
        let transfers = (0 ..< 5_000).map { "transfer-\($0)" }
        #expect(transfers.map(bank.rejects) == transfers.map(again.rejects))
        let rejected = Double(transfers.filter(bank.rejects).count) / Double(transfers.count)
        #expect(abs(rejected - 0.1) < 0.02, "rejection fraction \(rejected)")
        let transient = Double(transfers.filter { bank.failsTransiently($0, attempt: 1) }.count) / Double(transfers.count)
        #expect(abs(transient - 0.2) < 0.02, "transient fraction \(transient)")
        // Another seed decides differently.
        let other = try CorrespondentBank(behavior: BankBehavior(seed: 43, permanentRejectionRate: 0.1))
        #expect(transfers.map(bank.rejects) != transfers.map(other.rejects))
    }

    @Test("transient failures end after the configured number of attempts")
    func transientFailuresEnd() async throws {
        let bank = try CorrespondentBank(behavior: BankBehavior(seed: 1, transientFailureRate: 1, maximumTransientFailures: 3))
        for attempt in 1 ... 3 {
            await #expect(throws: BankError.transient(transfer: "t", attempt: attempt)) {
                try await bank.instruct(transfer: "t", amount: 5, attempt: attempt)
            }
        }
        let confirmation = try await bank.instruct(transfer: "t", amount: 5, attempt: 4)
        let repeated = try await bank.instruct(transfer: "t", amount: 5, attempt: 9)
        #expect(confirmation == repeated && confirmation.reference.hasPrefix("CB-"))
    }

    @Test("rate 1 rejects every transfer; rate 0 none")
    func extremes() async throws {
        let rejecting = try CorrespondentBank(behavior: BankBehavior(seed: 7, permanentRejectionRate: 1, transientFailureRate: 0))
        await #expect(throws: BankError.self) { try await rejecting.instruct(transfer: "t", amount: 1, attempt: 1) }
        let accepting = try CorrespondentBank(behavior: BankBehavior(seed: 7, permanentRejectionRate: 0, transientFailureRate: 0))
        _ = try await accepting.instruct(transfer: "t", amount: 1, attempt: 1)
    }

    @Test("latency is waited through the injected clock and stays within bounds")
    func latency() async throws {
        let waited = WaitLog()
        let bank = try CorrespondentBank(behavior: BankBehavior(seed: 3, transientFailureRate: 0, latencyMilliseconds: 100)) {
            await waited.add($0)
        }
        _ = try await bank.instruct(transfer: "t-1", amount: 1, attempt: 1)
        let delays = await waited.delays
        #expect(delays.count == 1)
        #expect(delays[0] >= .milliseconds(50) && delays[0] <= .milliseconds(150))
    }

    @Test("invalid behaviors and requests are refused")
    func invalid() async throws {
        #expect(throws: BankError.self) { _ = try CorrespondentBank(behavior: BankBehavior(seed: 1, permanentRejectionRate: 1.5)) }
        #expect(throws: BankError.self) { _ = try CorrespondentBank(behavior: BankBehavior(seed: 1, transientFailureRate: -0.1)) }
        let bank = try CorrespondentBank(behavior: BankBehavior(seed: 1))
        await #expect(throws: BankError.self) { try await bank.instruct(transfer: "", amount: 1, attempt: 1) }
        await #expect(throws: BankError.self) { try await bank.instruct(transfer: "t", amount: 0, attempt: 1) }
    }
}

actor WaitLog {
    var delays: [Duration] = []
    func add(_ delay: Duration) { delays.append(delay) }
}
