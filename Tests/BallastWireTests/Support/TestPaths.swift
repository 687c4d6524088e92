import Foundation
import Synchronization

/// Locations the interop tests need, found from this file's real path (the dev package symlinks it).
enum TestPaths {
    /// The repository root: the first ancestor of this file (symlinks resolved) that holds `proto/`.
    static let repoRoot: URL = {
        var url = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath().deletingLastPathComponent()
        while url.path != "/" {
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("proto/ballast/v1").path) { return url }
            url = url.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }()

    /// The Python interpreter of the test virtual environment (`scripts/install-deps --test`).
    static var python: String { repoRoot.appendingPathComponent(".venv/bin/python").path }

    /// The `proto/` directory.
    static var protoDir: String { repoRoot.appendingPathComponent("proto").path }

    /// A fresh temporary directory, removed when the test process exits (for fixtures shared
    /// by a suite's tests, which no single test can remove).
    static func sharedTemporaryDirectory(_ prefix: String) throws -> URL {
        let url = try temporaryDirectory(prefix)
        let first = removedAtExit.withLock { paths in
            paths.append(url.path)
            return paths.count == 1
        }
        if first {
            atexit {
                for path in TestPaths.removedAtExit.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: path) }
            }
        }
        return url
    }

    private static let removedAtExit = Mutex<[String]>([])

    /// A fresh temporary directory.
    static func temporaryDirectory(_ prefix: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Finds an executable on PATH.
    static func which(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
