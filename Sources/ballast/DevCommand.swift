import ArgumentParser
import BallastRaft
import BallastServer
import BallastStorage
import Foundation
import Logging

/// `ballast dev`: a one-node cluster (real Raft, real write-ahead log) with the web UI, in a
/// temporary data directory unless `--data-dir` keeps one. Prints `api: 127.0.0.1:PORT` and
/// `ui: http://127.0.0.1:PORT/` once the node leads; SIGINT or SIGTERM stop it (exit 0) and
/// remove a temporary directory.
struct DevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "Run a one-node Ballast cluster with the web UI, for trying Ballast on one machine.",
        discussion: """
            Prints `api: HOST:PORT` (point workers and `ballast workflow --address` at it) and \
            `ui: http://HOST:PORT/` (the web UI) on lines of their own once the node is ready. \
            Ctrl-C stops it. Without --data-dir the state lives in a temporary directory that is \
            removed on exit; with it, a later `ballast dev --data-dir` resumes.
            """)

    @Option(help: "Keep the state in this directory (created if missing) instead of a temporary one.") var dataDir: String?
    @Option(help: "Client and worker API address HOST:PORT (port 0 picks a free one).") var api = "127.0.0.1:7233"
    @Option(help: "Admin HTTP address and web UI HOST:PORT (port 0 picks a free one).") var admin = "127.0.0.1:8233"
    @Option(help: "Require this token for the web UI's actions (signal, cancel, terminate).") var adminToken: String?
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = "notice"
    @Option(help: "Seconds to wait for the node to become leader before giving up.") var startTimeout = 30.0

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level '\(logLevel)'") }
        guard startTimeout > 0, startTimeout <= 3_600 else { throw ValidationError("--start-timeout must be in (0, 3600] seconds") }
    }

    func run() async throws {
        let temporary = dataDir == nil
        let directory = dataDir ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("ballast-dev-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))").path
        defer { if temporary { try? FileManager.default.removeItem(atPath: directory) } }
        var settings = try ServerSettings(fileAt: nil).overridden(by: [
            "id": "1", "data-dir": directory, "raft": "127.0.0.1:0", "api": api, "admin": admin, "peers": "1=127.0.0.1:0",
            "log-level": logLevel,
        ])
        if let adminToken { settings = settings.overridden(by: ["admin-token": adminToken]) }
        let configuration = try settings.nodeConfiguration()
        var logger = Logger(label: "ballast.dev")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .notice
        FileDescriptorLimit.raiseAndReport(for: configuration, logger: logger)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let history = try HistoryFileStore(directory: directory + "/history")
        let fatalLogger = logger
        let machine = EngineStateMachine(logger: logger, history: history) { why in
            fatalLogger.critical("\(why)")
            Foundation.exit(70)
        }
        let node = try BallastNode(configuration: configuration, stateMachine: machine, logger: logger)
        try await node.start()
        let maintenance = HistoryMaintenance.start(history, logger: logger)
        let ready = await Self.waitForLeadership(node, timeout: .milliseconds(Int64(startTimeout * 1000)))
        if ready {
            Self.say("api: \(node.info.api)")
            Self.say("ui: http://\(node.info.admin)/")
            Self.say(temporary ? "data: \(directory) (temporary, removed on exit)" : "data: \(directory)")
            await ShutdownSignal.wait()
        } else {
            logger.error("the node did not become leader within \(startTimeout) s")
        }
        await node.shutdown(transferTimeout: .zero)
        maintenance.cancel()
        history.close()
        if !ready { throw ExitCode(1) }
    }

    /// Polls until the single node leads (it elects itself after one election timeout).
    static func waitForLeadership(_ node: BallastNode, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await node.raftStatus().role == .leader { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    /// A line on stdout, written at once (scripts and tests read these lines through pipes).
    static func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
}
