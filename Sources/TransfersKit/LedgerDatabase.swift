import CSQLite
import Foundation

/// A SQLite error with the statement and SQLite's own message.
public struct SQLiteError: Error, Sendable, CustomStringConvertible {
    /// SQLite's primary result code (e.g. SQLITE_BUSY = 5).
    public var code: Int32
    /// SQLite's message.
    public var message: String
    /// What the ledger was doing.
    public var context: String

    /// Whether another connection held the database past the busy timeout (retry later).
    public var isBusy: Bool { code & 0xFF == SQLITE_BUSY || code & 0xFF == SQLITE_LOCKED }

    /// `context: message (code N)`.
    public var description: String { "\(context): \(message) (SQLite code \(code))" }
}

/// One SQLite connection (not thread-safe: the ledger guards it with a mutex).
final class LedgerDatabase {
    private(set) var handle: OpaquePointer?
    let path: String
    private var statements: [String: OpaquePointer] = [:]

    /// Opens (creating if needed) the database at `path` in WAL mode with a busy timeout.
    init(path: String, busyTimeoutMilliseconds: Int32) throws(SQLiteError) {
        self.path = path
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let code = sqlite3_open_v2(path, &handle, flags, nil)
        guard code == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot allocate a connection"
            sqlite3_close_v2(handle)
            throw SQLiteError(code: code, message: message, context: "opening \(path)")
        }
        self.handle = handle
        sqlite3_busy_timeout(handle, busyTimeoutMilliseconds)
        sqlite3_extended_result_codes(handle, 1)
        // WAL: readers never block the writer and several processes share the file. synchronous
        // FULL: a committed operation survives a power cut, not only a process crash.
        // Switching a new file to WAL takes an exclusive lock, and while another connection is
        // opening the same new file SQLite answers SQLITE_BUSY at once, without the busy handler
        // (a worker and `transfers start` started together hit this): retry until the busy
        // timeout has passed.
        let deadline = ContinuousClock.now + .milliseconds(Int(busyTimeoutMilliseconds))
        while true {
            do throws(SQLiteError) {
                try execute("PRAGMA journal_mode=WAL", context: "enabling WAL")
                break
            } catch where error.isBusy && ContinuousClock.now < deadline {
                usleep(2_000)
            }
        }
        try execute("PRAGMA synchronous=FULL", context: "setting synchronous")
        try execute("PRAGMA foreign_keys=ON", context: "enabling foreign keys")
    }

    deinit {
        for statement in statements.values { sqlite3_finalize(statement) }
        sqlite3_close_v2(handle)
    }

    /// Runs SQL without results (several statements allowed).
    func execute(_ sql: String, context: String) throws(SQLiteError) {
        var error: UnsafeMutablePointer<CChar>?
        let code = sqlite3_exec(handle, sql, nil, nil, &error)
        guard code == SQLITE_OK else {
            let message = error.map { String(cString: $0) } ?? lastMessage
            sqlite3_free(error)
            throw SQLiteError(code: code, message: message, context: context)
        }
    }

    var lastMessage: String { handle.map { String(cString: sqlite3_errmsg($0)) } ?? "no connection" }

    /// A value bound to a statement parameter.
    enum Value {
        case text(String)
        case int(Int64)
    }

    /// Runs one statement (cached) with `bindings`; returns every row as columns of Int64 or String.
    @discardableResult
    func query(_ sql: String, _ bindings: [Value] = [], context: String) throws(SQLiteError) -> [[Column]] {
        let statement = try prepared(sql, context: context)
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        for (index, value) in bindings.enumerated() {
            let position = Int32(index + 1)
            let code: Int32 = switch value {
            case .int(let number): sqlite3_bind_int64(statement, position, number)
            case .text(let text): sqlite3_bind_text(statement, position, text, -1, Self.transient)
            }
            guard code == SQLITE_OK else { throw SQLiteError(code: code, message: lastMessage, context: context) }
        }
        var rows: [[Column]] = []
        while true {
            let code = sqlite3_step(statement)
            if code == SQLITE_DONE { return rows }
            guard code == SQLITE_ROW else { throw SQLiteError(code: code, message: lastMessage, context: context) }
            var row: [Column] = []
            for column in 0 ..< sqlite3_column_count(statement) {
                switch sqlite3_column_type(statement, column) {
                case SQLITE_INTEGER: row.append(.int(sqlite3_column_int64(statement, column)))
                case SQLITE_NULL: row.append(.null)
                default:
                    let text = sqlite3_column_text(statement, column).map { String(cString: $0) } ?? ""
                    row.append(.text(text))
                }
            }
            rows.append(row)
        }
    }

    /// A column of a result row.
    enum Column: Equatable {
        case int(Int64)
        case text(String)
        case null

        var int: Int64? { if case .int(let value) = self { value } else { nil } }
        var text: String? { if case .text(let value) = self { value } else { nil } }
    }

    private func prepared(_ sql: String, context: String) throws(SQLiteError) -> OpaquePointer {
        if let statement = statements[sql] { return statement }
        var statement: OpaquePointer?
        let code = sqlite3_prepare_v2(handle, sql, -1, &statement, nil)
        guard code == SQLITE_OK, let statement else {
            throw SQLiteError(code: code, message: lastMessage, context: "\(context) (preparing)")
        }
        statements[sql] = statement
        return statement
    }

    /// Whether a transaction is open. SQLite ends one by itself after some errors (a full
    /// disk, an I/O error), which a batch must notice before running anything more.
    var inTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    /// Runs `body` inside a savepoint of the open transaction: when it throws, only its own
    /// changes are rolled back and the transaction goes on.
    func savepoint<T>(_ context: String, _ body: () throws -> T) throws -> T {
        try execute("SAVEPOINT operation", context: "\(context): opening a savepoint")
        do {
            let value = try body()
            try execute("RELEASE operation", context: "\(context): releasing the savepoint")
            return value
        } catch {
            try? execute("ROLLBACK TO operation", context: "\(context): rolling back to the savepoint")
            try? execute("RELEASE operation", context: "\(context): releasing the savepoint")
            throw error
        }
    }

    /// Runs `body` inside BEGIN IMMEDIATE … COMMIT (the write lock is taken up front, so two
    /// writers never deadlock upgrading a read lock); rolls back when `body` throws.
    func immediateTransaction<T>(_ context: String, _ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE", context: "\(context): starting a transaction")
        do {
            let value = try body()
            try execute("COMMIT", context: "\(context): committing")
            return value
        } catch {
            try? execute("ROLLBACK", context: "\(context): rolling back")
            throw error
        }
    }

    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
}
