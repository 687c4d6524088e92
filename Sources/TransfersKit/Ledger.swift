import Foundation

/// Why a ledger operation was refused. Business refusals (insufficient funds, unknown
/// account) are permanent; `storage` with `isBusy` is worth retrying.
public enum LedgerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The amount is zero, negative or too large.
    case invalidAmount(Int64)
    /// An id or idempotency key is empty or too long.
    case invalidIdentifier(String)
    /// No such account.
    case unknownAccount(String)
    /// The account would go negative.
    case insufficientFunds(account: String, balance: Int64, requested: Int64)
    /// A credit or refund asks for more than the transfer has in flight.
    case notInFlight(transfer: String, inFlight: Int64, requested: Int64)
    /// The idempotency key was already used for a different operation.
    case idempotencyConflict(key: String, existing: String)
    /// SQLite failed (`busy`: another process held the lock past the busy timeout).
    case storage(String, busy: Bool)

    /// What happened.
    public var description: String {
        switch self {
        case .invalidAmount(let amount): "invalid amount \(amount): must be 1 to \(Ledger.maximumAmount) minor units"
        case .invalidIdentifier(let why): "invalid identifier: \(why)"
        case .unknownAccount(let id): "no account '\(id)'"
        case .insufficientFunds(let account, let balance, let requested):
            "account '\(account)' has \(balance), cannot debit \(requested)"
        case .notInFlight(let transfer, let inFlight, let requested):
            "transfer '\(transfer)' has \(inFlight) in flight, cannot release \(requested)"
        case .idempotencyConflict(let key, let existing): "idempotency key '\(key)' was already used for \(existing)"
        case .storage(let why, _): "ledger storage: \(why)"
        }
    }

    /// Whether retrying later may succeed.
    public var isTransient: Bool { if case .storage(_, let busy) = self { busy } else { false } }
}

/// The kinds of money movement.
public enum LedgerOperationKind: String, Sendable, Codable, CaseIterable {
    /// Sender → in flight.
    case debit
    /// In flight → recipient.
    case credit
    /// In flight → back to the sender.
    case refund
}

/// One applied operation, as recorded.
public struct LedgerOperation: Sendable, Equatable, Codable {
    /// The operation's idempotency key.
    public var idempotencyKey: String
    /// Debit, credit or refund.
    public var kind: LedgerOperationKind
    /// The transfer it belongs to.
    public var transferID: String
    /// The account debited or credited.
    public var accountID: String
    /// Minor units.
    public var amount: Int64
    /// The account's balance right after the operation.
    public var balanceAfter: Int64
    /// False when this call found the operation already applied (a retry).
    public var appliedNow: Bool
}

/// Money in the ledger: balances plus what transfers have in flight.
public struct LedgerTotals: Sendable, Equatable, Codable {
    /// Sum of all balances.
    public var balances: Int64
    /// Debited and not yet credited or refunded.
    public var inFlight: Int64
    /// Number of accounts.
    public var accounts: Int
    /// `balances + inFlight`: constant under debits, credits and refunds.
    public var total: Int64 { balances + inFlight }
}

/// What one transfer did to the ledger.
public struct TransferLedgerRecord: Sendable, Equatable, Codable {
    /// The transfer.
    public var transferID: String
    /// Its operations, in the order applied.
    public var operations: [LedgerOperation]
    /// What it still has in flight.
    public var inFlight: Int64
}

/// The money-transfer example's ledger: accounts with balances in minor units in a SQLite
/// database file (WAL mode) that several worker processes share. Every operation runs in one
/// `BEGIN IMMEDIATE` transaction that also writes its idempotency key, so a retried debit,
/// credit or refund is applied exactly once; a retry returns the first application's record.
public final class Ledger: @unchecked Sendable {
    /// The largest amount of one operation (10^15 minor units): sums of many stay far from Int64's limit.
    public static let maximumAmount: Int64 = 1_000_000_000_000_000
    /// The database file.
    public let path: String
    // The connection is used by one thread at a time: every use holds `lock` (hence the
    // unchecked Sendable). Other processes are serialized by SQLite's own file locks. The lock
    // is recursive so that the operations of a `batch` take it again on the batch's thread;
    // `batching` is read and written only with the lock held.
    private let database: LedgerDatabase
    private let lock = NSRecursiveLock()
    private var batching = false

    /// Opens (creating if needed) the ledger at `path`; waits up to `busyTimeout` for another
    /// process's write lock before an operation fails with a busy storage error.
    public init(path: String, busyTimeout: Duration = .seconds(10)) throws(LedgerError) {
        self.path = path
        let milliseconds = Int32(clamping: busyTimeout.components.seconds * 1000 + busyTimeout.components.attoseconds / 1_000_000_000_000_000)
        do {
            let database = try LedgerDatabase(path: path, busyTimeoutMilliseconds: milliseconds)
            try database.execute(Self.schema, context: "creating the schema")
            self.database = database
        } catch {
            throw .storage(error.description, busy: error.isBusy)
        }
    }

