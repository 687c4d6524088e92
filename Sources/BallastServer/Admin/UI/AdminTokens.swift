import Foundation
import Logging
import Synchronization

/// Why an admin tokens file was refused: the file and line, and what is wrong.
public struct AdminTokensFileError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file's path.
    public let path: String
    /// The 1-based line number (0: the file as a whole).
    public let line: Int
    /// What is wrong and what to write instead.
    public let reason: String

    public var description: String { line > 0 ? "\(path):\(line): \(reason)" : "\(path): \(reason)" }
}

/// The web UI's bearer tokens, each bound to the identity its holder acts as (docs/security.md,
/// "Admin UI tokens"). A pure value: parsing and lookup, no I/O.
///
/// The `--admin-tokens FILE` format: one `IDENTITY TOKEN` per line, separated by spaces or tabs;
/// `#` starts a comment; blank lines are ignored. An identity may have several tokens (rotation:
/// add the new one, reload, hand it out, remove the old one); a token names exactly one identity.
///
///     # identity         token (at least 32 printable characters)
///     alice@example.com  4f0c0b6e0d6a4a1c9a7e1f8e2b3c4d5e6f708192
///     oncall-bot         mKq3Vd0Jx8sX1p5rT9wZ2yB6nC4hL7aE
public struct AdminTokens: Sendable, Equatable {
    /// Shortest token accepted: 32 characters (at least 128 bits when drawn from hex digits).
    public static let minTokenBytes = 32
    /// Longest token accepted.
    public static let maxTokenBytes = 1_024
    /// Longest identity (the same bound as a role binding's identity).
    public static let maxIdentityBytes = 256
    /// Most lines a tokens file may have.
    public static let maxLines = 10_000
    /// Largest file read.
    public static let maxFileBytes = 1 << 20

    /// The identity that the single shared `--admin-token` stands for.
    public static let sharedTokenIdentity = "admin-token"

    private struct Binding: Sendable, Equatable {
        var token: [UInt8]
        var identity: String
    }

    private var bindings: [Binding] = []

    /// No tokens.
    public init() {}

    /// How many tokens are bound.
    public var count: Int { bindings.count }
    /// Whether no token is bound.
    public var isEmpty: Bool { bindings.isEmpty }
    /// The identities that hold a token, sorted, each once.
    public var identities: [String] { Array(Set(bindings.map(\.identity))).sorted() }

    /// The identity bound to `presented`, or nil. Every binding is compared, each in constant
    /// time, so the time taken does not say which token or how much of one matched.
    public func identity(for presented: String) -> String? {
        let bytes = Array(presented.utf8)
        var found: String?
        for binding in bindings where AdminAuthorization.constantTimeEquals(bytes, binding.token) {
            found = found ?? binding.identity
        }
        return found
    }

    /// Parses tokens-file text; an error names the line.
    public static func parse(_ text: String, path: String) throws(AdminTokensFileError) -> AdminTokens {
        var tokens = AdminTokens()
        var seen: [String: Int] = [:]
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count <= maxLines else { throw AdminTokensFileError(path: path, line: 0, reason: "more than \(maxLines) lines") }
        for (offset, rawLine) in lines.enumerated() {
            let number = offset + 1
            func refuse(_ reason: String) -> AdminTokensFileError { AdminTokensFileError(path: path, line: number, reason: reason) }
            let content = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = content.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
            if fields.isEmpty { continue }
            guard fields.count == 2 else { throw refuse("expected `IDENTITY TOKEN`, found \(fields.count) field\(fields.count == 1 ? "" : "s")") }
            let (identity, token) = (fields[0], fields[1])
            guard identity.utf8.count <= maxIdentityBytes,
                  !identity.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
                throw refuse("the identity is over \(maxIdentityBytes) bytes or contains control characters")
            }
            guard token.utf8.count >= minTokenBytes else {
                throw refuse("the token of \(identity) is \(token.utf8.count) characters; tokens need at least \(minTokenBytes) "
                    + "(e.g. `openssl rand -hex 24`)")
            }
            guard token.utf8.count <= maxTokenBytes, token.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
                throw refuse("a token is at most \(maxTokenBytes) printable ASCII characters without spaces")
            }
            if let first = seen[token] { throw refuse("this token is already bound on line \(first): a token names one identity") }
            seen[token] = number
            tokens.bindings.append(Binding(token: Array(token.utf8), identity: identity))
        }
        return tokens
    }

    /// Reads and validates a tokens file; the warnings say what to fix without refusing it (a
    /// file that others on the machine can read).
    public static func load(path: String) throws(AdminTokensFileError) -> (tokens: AdminTokens, warnings: [String]) {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
              let data = FileManager.default.contents(atPath: path) else {
            throw AdminTokensFileError(path: path, line: 0, reason: "cannot read the file")
        }
        guard data.count <= maxFileBytes else { throw AdminTokensFileError(path: path, line: 0, reason: "the file is over 1 MiB") }
        guard let text = String(data: data, encoding: .utf8) else {
            throw AdminTokensFileError(path: path, line: 0, reason: "the file is not UTF-8 text")
        }
        let tokens = try parse(text, path: path)
        var warnings: [String] = []
        if let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue, mode & 0o007 != 0 {
            warnings.append("\(path) is readable or writable by every user (mode \(String(mode, radix: 8))): "
                + "anyone on this machine can act with its tokens; chmod 600 it")
        }
        return (tokens, warnings)
    }
}

