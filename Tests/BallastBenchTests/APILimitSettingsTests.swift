import BallastServer
import BallastWire
import Foundation
import Testing
@testable import ballast

/// `ballast server --max-connections`, `--max-new-connections-per-second`, `--max-message-bytes`.
@Suite("ballast server API limit flags")
struct APILimitSettingsTests {
    static func configuration(_ values: [String: String]) throws -> NodeConfiguration {
        try ServerSettings(fileAt: nil).overridden(by: ["id": "1", "data-dir": "/tmp/unused", "raft": "127.0.0.1:7001"]
            .merging(values) { $1 }).nodeConfiguration()
    }

    @Test("without the flags the API port keeps the server's defaults; with them, their values")
    func values() throws {
        let defaults = GRPCServerConfiguration()
        let plain = try Self.configuration([:]).apiLimits
        #expect(plain.maxConnections == defaults.maxConnections)
        #expect(plain.maxNewConnectionsPerSecond == defaults.maxNewConnectionsPerSecond)
        #expect(plain.maxReceiveMessageBytes == defaults.maxReceiveMessageBytes)
        let set = try Self.configuration(["max-connections": "64", "max-new-connections-per-second": "20",
                                          "max-message-bytes": "1048576"]).apiLimits
        #expect(set.maxConnections == 64 && set.maxNewConnectionsPerSecond == 20 && set.maxReceiveMessageBytes == 1 << 20)
        #expect(try Self.configuration(["max-message-bytes": "15728640"]).apiLimits.maxReceiveMessageBytes == 15 << 20,
                "15 MiB: the largest request whose log entry a follower takes")
        let applied = set.applied(to: GRPCServerConfiguration())
        #expect(applied.maxConnections == 64 && applied.maxNewConnectionsPerSecond == 20 && applied.maxReceiveMessageBytes == 1 << 20)
    }

    @Test("a value out of range or not a number is refused, naming the flag", arguments: [
        ("max-connections", "0"), ("max-connections", "many"), ("max-connections", "1000001"),
        ("max-new-connections-per-second", "-1"), ("max-message-bytes", "100"), ("max-message-bytes", "33554433"), ("max-message-bytes", "15728641"),
    ])
    func refused(flag: String, value: String) {
        do {
            _ = try Self.configuration([flag: value])
            Issue.record("--\(flag) \(value) was accepted")
        } catch {
            #expect("\(error)".contains("--\(flag)"), "\(error)")
        }
    }

    @Test("--admin-max-connections: 128 by default, the value given, and out of range refused naming the flag")
    func adminMaxConnections() throws {
        #expect(try Self.configuration([:]).adminMaxConnections == AdminHTTPServer.defaultMaxConnections)
        #expect(try Self.configuration(["admin-max-connections": "16"]).adminMaxConnections == 16)
        for value in ["0", "100001", "-3", "lots"] {
            #expect(throws: (any Error).self) { try Self.configuration(["admin-max-connections": value]) }
            do { _ = try Self.configuration(["admin-max-connections": value]) } catch {
                #expect("\(error)".contains("--admin-max-connections"), "\(error)")
            }
        }
    }

    @Test("the config file takes the same keys")
    func configFile() throws {
        let path = NSTemporaryDirectory() + "ballast-limits-\(UUID().uuidString.prefix(8)).conf"
        try "id = 1\ndata-dir = /tmp/unused\nraft = 127.0.0.1:7001\nmax-connections = 10\nmax-message-bytes = 65536\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let limits = try ServerSettings(fileAt: path).nodeConfiguration().apiLimits
        #expect(limits.maxConnections == 10 && limits.maxReceiveMessageBytes == 65536)
    }
}

/// `ballast server --eager-dispatch`.
@Suite("ballast server --eager-dispatch")
struct EagerDispatchSettingsTests {
    @Test("on by default; false turns it off; anything else is refused naming the flag")
    func values() throws {
        #expect(try APILimitSettingsTests.configuration([:]).eagerDispatch)
        #expect(try !APILimitSettingsTests.configuration(["eager-dispatch": "false"]).eagerDispatch)
        #expect(try APILimitSettingsTests.configuration(["eager-dispatch": "true"]).eagerDispatch)
        do {
            _ = try APILimitSettingsTests.configuration(["eager-dispatch": "off"])
            Issue.record("--eager-dispatch off was accepted")
        } catch {
            #expect("\(error)".contains("--eager-dispatch"), "\(error)")
        }
    }
}

/// `ballast server --max-engine-format` (hidden: rehearsing upgrades).
@Suite("ballast server --max-engine-format")
struct MaxEngineFormatSettingsTests {
    @Test("the newest format by default; 1 to 6 accepted; anything else refused naming the flag")
    func values() throws {
        #expect(try APILimitSettingsTests.configuration([:]).maxEngineFormat == 6)
        #expect(try APILimitSettingsTests.configuration(["max-engine-format": "1"]).maxEngineFormat == 1)
        #expect(try APILimitSettingsTests.configuration(["max-engine-format": "2"]).maxEngineFormat == 2)
        #expect(try APILimitSettingsTests.configuration(["max-engine-format": "3"]).maxEngineFormat == 3)
        #expect(try APILimitSettingsTests.configuration(["max-engine-format": "4"]).maxEngineFormat == 4)
        #expect(try APILimitSettingsTests.configuration(["max-engine-format": "5"]).maxEngineFormat == 5)
        for bad in ["0", "7", "two", "-1"] {
            do {
                _ = try APILimitSettingsTests.configuration(["max-engine-format": bad])
                Issue.record("--max-engine-format \(bad) was accepted")
            } catch {
                #expect("\(error)".contains("--max-engine-format"), "\(error)")
            }
        }
    }
}