    static let schema = """
        CREATE TABLE IF NOT EXISTS accounts (
            id TEXT PRIMARY KEY,
            balance INTEGER NOT NULL CHECK (balance >= 0)
        );
        CREATE TABLE IF NOT EXISTS operations (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            idempotency_key TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            transfer_id TEXT NOT NULL,
            account_id TEXT NOT NULL REFERENCES accounts(id),
            amount INTEGER NOT NULL CHECK (amount > 0),
            balance_after INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS operations_by_transfer ON operations(transfer_id);
        CREATE TABLE IF NOT EXISTS deposits (
            account_id TEXT PRIMARY KEY REFERENCES accounts(id),
            amount INTEGER NOT NULL CHECK (amount >= 0)
        );
        CREATE TABLE IF NOT EXISTS in_flight (
            transfer_id TEXT PRIMARY KEY,
            amount INTEGER NOT NULL CHECK (amount >= 0)
        );
        """

    /// Runs `operations` in one transaction, so they share one commit and its fsync (group
    /// commit), each operation in its own savepoint: one that throws (insufficient funds, a
    /// bad row) rolls back only its own changes. Returns nil once everything is committed, or
    /// the error that stopped the transaction from starting or committing — then nothing of
    /// it was written, and every operation's outcome must be taken as that error.
    func batch(_ operations: [(Ledger) -> Void]) -> LedgerError? {
        lock.lock()
        defer { lock.unlock() }
        precondition(!batching, "batches do not nest")
        do {
            try database.execute("BEGIN IMMEDIATE", context: "starting a batch")
        } catch {
            return .storage(error.description, busy: error.isBusy)
        }
        batching = true
        for operation in operations {
            // After some errors SQLite rolls the whole transaction back by itself: what ran is
            // gone, and anything more would run outside the batch. Stop and fail the batch.
            guard database.inTransaction else { break }
            operation(self)
        }
        batching = false
        guard database.inTransaction else {
            return .storage("SQLite rolled back the batch's transaction after an error; nothing of it was written", busy: false)
        }
        do {
            try database.execute("COMMIT", context: "committing a batch")
            return nil
        } catch {
            try? database.execute("ROLLBACK", context: "rolling back a batch")
            return .storage(error.description, busy: error.isBusy)
        }
    }

    /// Runs raw SQL on the connection (tests: to end a batch's transaction the way SQLite does
    /// after an I/O error).
    func executeForTesting(_ sql: String) throws {
        lock.lock()
        defer { lock.unlock() }
        try database.execute(sql, context: "test")
    }

    /// Runs `body` on the connection inside an immediate transaction (inside a `batch`: a
    /// savepoint of the batch's transaction), mapping errors.
    func write<T>(_ context: String, _ body: (LedgerDatabase) throws -> T) throws(LedgerError) -> T {
        do {
            lock.lock()
            defer { lock.unlock() }
            if batching { return try database.savepoint(context) { try body(database) } }
            return try database.immediateTransaction(context) { try body(database) }
        } catch let error as LedgerError {
            throw error
        } catch let error as SQLiteError {
            throw .storage(error.description, busy: error.isBusy)
        } catch {
            throw .storage("\(context): \(error)", busy: false)
        }
    }

    /// Reads inside a transaction (a consistent snapshot across tables).
    func read<T>(_ context: String, _ body: (LedgerDatabase) throws -> T) throws(LedgerError) -> T {
        do {
            lock.lock()
            defer { lock.unlock() }
            if batching { return try body(database) }  // the batch's transaction is the snapshot
            try database.execute("BEGIN", context: context)
            defer { try? database.execute("COMMIT", context: context) }
            return try body(database)
        } catch let error as LedgerError {
            throw error
        } catch let error as SQLiteError {
            throw .storage(error.description, busy: error.isBusy)
        } catch {
            throw .storage("\(context): \(error)", busy: false)
        }
    }

    static func validate(_ value: String, _ what: String) throws(LedgerError) {
        guard !value.isEmpty, value.utf8.count <= 512 else { throw .invalidIdentifier("\(what) must be 1-512 bytes") }
        guard !value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw .invalidIdentifier("\(what) contains control characters")
        }
    }

    static func validate(amount: Int64) throws(LedgerError) {
        guard amount > 0, amount <= maximumAmount else { throw .invalidAmount(amount) }
    }
}
