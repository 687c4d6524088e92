import Foundation

extension Ledger {
    /// Opens `account` with `initialBalance` unless it exists; true when it was created now.
    @discardableResult
    public func openAccount(_ account: String, initialBalance: Int64) throws(LedgerError) -> Bool {
        try Self.validate(account, "the account id")
        guard initialBalance >= 0, initialBalance <= Self.maximumAmount else { throw .invalidAmount(initialBalance) }
        return try write("opening account \(account)") { database in
            let existing = try database.query("SELECT balance FROM accounts WHERE id = ?", [.text(account)], context: "reading account")
            guard existing.isEmpty else { return false }
            try database.query("INSERT INTO accounts (id, balance) VALUES (?, ?)", [.text(account), .int(initialBalance)],
                               context: "inserting account")
            // The opening balance is the money that entered the ledger: `deposited()` sums it,
            // the reference `transfers verify` checks conservation against.
            try database.query("INSERT INTO deposits (account_id, amount) VALUES (?, ?)", [.text(account), .int(initialBalance)],
                               context: "recording the opening deposit")
            return true
        }
    }

    /// Moves `amount` from `account` into the transfer's in-flight money. Idempotent by `key`.
    public func debit(_ account: String, amount: Int64, transfer: String, idempotencyKey key: String) throws(LedgerError) -> LedgerOperation {
        try apply(.debit, account: account, amount: amount, transfer: transfer, key: key)
    }

    /// Moves `amount` of the transfer's in-flight money to `account` (the recipient). Idempotent by `key`.
    public func credit(_ account: String, amount: Int64, transfer: String, idempotencyKey key: String) throws(LedgerError) -> LedgerOperation {
        try apply(.credit, account: account, amount: amount, transfer: transfer, key: key)
    }

    /// Returns `amount` of the transfer's in-flight money to `account` (the sender). Idempotent by `key`.
    public func refund(_ account: String, amount: Int64, transfer: String, idempotencyKey key: String) throws(LedgerError) -> LedgerOperation {
        try apply(.refund, account: account, amount: amount, transfer: transfer, key: key)
    }

    /// One operation in one immediate transaction: check the key, move the money, record the key.
    func apply(_ kind: LedgerOperationKind, account: String, amount: Int64, transfer: String,
               key: String) throws(LedgerError) -> LedgerOperation {
        try Self.validate(account, "the account id")
        try Self.validate(transfer, "the transfer id")
        try Self.validate(key, "the idempotency key")
        try Self.validate(amount: amount)
        return try write("\(kind.rawValue) \(key)") { database in
            if let existing = try Self.operation(key: key, database) {
                guard existing.kind == kind, existing.accountID == account, existing.amount == amount,
                      existing.transferID == transfer else {
                    throw LedgerError.idempotencyConflict(key: key, existing: "\(existing.kind.rawValue) of \(existing.amount) on \(existing.accountID) for \(existing.transferID)")
                }
                return existing
            }
            let balanceRows = try database.query("SELECT balance FROM accounts WHERE id = ?", [.text(account)], context: "reading balance")
            guard let balance = balanceRows.first?.first?.int else { throw LedgerError.unknownAccount(account) }
            let inFlight = try database.query("SELECT amount FROM in_flight WHERE transfer_id = ?", [.text(transfer)],
                                              context: "reading in-flight").first?.first?.int ?? 0
            let newBalance: Int64
            let newInFlight: Int64
            switch kind {
            case .debit:
                guard balance >= amount else { throw LedgerError.insufficientFunds(account: account, balance: balance, requested: amount) }
                newBalance = balance - amount
                newInFlight = inFlight + amount
            case .credit, .refund:
                guard inFlight >= amount else { throw LedgerError.notInFlight(transfer: transfer, inFlight: inFlight, requested: amount) }
                newBalance = balance + amount
                newInFlight = inFlight - amount
            }
            try database.query("UPDATE accounts SET balance = ? WHERE id = ?", [.int(newBalance), .text(account)], context: "updating balance")
            try database.query("INSERT INTO in_flight (transfer_id, amount) VALUES (?, ?) ON CONFLICT(transfer_id) DO UPDATE SET amount = excluded.amount",
                               [.text(transfer), .int(newInFlight)], context: "updating in-flight")
            try database.query("INSERT INTO operations (idempotency_key, kind, transfer_id, account_id, amount, balance_after) VALUES (?, ?, ?, ?, ?, ?)",
                               [.text(key), .text(kind.rawValue), .text(transfer), .text(account), .int(amount), .int(newBalance)],
                               context: "recording the operation")
            return LedgerOperation(idempotencyKey: key, kind: kind, transferID: transfer, accountID: account, amount: amount,
                                   balanceAfter: newBalance, appliedNow: true)
        }
    }

