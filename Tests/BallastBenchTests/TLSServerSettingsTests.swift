import Foundation
import Testing
@testable import ballast

/// `ballast server --tls-*`: the three files go together, and the other TLS flags need them.
@Suite("ballast server TLS flags")
struct TLSServerSettingsTests {
    static func settings(_ values: [String: String]) throws -> ServerSettings {
        try ServerSettings(fileAt: nil).overridden(by: ["id": "1", "data-dir": "/tmp/unused", "raft": "127.0.0.1:7001"]
            .merging(values) { $1 })
    }

    static func error(_ values: [String: String]) -> String? {
        do {
            _ = try settings(values).nodeConfiguration()
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// Holds `files`; shared by the suite's tests, so removed when the test process exits.
    static let directory: String = {
        let directory = NSTemporaryDirectory() + "ballast-tls-flags-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: TLSServerSettingsTests.directory) }
        return directory
    }()

    static let files: [String: String] = {
        let directory = Self.directory
        var paths: [String: String] = [:]
        for key in ["tls-cert", "tls-key", "tls-ca"] {
            let path = "\(directory)/\(key).pem"
            _ = FileManager.default.createFile(atPath: path, contents: Data("x".utf8))
            paths[key] = path
        }
        return paths
    }()

    @Test("no TLS flags: cleartext; all three files: TLS 1.3, required, polled every 2 s")
    func defaults() throws {
        #expect(try Self.settings([:]).nodeConfiguration().tls == nil)
        let tls = try #require(try Self.settings(Self.files).nodeConfiguration().tls)
        #expect(tls.minimumVersion == .v1_3 && !tls.allowCleartext && tls.reloadPollInterval == .seconds(2))
        #expect(tls.files.certificate == Self.files["tls-cert"] && tls.files.trustRoots == Self.files["tls-ca"])
        var more = Self.files
        more["tls-min-version"] = "1.2"
        more["tls-allow-cleartext"] = "true"
        more["tls-reload-interval-ms"] = "0"
        let relaxed = try #require(try Self.settings(more).nodeConfiguration().tls)
        #expect(relaxed.minimumVersion == .v1_2 && relaxed.allowCleartext && relaxed.reloadPollInterval == .zero)
    }

    @Test("a file alone, a missing file, a bad version, contradicting flags and TLS options without files are refused")
    func refused() {
        #expect(Self.error(["tls-cert": Self.files["tls-cert"]!])?.contains("all of --tls-cert, --tls-key and --tls-ca") == true)
        var missing = Self.files
        missing["tls-key"] = "/nonexistent/key.pem"
        #expect(Self.error(missing)?.contains("cannot read TLS file /nonexistent/key.pem") == true)
        var version = Self.files
        version["tls-min-version"] = "1.1"
        #expect(Self.error(version)?.contains("--tls-min-version must be 1.2 or 1.3") == true)
        var both = Self.files
        both["tls-required"] = "true"
        both["tls-allow-cleartext"] = "true"
        #expect(Self.error(both)?.contains("contradict") == true)
        #expect(Self.error(["tls-required": "true"])?.contains("--tls-required") == true)
        #expect(Self.error(["tls-min-version": "1.3"])?.contains("needs --tls-cert") == true)
        #expect(Self.error(["tls-allow-cleartext": "yes"])?.contains("needs --tls-cert") == true)
    }

    @Test("--admin-tokens: a valid file is taken, a bad line stops the start naming the line")
    func adminTokens() throws {
        let directory = NSTemporaryDirectory() + "ballast-admin-tokens-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let good = directory + "/good", bad = directory + "/bad"
        try "alice 0123456789abcdef0123456789abcdef\n".write(toFile: good, atomically: true, encoding: .utf8)
        try "# ok\nalice too-short\n".write(toFile: bad, atomically: true, encoding: .utf8)
        #expect(try Self.settings(["admin-tokens": good]).nodeConfiguration().adminTokensPath == good)
        #expect(Self.error(["admin-tokens": bad])?.contains("--admin-tokens: \(bad):2: the token of alice is 9 characters") == true,
                "\(Self.error(["admin-tokens": bad]) ?? "accepted")")
        #expect(Self.error(["admin-tokens": directory + "/missing"])?.contains("cannot read the file") == true)
        #expect(Self.error(["admin-tokens": ""])?.contains("--admin-tokens must name a file") == true)
    }
}
