import BallastServer
import Foundation
import Logging
import Testing

@Suite("Admin UI tokens file: parsing, validation, lookup, reload")
struct AdminTokensTests {
    static let alice = "4f0c0b6e0d6a4a1c9a7e1f8e2b3c4d5e6f708192"
    static let aliceNext = "mKq3Vd0Jx8sX1p5rT9wZ2yB6nC4hL7aE"
    static let bot = "0123456789abcdef0123456789abcdef"

    @Test("identity and token per line; comments, blank lines and tabs; several tokens per identity")
    func parses() throws {
        let text = """
            # identity         token
            alice@example.com  \(Self.alice)   # laptop

            alice@example.com\t\(Self.aliceNext)
              oncall-bot \(Self.bot)\r
            """
        let tokens = try AdminTokens.parse(text, path: "tokens")
        #expect(tokens.count == 3)
        #expect(tokens.identities == ["alice@example.com", "oncall-bot"])
        #expect(tokens.identity(for: Self.alice) == "alice@example.com")
        #expect(tokens.identity(for: Self.aliceNext) == "alice@example.com")
        #expect(tokens.identity(for: Self.bot) == "oncall-bot")
        #expect(tokens.identity(for: String(Self.bot.dropLast())) == nil)
        #expect(tokens.identity(for: Self.bot + "0") == nil)
        #expect(tokens.identity(for: "") == nil)
        #expect(try AdminTokens.parse("# nothing\n\n", path: "t").isEmpty)
    }

    @Test("a bad line is refused with its file and line named, and why")
    func refusesBadLines() {
        func refusal(_ text: String) -> String {
            do {
                _ = try AdminTokens.parse(text, path: "tokens.txt")
                return "accepted"
            } catch {
                return error.description
            }
        }
        #expect(refusal("alice \(Self.alice)\nbob") == "tokens.txt:2: expected `IDENTITY TOKEN`, found 1 field")
        #expect(refusal("alice \(Self.alice) extra") == "tokens.txt:1: expected `IDENTITY TOKEN`, found 3 fields")
        #expect(refusal("\n\nalice short-token").hasPrefix("tokens.txt:3: the token of alice is 11 characters; tokens need at least 32"))
        #expect(refusal("alice \(Self.alice)\nbob \(Self.alice)") == "tokens.txt:2: this token is already bound on line 1: a token names one identity")
        #expect(refusal("alice \(Self.alice)\u{7F}").hasPrefix("tokens.txt:1: a token is at most 1024 printable ASCII"))
        #expect(refusal("alice \(String(repeating: "x", count: 1025))").hasPrefix("tokens.txt:1: a token is at most"))
        #expect(refusal("\(String(repeating: "i", count: 257)) \(Self.alice)").hasPrefix("tokens.txt:1: the identity is over 256 bytes"))
        #expect(refusal("al\u{1}ice \(Self.alice)").hasPrefix("tokens.txt:1: the identity is over 256 bytes or contains control"))
        #expect(refusal(String(repeating: "\n", count: AdminTokens.maxLines + 1)) == "tokens.txt: more than 10000 lines")
    }

    @Test("loading warns about a file every user can read, refuses a missing one")
    func loadsAndWarns() throws {
        let directory = NSTemporaryDirectory() + "admin-tokens-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/tokens"
        try "alice \(Self.alice)\n".write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        let (tokens, quiet) = try AdminTokens.load(path: path)
        #expect(tokens.identity(for: Self.alice) == "alice" && quiet.isEmpty)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        let (_, warnings) = try AdminTokens.load(path: path)
        #expect(warnings.count == 1 && warnings[0].contains("mode 644") && warnings[0].contains("chmod 600"), "\(warnings)")
        #expect(throws: AdminTokensFileError.self) { try AdminTokens.load(path: directory + "/missing") }
    }

    @Test("a reload takes a changed file, refuses a broken one and keeps the previous tokens")
    func reloads() throws {
        let directory = NSTemporaryDirectory() + "admin-tokens-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/tokens"
        try "alice \(Self.alice)\n".write(toFile: path, atomically: true, encoding: .utf8)
        let store = try AdminTokenStore(path: path, logger: Logger(label: "test.tokens"))
        #expect(store.reload(reason: "poll", onlyIfChanged: true) == .unchanged)
        try "alice \(Self.aliceNext)\nbot \(Self.bot)\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(store.reload(reason: "SIGHUP") == .reloaded(tokens: 2))
        #expect(store.tokens.identity(for: Self.alice) == nil && store.tokens.identity(for: Self.aliceNext) == "alice")
        try "alice short\n".write(toFile: path, atomically: true, encoding: .utf8)
        guard case .refused(let why) = store.reload(reason: "SIGHUP") else { Issue.record("a broken file was taken"); return }
        #expect(why.contains(":1: the token of alice"))
        #expect(store.tokens.identity(for: Self.bot) == "bot", "the previous tokens stay in use")
    }
}