    static func operation(key: String, _ database: LedgerDatabase) throws -> LedgerOperation? {
        let rows = try database.query("SELECT idempotency_key, kind, transfer_id, account_id, amount, balance_after FROM operations WHERE idempotency_key = ?",
                                      [.text(key)], context: "reading the idempotency key")
        return try rows.first.map(Self.operation(row:))
    }

    static func operation(row: [LedgerDatabase.Column]) throws -> LedgerOperation {
        guard row.count == 6, let key = row[0].text, let kindText = row[1].text, let kind = LedgerOperationKind(rawValue: kindText),
              let transfer = row[2].text, let account = row[3].text, let amount = row[4].int, let balance = row[5].int else {
            throw LedgerError.storage("a corrupt operation row: \(row)", busy: false)
        }
        return LedgerOperation(idempotencyKey: key, kind: kind, transferID: transfer, accountID: account, amount: amount,
                               balanceAfter: balance, appliedNow: false)
    }

    /// The account's balance.
    public func balance(of account: String) throws(LedgerError) -> Int64 {
        try Self.validate(account, "the account id")
        return try read("reading balance") { database in
            guard let balance = try database.query("SELECT balance FROM accounts WHERE id = ?", [.text(account)],
                                                   context: "reading balance").first?.first?.int else {
                throw LedgerError.unknownAccount(account)
            }
            return balance
        }
    }

    /// Balances plus money in flight, read in one snapshot (the `conserved` check compares these).
    public func totals() throws(LedgerError) -> LedgerTotals {
        try read("reading totals") { database in
            let balances = try database.query("SELECT COALESCE(SUM(balance), 0), COUNT(*) FROM accounts", context: "summing balances")
            let inFlight = try database.query("SELECT COALESCE(SUM(amount), 0) FROM in_flight", context: "summing in-flight")
            return LedgerTotals(balances: balances.first?[0].int ?? 0, inFlight: inFlight.first?[0].int ?? 0,
                                accounts: Int(balances.first?[1].int ?? 0))
        }
    }

    /// The money that entered the ledger: the sum of every account's opening balance. Equal to
    /// `totals().total` while only debits, credits and refunds move money.
    public func deposited() throws(LedgerError) -> Int64 {
        try read("reading deposits") { database in
            try database.query("SELECT COALESCE(SUM(amount), 0) FROM deposits", context: "summing deposits").first?[0].int ?? 0
        }
    }

    /// Every transfer's operations, in the order applied (one read for `transfers verify`).
    public func allTransferOperations() throws(LedgerError) -> [String: [LedgerOperation]] {
        try read("reading all operations") { database in
            let rows = try database.query("SELECT idempotency_key, kind, transfer_id, account_id, amount, balance_after FROM operations ORDER BY seq",
                                          context: "reading operations")
            var result: [String: [LedgerOperation]] = [:]
            for row in rows {
                let operation = try Self.operation(row: row)
                result[operation.transferID, default: []].append(operation)
            }
            return result
        }
    }

    /// What a transfer did: its operations in order and what it still has in flight.
    public func record(ofTransfer transfer: String) throws(LedgerError) -> TransferLedgerRecord {
        try Self.validate(transfer, "the transfer id")
        return try read("reading transfer \(transfer)") { database in
            let rows = try database.query("SELECT idempotency_key, kind, transfer_id, account_id, amount, balance_after FROM operations WHERE transfer_id = ? ORDER BY seq",
                                          [.text(transfer)], context: "reading operations")
            let inFlight = try database.query("SELECT amount FROM in_flight WHERE transfer_id = ?", [.text(transfer)],
                                              context: "reading in-flight").first?.first?.int ?? 0
            return TransferLedgerRecord(transferID: transfer, operations: try rows.map(Self.operation(row:)), inFlight: inFlight)
        }
    }

    /// Transfers that still hold money in flight (none once every transfer completed or was refunded).
    public func transfersInFlight(limit: Int = 1000) throws(LedgerError) -> [String: Int64] {
        try read("listing in-flight transfers") { database in
            let rows = try database.query("SELECT transfer_id, amount FROM in_flight WHERE amount > 0 ORDER BY transfer_id LIMIT ?",
                                          [.int(Int64(max(0, limit)))], context: "listing in-flight")
            var result: [String: Int64] = [:]
            for row in rows { if let id = row[0].text, let amount = row[1].int { result[id] = amount } }
            return result
        }
    }
}
