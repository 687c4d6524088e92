// Keeps the pure cores honest (STYLE.md, after TigerBeetle's tidy.zig): no I/O, clocks, threads or
// unseeded randomness in the core modules. A core that needs one of these is a shell.
import Foundation
import Testing

/// The core modules whose sources are scanned; directories that do not exist yet are skipped.
let coreModules = ["Sources/BallastRaft", "Sources/BallastEngine", "Sources/BallastSimulation"]

/// A banned construct: a token and whether it must stand alone as a word.
struct BannedToken: Sendable {
    var token: String
    var why: String
}

let bannedTokens: [BannedToken] = [
    BannedToken(token: "import Foundation", why: "Foundation brings clocks and files; use the standard library"),
    BannedToken(token: "import NIO", why: "networking belongs in a shell"),
    BannedToken(token: "import NIOPosix", why: "networking belongs in a shell"),
    BannedToken(token: "import Dispatch", why: "threads belong in a shell"),
    BannedToken(token: "Date()", why: "wall-clock time comes in as input"),
    BannedToken(token: "DispatchQueue", why: "threads belong in a shell"),
    BannedToken(token: "Task.sleep", why: "time passes through tick()"),
    BannedToken(token: "SystemRandomNumberGenerator", why: "use DeterministicRandom with a seed"),
    BannedToken(token: "FileManager", why: "files belong in a shell"),
    BannedToken(token: "fopen", why: "files belong in a shell"),
    BannedToken(token: "open(", why: "files belong in a shell"),
    BannedToken(token: "socket(", why: "sockets belong in a shell"),
    BannedToken(token: "Thread", why: "threads belong in a shell"),
]

private func isIdentifierCharacter(_ character: Character?) -> Bool {
    guard let character else { return false }
    return character.isLetter || character.isNumber || character == "_"
}

/// Every start offset of `token` in `line` that stands alone (no identifier character glued on either side).
func standaloneOccurrences(of token: String, in line: String) -> [String.Index] {
    var found: [String.Index] = []
    var searchStart = line.startIndex
    while let range = line.range(of: token, range: searchStart..<line.endIndex) {
        let before = range.lowerBound == line.startIndex ? nil : line[line.index(before: range.lowerBound)]
        let after = range.upperBound == line.endIndex ? nil : line[range.upperBound]
        let gluedBefore = isIdentifierCharacter(token.first) && isIdentifierCharacter(before)
        let gluedAfter = isIdentifierCharacter(token.last) && isIdentifierCharacter(after)
        if !gluedBefore && !gluedAfter { found.append(range.lowerBound) }
        searchStart = range.upperBound
    }
    return found
}

/// The arguments of the call whose "(" ends at `start`, up to its matching ")" (or the line's end).
private func callArguments(in line: String, from start: String.Index) -> Substring {
    var depth = 1
    var index = start
    while index < line.endIndex {
        if line[index] == "(" { depth += 1 }
        if line[index] == ")" { depth -= 1; if depth == 0 { break } }
        index = line.index(after: index)
    }
    return line[start..<index]
}

/// The line without a trailing `//` comment (doc comments and prose may name banned things).
private func codePart(of line: String) -> String {
    guard let comment = line.range(of: "//") else { return line }
    return String(line[..<comment.lowerBound])
}

/// Every banned construct in `source`, as "file:line: token — why".
func tidyViolations(in source: String, file: String) -> [String] {
    var hits: [String] = []
    for (number, rawLine) in source.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        let line = codePart(of: String(rawLine))
        for banned in bannedTokens where !standaloneOccurrences(of: banned.token, in: line).isEmpty {
            hits.append("\(file):\(number + 1): \(banned.token) — \(banned.why)")
        }
        for start in standaloneOccurrences(of: ".random(", in: line) {
            let arguments = callArguments(in: line, from: line.index(start, offsetBy: ".random(".count))
            if !arguments.contains("using:") {
                hits.append("\(file):\(number + 1): .random( without using: — pass a seeded generator")
            }
        }
    }
    return hits
}

/// The package root, found from this file's path (Tests/TidyTests/TidyTests.swift).
private func packageRoot() -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
}

/// Every Swift file under the core modules that exist, with its path relative to the root.
private func coreSourceFiles(root: URL) -> [(relative: String, url: URL)] {
    var files: [(String, URL)] = []
    for module in coreModules {
        let directory = root.appendingPathComponent(module).resolvingSymlinksInPath()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else { continue }
        let enumerator = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: nil)
        while let url = enumerator?.nextObject() as? URL {
            guard url.pathExtension == "swift" else { continue }
            let relative = module + url.path.dropFirst(directory.path.count)
            files.append((relative, url))
        }
    }
    return files.sorted { $0.0 < $1.0 }
}

@Suite("Tidy: the core modules stay pure")
struct TidyTests {
    @Test("the core modules use no I/O, clocks, threads or unseeded randomness")
    func coreModulesAreTidy() throws {
        let files = coreSourceFiles(root: packageRoot())
        #expect(!files.isEmpty, "found no core sources under \(packageRoot().path)")
        var hits: [String] = []
        for file in files {
            let source = try String(contentsOf: file.url, encoding: .utf8)
            hits += tidyViolations(in: source, file: file.relative)
        }
        #expect(hits.isEmpty, "banned constructs in core modules:\n\(hits.joined(separator: "\n"))")
    }

    @Test("the scanner flags each banned construct with file and line")
    func scannerFlagsBannedConstructs() {
        let source = """
            import Foundation
            import NIO
            import NIOPosix
            import Dispatch
            let now = Date()
            DispatchQueue.main.async {}
            try await Task.sleep(for: .seconds(1))
            var generator = SystemRandomNumberGenerator()
            let jitter = Int.random(in: 0..<10)
            let manager = FileManager.default
            let handle = fopen("x", "r")
            let descriptor = open("x", O_RDONLY)
            let fd = socket(AF_INET, SOCK_STREAM, 0)
            Thread.sleep(forTimeInterval: 1)
            """
        let hits = tidyViolations(in: source, file: "Sources/BallastRaft/Bad.swift")
        #expect(hits.count == 14, "\(hits.joined(separator: "\n"))")
        #expect(hits.first == "Sources/BallastRaft/Bad.swift:1: import Foundation — Foundation brings clocks and files; use the standard library")
        #expect(hits.contains { $0.hasPrefix("Sources/BallastRaft/Bad.swift:9: .random(") })
        #expect(hits.contains { $0.hasPrefix("Sources/BallastRaft/Bad.swift:14: Thread") })
    }

    @Test("the scanner lets seeded randomness, look-alike names and comments through")
    func scannerAllowsLookAlikes() {
        let source = """
            import NIOCore_Not
            var random = DeterministicRandom(seed: 1)
            let jitter = Int.random(in: 0..<10, using: &random)
            let pick = [1, 2].randomElement(using: &random)
            func reopen(_ x: Int) {}
            let update = lastUpdateDate()
            let threads = ThreadCount(4)
            // DispatchQueue and Date() are fine in a comment.
            """
        #expect(tidyViolations(in: source, file: "ok.swift").isEmpty)
    }
}