/// The tokens in force on a node, read from `--admin-tokens FILE` at start and again on SIGHUP
/// or when the file changes; a file that no longer loads is refused and the previous tokens
/// stay in use (like a certificate reload).
public final class AdminTokenStore: Sendable {
    /// The file.
    public let path: String
    private let logger: Logger
    private struct State: Sendable {
        var tokens: AdminTokens
        var stamp: FileStamp?
    }
    private let state: Mutex<State>

    /// What identifies one version of the file cheaply: a change of any field means "read it again".
    struct FileStamp: Sendable, Equatable {
        var modified: Date?
        var size: Int?
        var inode: Int?

        init?(path: String) {
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return nil }
            modified = attributes[.modificationDate] as? Date
            size = (attributes[.size] as? NSNumber)?.intValue
            inode = (attributes[.systemFileNumber] as? NSNumber)?.intValue
        }
    }

    /// Loads `path`; throws (naming the line) if it does not load.
    public init(path: String, logger: Logger) throws(AdminTokensFileError) {
        self.path = path
        self.logger = logger
        let stamp = FileStamp(path: path)
        let (tokens, warnings) = try AdminTokens.load(path: path)
        for warning in warnings { logger.warning("\(warning)") }
        state = Mutex(State(tokens: tokens, stamp: stamp))
        logger.info("admin tokens loaded", metadata: ["file": "\(path)", "tokens": "\(tokens.count)",
                                                      "identities": "\(tokens.identities.count)"])
    }

    /// The tokens in force.
    public var tokens: AdminTokens { state.withLock { $0.tokens } }

    /// The outcome of a reload.
    public enum ReloadResult: Sendable, Equatable {
        case reloaded(tokens: Int)
        case refused(String)
        case unchanged
    }

    /// Reads the file again. `onlyIfChanged`: skip unless its size, time or inode changed.
    @discardableResult
    public func reload(reason: String, onlyIfChanged: Bool = false) -> ReloadResult {
        let stamp = FileStamp(path: path)
        if onlyIfChanged, state.withLock({ $0.stamp == stamp }) { return .unchanged }
        do {
            let (tokens, warnings) = try AdminTokens.load(path: path)
            for warning in warnings { logger.warning("\(warning)") }
            state.withLock { $0 = State(tokens: tokens, stamp: stamp) }
            logger.notice("admin tokens reloaded", metadata: ["file": "\(path)", "reason": "\(reason)", "tokens": "\(tokens.count)"])
            return .reloaded(tokens: tokens.count)
        } catch {
            // Remember the stamp: a broken file is reported once, not on every poll.
            state.withLock { $0.stamp = stamp }
            logger.error("admin tokens reload refused; the previous tokens stay in use",
                         metadata: ["file": "\(path)", "reason": "\(reason)", "error": "\(error)"])
            return .refused(error.description)
        }
    }
}
