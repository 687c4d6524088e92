import Dispatch
import Foundation
import Synchronization
import Testing
@testable import TransfersKit

/// A fresh ledger file in a temporary directory, removed at the end.
struct TemporaryLedger: ~Copyable {
    let directory: String
    var path: String { directory + "/ledger.sqlite" }

    init() throws {
        directory = NSTemporaryDirectory() + "ballast-ledger-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }
}

@Suite("SQLite ledger")
struct LedgerTests {
    @Test("connections opening one new ledger file at the same moment all succeed (a worker and `transfers start` do)")
    func concurrentOpensOfANewFile() async throws {
        for _ in 0 ..< 20 {
            let file = try TemporaryLedger()
            let path = file.path
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0 ..< 8 { group.addTask { _ = try Ledger(path: path) } }
                try await group.waitForAll()
            }
        }
    }

    @Test("a debit then a credit moves money through in-flight and keeps the total")
    func debitCredit() throws {
        let file = try TemporaryLedger()
        let ledger = try Ledger(path: file.path)
        #expect(try ledger.openAccount("alice", initialBalance: 10_000))
        #expect(try ledger.openAccount("bob", initialBalance: 0))
        let before = try ledger.totals()
        let debit = try ledger.debit("alice", amount: 2_500, transfer: "t-1", idempotencyKey: "t-1/debit")
        #expect(debit.balanceAfter == 7_500 && debit.appliedNow)
        #expect(try ledger.totals().inFlight == 2_500)
        #expect(try ledger.totals().total == before.total)
        _ = try ledger.credit("bob", amount: 2_500, transfer: "t-1", idempotencyKey: "t-1/credit")
        #expect(try ledger.balance(of: "bob") == 2_500)
        let after = try ledger.totals()
        #expect(after.inFlight == 0 && after.total == before.total && after.total == 10_000)
        let record = try ledger.record(ofTransfer: "t-1")
        #expect(record.operations.map(\.kind) == [.debit, .credit] && record.inFlight == 0)
    }

    @Test("a retried debit with the same idempotency key is applied once and returns the first record")
    func idempotentRetry() throws {
        let file = try TemporaryLedger()
        let ledger = try Ledger(path: file.path)
        try ledger.openAccount("alice", initialBalance: 1_000)
        let first = try ledger.debit("alice", amount: 300, transfer: "t-1", idempotencyKey: "ns/wf/run/1")
        for _ in 0 ..< 5 {
            let again = try ledger.debit("alice", amount: 300, transfer: "t-1", idempotencyKey: "ns/wf/run/1")
            #expect(!again.appliedNow && again.balanceAfter == first.balanceAfter)
        }
        #expect(try ledger.balance(of: "alice") == 700)
        #expect(try ledger.record(ofTransfer: "t-1").operations.count == 1)
        // Reopening the file sees the same state (the key is durable, not in memory).
        let reopened = try Ledger(path: file.path)
        #expect(try !reopened.debit("alice", amount: 300, transfer: "t-1", idempotencyKey: "ns/wf/run/1").appliedNow)
        #expect(try reopened.balance(of: "alice") == 700)
    }

    @Test("a key reused for a different operation is refused and changes nothing")
    func idempotencyConflict() throws {
        let file = try TemporaryLedger()
        let ledger = try Ledger(path: file.path)
        try ledger.openAccount("alice", initialBalance: 1_000)
        _ = try ledger.debit("alice", amount: 300, transfer: "t-1", idempotencyKey: "k")
        #expect(throws: LedgerError.self) { try ledger.debit("alice", amount: 301, transfer: "t-1", idempotencyKey: "k") }
        #expect(try ledger.balance(of: "alice") == 700)
    }

