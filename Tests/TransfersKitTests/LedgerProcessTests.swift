import Foundation
import Testing
@testable import TransfersKit

/// A `sqlite3` shell process on the same database file: another process sharing the ledger.
final class SQLiteShell: @unchecked Sendable {
    let process = Process()
    let input = Pipe()
    let output = Pipe()

    init(path: String) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        process.arguments = ["-batch", path]
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
    }

    /// Sends SQL, then waits until the shell printed `marker` (so the SQL has run).
    func run(_ sql: String, marker: String) throws -> String {
        input.fileHandleForWriting.write(Data("\(sql)\nSELECT '\(marker)';\n".utf8))
        var seen = ""
        while !seen.contains(marker) {
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else { break }
            seen += String(decoding: chunk, as: UTF8.self)
        }
        return seen
    }

    func finish() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}

@Suite("SQLite ledger shared with another process",
       .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/sqlite3"), "needs the sqlite3 shell (Debian sqlite3)"))
struct LedgerProcessTests {
    @Test("another process's write lock makes an operation wait (busy timeout) or fail as transient, never apply twice")
    func writeLockOfAnotherProcess() async throws {
        let file = try TemporaryLedger()
        let ledger = try Ledger(path: file.path, busyTimeout: .milliseconds(100))
        try ledger.openAccount("alice", initialBalance: 1_000)
        let shell = try SQLiteShell(path: file.path)
        defer { shell.finish() }
        // The other process sees the ledger's WAL-mode database and holds the write lock.
        let mode = try shell.run("PRAGMA journal_mode;", marker: "ready-1")
        #expect(mode.contains("wal"), "\(mode)")
        _ = try shell.run("BEGIN IMMEDIATE; UPDATE accounts SET balance = balance + 500 WHERE id = 'alice';", marker: "locked")
        do {
            _ = try ledger.debit("alice", amount: 100, transfer: "t-1", idempotencyKey: "k-1")
            Issue.record("the debit must not get the lock another process holds")
        } catch {
            #expect(error.isTransient, "\(error)")
        }
        #expect(try ledger.record(ofTransfer: "t-1").operations.isEmpty, "the refused debit changed nothing")

        // With a longer busy timeout the debit waits for the other process's commit, then applies
        // on top of its write.
        let patient = try Ledger(path: file.path, busyTimeout: .seconds(30))
        let executor = LedgerExecutor(ledger: patient)
        let debit = Task {
            try await executor.run { ledger throws(LedgerError) in
                try ledger.debit("alice", amount: 100, transfer: "t-1", idempotencyKey: "k-1")
            }
        }
        _ = try shell.run("COMMIT;", marker: "committed")
        let applied = try await debit.value
        #expect(applied.appliedNow && applied.balanceAfter == 1_400)
        // The other process sees the debit and its idempotency key.
        let seen = try shell.run("SELECT balance FROM accounts WHERE id = 'alice'; SELECT COUNT(*) FROM operations WHERE idempotency_key = 'k-1';",
                                 marker: "read")
        #expect(seen.contains("1400") && seen.split(separator: "\n").contains("1"), "\(seen)")
        #expect(try ledger.totals() == LedgerTotals(balances: 1_400, inFlight: 100, accounts: 1))
    }
}
