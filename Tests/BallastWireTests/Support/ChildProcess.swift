import Foundation
import NIOConcurrencyHelpers

/// Errors of the process helpers, with what ran and what it printed.
struct ChildProcessError: Error, CustomStringConvertible {
    var command: String
    var detail: String
    var description: String { "\(command): \(detail)" }
}

/// A child process whose output is captured; always terminated by `stop()` (tests call it in defer).
final class ChildProcess: Sendable {
    let process: Process
    let command: String
    private let outPipe: Pipe
    private let errPipe: Pipe
    private let stdoutBox = NIOLockedValueBox(Data())
    private let stderrBox = NIOLockedValueBox(Data())

    /// Starts `executable` with `arguments`, optionally feeding `stdin` bytes.
    init(_ executable: String, _ arguments: [String], stdin: Data? = nil, currentDirectory: URL? = nil) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        self.process = process
        self.outPipe = out
        self.errPipe = err
        self.command = ([executable] + arguments).joined(separator: " ")
        let outBox = stdoutBox, errBox = stderrBox
        out.fileHandleForReading.readabilityHandler = { handle in
            let chunk = handle.availableData
            outBox.withLockedValue { $0.append(chunk) }
        }
        err.fileHandleForReading.readabilityHandler = { handle in
            let chunk = handle.availableData
            errBox.withLockedValue { $0.append(chunk) }
        }
        try process.run()
        if let stdin { input.fileHandleForWriting.write(stdin) }
        try? input.fileHandleForWriting.close()
    }

    var stdout: String { String(decoding: stdoutBox.withLockedValue { $0 }, as: UTF8.self) }
    var stdoutData: Data { stdoutBox.withLockedValue { $0 } }
    var stderr: String { String(decoding: stderrBox.withLockedValue { $0 }, as: UTF8.self) }

    /// The lines of stdout that are complete (ended by a newline): a line still being written
    /// may have arrived in part (`READY ` without its port, seen once in CI).
    var completeLines: [String] {
        let text = stdout
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        lines.removeLast() // what follows the last newline: empty, or a line not yet complete
        return lines
    }

    /// Polls until stdout holds a complete line satisfying `match`, or throws at the deadline.
    func waitForLine(timeout: Duration = .seconds(30), _ match: @escaping (String) -> Bool) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let line = completeLines.first(where: match) { return line }
            if !process.isRunning {
                // Nothing more will come: a last line without its newline counts now.
                if let line = stdout.split(separator: "\n").map(String.init).first(where: match) { return line }
                throw ChildProcessError(command: command, detail: "exited (\(process.terminationStatus)) before printing the line; stderr: \(stderr)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ChildProcessError(command: command, detail: "no matching line within \(timeout); stdout: \(stdout) stderr: \(stderr)")
    }

    /// Polls until the process exits; returns its status, or kills it and throws at the deadline.
    @discardableResult
    func waitForExit(timeout: Duration = .seconds(60)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now >= deadline {
                stop()
                throw ChildProcessError(command: command, detail: "still running after \(timeout); stdout: \(stdout) stderr: \(stderr)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        drainPipes()
        return process.terminationStatus
    }

    /// After exit: stops the handlers and reads what is left in the pipes up to EOF.
    private func drainPipes() {
        for (pipe, box) in [(outPipe, stdoutBox), (errPipe, stderrBox)] {
            pipe.fileHandleForReading.readabilityHandler = nil
            let rest = pipe.fileHandleForReading.readDataToEndOfFile()
            box.withLockedValue { $0.append(rest) }
        }
    }

    /// Terminates the process if it still runs (SIGTERM, then SIGKILL).
    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(2)
        while process.isRunning, Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// Runs a command to completion and returns (status, stdout, stderr).
    static func run(_ executable: String, _ arguments: [String], stdin: Data? = nil,
                    currentDirectory: URL? = nil, timeout: Duration = .seconds(120)) async throws -> (Int32, Data, String) {
        let child = try ChildProcess(executable, arguments, stdin: stdin, currentDirectory: currentDirectory)
        defer { child.stop() }
        let status = try await child.waitForExit(timeout: timeout)
        return (status, child.stdoutData, child.stderr)
    }
}