    @Test("a refund returns in-flight money; over-refunding and over-debiting are refused")
    func refundAndLimits() throws {
        let file = try TemporaryLedger()
        let ledger = try Ledger(path: file.path)
        try ledger.openAccount("alice", initialBalance: 500)
        #expect(throws: LedgerError.insufficientFunds(account: "alice", balance: 500, requested: 501)) {
            try ledger.debit("alice", amount: 501, transfer: "t-1", idempotencyKey: "a")
        }
        _ = try ledger.debit("alice", amount: 400, transfer: "t-1", idempotencyKey: "b")
        #expect(throws: LedgerError.notInFlight(transfer: "t-1", inFlight: 400, requested: 401)) {
            try ledger.refund("alice", amount: 401, transfer: "t-1", idempotencyKey: "c")
        }
        _ = try ledger.refund("alice", amount: 400, transfer: "t-1", idempotencyKey: "c")
        _ = try ledger.refund("alice", amount: 400, transfer: "t-1", idempotencyKey: "c")
        #expect(try ledger.balance(of: "alice") == 500)
        #expect(try ledger.totals() == LedgerTotals(balances: 500, inFlight: 0, accounts: 1))
        #expect(try ledger.transfersInFlight().isEmpty)
    }

    @Test("bad input gets a clear error and changes nothing")
    func badInput() throws {
        let file = try TemporaryLedger()
        let ledger = try Ledger(path: file.path)
        try ledger.openAccount("alice", initialBalance: 100)
        #expect(throws: LedgerError.invalidAmount(0)) { try ledger.debit("alice", amount: 0, transfer: "t", idempotencyKey: "k") }
        #expect(throws: LedgerError.invalidAmount(-5)) { try ledger.credit("alice", amount: -5, transfer: "t", idempotencyKey: "k") }
        #expect(throws: LedgerError.invalidAmount(Int64.max)) { try ledger.debit("alice", amount: .max, transfer: "t", idempotencyKey: "k") }
        #expect(throws: LedgerError.unknownAccount("nobody")) { try ledger.debit("nobody", amount: 1, transfer: "t", idempotencyKey: "k") }
        #expect(throws: LedgerError.self) { try ledger.debit("", amount: 1, transfer: "t", idempotencyKey: "k") }
        #expect(throws: LedgerError.self) { try ledger.debit("alice", amount: 1, transfer: "t", idempotencyKey: "") }
        #expect(throws: LedgerError.self) { try ledger.openAccount("x", initialBalance: -1) }
        // SQL metacharacters are data, not SQL.
        try ledger.openAccount("'); DROP TABLE accounts; --", initialBalance: 1)
        #expect(try ledger.totals() == LedgerTotals(balances: 101, inFlight: 0, accounts: 2))
        #expect(try ledger.record(ofTransfer: "t").operations.isEmpty)
    }

    @Test("a file that is not a database is refused with a storage error")
    func notADatabase() throws {
        let file = try TemporaryLedger()
        try Data(repeating: 0x42, count: 4096).write(to: URL(fileURLWithPath: file.path))
        #expect(throws: LedgerError.self) { _ = try Ledger(path: file.path) }
    }

    @Test("two connections writing concurrently apply every operation once and conserve money")
    func concurrentConnections() async throws {
        let file = try TemporaryLedger()
        let setup = try Ledger(path: file.path)
        for index in 0 ..< 4 { try setup.openAccount("acct-\(index)", initialBalance: 1_000_000) }
        let total = try setup.totals().total
        // Two separate connections (as two worker processes would have), each retrying every
        // operation twice: every debit/credit pair must apply once.
        let first = try Ledger(path: file.path)
        let second = try Ledger(path: file.path)
        // Each connection writes from its own thread (LedgerExecutor), as activities do, so the
        // blocking SQLite calls never hold the test runner's cooperative threads.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for ledger in [first, second] {
                let executor = LedgerExecutor(ledger: ledger)
                group.addTask {
                    for number in 0 ..< 100 {
                        let transfer = "t-\(number)"
                        let from = "acct-\(number % 4)"
                        let to = "acct-\((number + 1) % 4)"
                        for _ in 0 ..< 2 {
                            _ = try await executor.run { ledger throws(LedgerError) in
                                try ledger.debit(from, amount: 10, transfer: transfer, idempotencyKey: "\(transfer)/debit")
                            }
                            _ = try await executor.run { ledger throws(LedgerError) in
                                try ledger.credit(to, amount: 10, transfer: transfer, idempotencyKey: "\(transfer)/credit")
                            }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let totals = try setup.totals()
        #expect(totals.total == total && totals.inFlight == 0)
        for number in [0, 57, 99] {
            #expect(try setup.record(ofTransfer: "t-\(number)").operations.count == 2)
        }
    }

    @Test("a batch commits its operations together; one that is refused rolls back only itself")
    func batchIsolatesOperations() throws {
        let file = try TemporaryLedger()
        let ledger = try Ledger(path: file.path)
        try ledger.openAccount("alice", initialBalance: 1_000)
        try ledger.openAccount("bob", initialBalance: 0)
        let other = try Ledger(path: file.path)
        nonisolated(unsafe) var outcomes: [String] = []
        let failure = ledger.batch([
            { ledger in outcomes.append((try? ledger.debit("alice", amount: 400, transfer: "t-1", idempotencyKey: "t-1/debit")) != nil ? "ok" : "refused") },
            // More than is left after the first: refused, and its partial work undone.
            { ledger in outcomes.append((try? ledger.debit("alice", amount: 700, transfer: "t-2", idempotencyKey: "t-2/debit")) != nil ? "ok" : "refused") },
            // The first debit again (a retried activity in the same batch): applied once.
            { ledger in
                let again = try? ledger.debit("alice", amount: 400, transfer: "t-1", idempotencyKey: "t-1/debit")
                outcomes.append(again.map { $0.appliedNow ? "applied twice" : "ok" } ?? "refused")
            },
            { ledger in outcomes.append((try? ledger.credit("bob", amount: 400, transfer: "t-1", idempotencyKey: "t-1/credit")) != nil ? "ok" : "refused") },
            // A read inside the batch sees the batch's own writes.
            { ledger in outcomes.append((try? ledger.record(ofTransfer: "t-1").operations.count) == 2 ? "ok" : "unseen") },
        ])
        #expect(failure == nil)
        #expect(outcomes == ["ok", "refused", "ok", "ok", "ok"])
        // Committed: another connection sees it all, and nothing of the refused debit.
        #expect(try other.balance(of: "alice") == 600 && other.balance(of: "bob") == 400)
        #expect(try other.record(ofTransfer: "t-2").operations.isEmpty)
        #expect(try other.totals() == LedgerTotals(balances: 1_000, inFlight: 0, accounts: 2))
    }

    @Test("a batch whose transaction SQLite ended by itself runs nothing more and reports the failure for all")
    func batchStopsWhenTheTransactionIsGone() throws {
        let file = try TemporaryLedger()
        let ledger = try Ledger(path: file.path)
        try ledger.openAccount("alice", initialBalance: 1_000)
        nonisolated(unsafe) var ran: [String] = []
        let failure = ledger.batch([
            { ledger in ran.append((try? ledger.debit("alice", amount: 100, transfer: "t-1", idempotencyKey: "t-1/debit")) != nil ? "t-1" : "x") },
            // As SQLite does after a full disk or an I/O error: the whole transaction is gone.
            { ledger in try? ledger.executeForTesting("ROLLBACK"); ran.append("rollback") },
            { ledger in ran.append((try? ledger.debit("alice", amount: 100, transfer: "t-2", idempotencyKey: "t-2/debit")) != nil ? "t-2" : "x") },
        ])
        #expect(failure != nil, "the batch failed")
        #expect(ran == ["t-1", "rollback"], "nothing ran after the transaction was gone")
        #expect(try ledger.balance(of: "alice") == 1_000, "the first debit went with the transaction")
        #expect(try ledger.record(ofTransfer: "t-1").operations.isEmpty && ledger.record(ofTransfer: "t-2").operations.isEmpty)
        // The ledger goes on: the next operation works.
        #expect(try ledger.debit("alice", amount: 100, transfer: "t-1", idempotencyKey: "t-1/debit").balanceAfter == 900)
    }

    @Test("operations queued on the executor while a batch is written share the next one, each with its own outcome")
    func executorBatchesConcurrentOperations() async throws {
        let file = try TemporaryLedger()
        let ledger = try Ledger(path: file.path)
        for index in 0 ..< 8 { try ledger.openAccount("acct-\(index)", initialBalance: 100) }
        let executor = LedgerExecutor(ledger: ledger, maxBatch: 16)
        // 200 debits at once, 8 accounts of 100: exactly 10 debits of 10 fit per account.
        let results = try await withThrowingTaskGroup(of: Bool.self) { group in
            for number in 0 ..< 200 {
                group.addTask {
                    do throws(LedgerError) {
                        _ = try await executor.run { ledger throws(LedgerError) in
                            try ledger.debit("acct-\(number % 8)", amount: 10, transfer: "t-\(number)", idempotencyKey: "t-\(number)/debit")
                        }
                        return true
                    } catch {
                        guard case .insufficientFunds = error else { throw error }
                        return false
                    }
                }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results.count(where: { $0 }) == 80)
        let totals = try ledger.totals()
        #expect(totals.balances == 0 && totals.inFlight == 800)
        for index in 0 ..< 8 { #expect(try ledger.balance(of: "acct-\(index)") == 0) }
    }

    @Test("operations that arrive while a batch is being written go together into the next, up to the limit")
    func executorGroupsWaitingOperations() async throws {
        let file = try TemporaryLedger()
        let ledger = try Ledger(path: file.path)
        try ledger.openAccount("alice", initialBalance: 1_000)
        let executor = LedgerExecutor(ledger: ledger, maxBatch: 16)
        let gate = DispatchSemaphore(value: 0)
        let holding = Mutex(false)
        // The first operation holds the ledger's thread until 20 more are queued behind it.
        let first = Task {
            try await executor.run { ledger throws(LedgerError) in
                holding.withLock { $0 = true }
                gate.wait()
                return try ledger.debit("alice", amount: 1, transfer: "t-0", idempotencyKey: "t-0/debit").balanceAfter
            }
        }
        // Generous: the tasks below need a thread of the task pool, and this process's
        // CPU-bound property tests can hold both of a 2-core machine's for tens of seconds.
        let deadline = ContinuousClock.now + .seconds(120)
        while !holding.withLock({ $0 }), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(1)) }
        let others = (1 ... 20).map { number in
            Task {
                try await executor.run { ledger throws(LedgerError) in
                    try ledger.debit("alice", amount: 1, transfer: "t-\(number)", idempotencyKey: "t-\(number)/debit").balanceAfter
                }
            }
        }
        while executor.queuedCount < 20, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(1)) }
        #expect(executor.queuedCount == 20)
        gate.signal()
        #expect(try await first.value == 999)
        var balances: [Int64] = []
        for task in others { balances.append(try await task.value) }
        #expect(balances.sorted() == Array(979 ... 998), "each applied once, after the first")
        #expect(executor.batchesWritten == 3, "the first alone, then 16, then 4")
    }
}
