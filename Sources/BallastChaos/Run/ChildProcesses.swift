import Foundation
import Synchronization

/// A process the chaos run started: a node, a worker or the load generator.
public final class ChildProcess: @unchecked Sendable {
    /// What it is, for messages (`node 2`, `worker 1`, `load`).
    public let name: String
    public let pid: Int32
    /// Where its standard output and error go.
    public let logPath: String
    /// Read under `lock` only (Foundation's `Process` is not `Sendable`).
    private let process: Process
    private let lock = NSLock()
    private var exit: Int32?

    init(name: String, pid: Int32, logPath: String, process: Process) {
        self.name = name
        self.pid = pid
        self.logPath = logPath
        self.process = process
    }

    /// Whether it has not exited yet.
    public var isRunning: Bool { exitStatus == nil }

    /// Its exit status (or 128 + signal), once it has exited.
    public var exitStatus: Int32? {
        lock.withLock {
            if exit == nil, !process.isRunning {
                let code = process.terminationStatus
                exit = process.terminationReason == .uncaughtSignal ? 128 + code : code
            }
            return exit
        }
    }

    /// Sends `signal` if it still runs.
    public func send(_ signal: Int32) {
        guard isRunning else { return }
        _ = Foundation.kill(pid, signal)
    }

    /// Waits until it has exited or `timeout` passed; returns its status if it exited.
    public func waitForExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status = exitStatus { return status }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return exitStatus
    }

    /// SIGKILL (SIGCONT first, in case it is frozen) and wait until it is gone.
    public func killAndWait() async {
        send(SIGKILL)
        send(SIGCONT)
        _ = await waitForExit(timeout: .seconds(10))
    }
}

/// Starts and tracks every child of a chaos run, so that none outlives it.
///
/// Children are started through `setpriv --pdeathsig KILL` (util-linux), which sets
/// `PR_SET_PDEATHSIG` in the child before it execs: if the orchestrator dies, even by SIGKILL, the
/// kernel kills the children. The death signal fires when the *thread* that forked the child
/// exits, so every child is forked from one dedicated thread that lives as long as the process
/// (a cooperative-pool thread may be retired while idle). Where `setpriv` is missing, children run
/// directly, and only the cleanup paths (`killAll`, SIGINT/SIGTERM) stop them.
public final class ChildProcesses: Sendable {
    /// The registry of the running orchestrator.
    public static let shared = ChildProcesses()

    private let children = Mutex<[ChildProcess]>([])
    /// A registry of its own (tests; the orchestrator uses `shared`).
    public init() {}

    private let spawner = SpawnerThread()
    private let signalsInstalled = Mutex(false)
    /// `setpriv`, if this machine has it.
    public let setpriv: String? = ["/usr/bin/setpriv", "/bin/setpriv"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Starts `executable` with `arguments`, appending its output to `logPath`.
    public func spawn(name: String, executable: String, arguments: [String], logPath: String,
                      environment: [String: String]? = nil) throws -> ChildProcess {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw ChaosRunError.cannotStart(name, "\(executable) is not an executable file")
        }
        if !FileManager.default.fileExists(atPath: logPath) {
            guard FileManager.default.createFile(atPath: logPath, contents: nil) else {
                throw ChaosRunError.cannotStart(name, "cannot create its log \(logPath)")
            }
        }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        log.seekToEndOfFile()
        defer { try? log.close() }
        let process = Process()
        if let setpriv {
            process.executableURL = URL(fileURLWithPath: setpriv)
            process.arguments = ["--pdeathsig", "KILL", "--", executable] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        }
        if let environment { process.environment = environment }
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        let pid = try spawner.run { () throws -> Int32 in
            try process.run()
            return process.processIdentifier
        }
        let child = ChildProcess(name: name, pid: pid, logPath: logPath, process: process)
        children.withLock { $0.append(child) }
        return child
    }

    /// SIGKILL every child still running and wait for them.
    public func killAll() async {
        let all = children.withLock { list in
            defer { list.removeAll() }
            return list
        }
        for child in all where child.isRunning {
            child.send(SIGKILL)
            child.send(SIGCONT)
        }
        for child in all { _ = await child.waitForExit(timeout: .seconds(10)) }
    }

    /// Forgets children that have exited.
    public func prune() {
        children.withLock { $0.removeAll { !$0.isRunning } }
    }

    /// On SIGINT or SIGTERM: SIGKILL every child, then exit 130 / 143 (`onSignal` runs first, e.g.
    /// to print where the logs are).
    public func installSignalHandlers(onSignal: @escaping @Sendable (Int32) -> Void) {
        guard signalsInstalled.withLock({ let first = !$0; $0 = true; return first }) else { return }
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in
                let all = children.withLock { $0 }
                for child in all {
                    _ = Foundation.kill(child.pid, SIGKILL)
                    _ = Foundation.kill(child.pid, SIGCONT)
                }
                onSignal(number)
                Foundation.exit(128 + number)
            }
            source.resume()
            ChaosSignalSources.keep(source)
        }
    }
}

/// Keeps signal sources alive for the life of the process.
enum ChaosSignalSources {
    nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []
    private static let lock = NSLock()
    static func keep(_ source: any DispatchSourceSignal) { lock.withLock { sources.append(source) } }
}

/// One thread that runs closures handed to it and never exits: the parent of every child.
private final class SpawnerThread: Sendable {
    private struct Job: @unchecked Sendable {
        let body: () -> Void
    }

    private let condition = NSCondition()
    private let jobs = Mutex<[Job]>([])
    private let started = Mutex(false)

    /// Runs `body` on the spawner thread and returns its result.
    func run<T: Sendable>(_ body: @escaping () throws -> T) throws -> T {
        startIfNeeded()
        let result = Mutex<Result<T, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let job = Job {
            let outcome = Result { try body() }
            result.withLock { $0 = outcome }
            done.signal()
        }
        condition.lock()
        jobs.withLock { $0.append(job) }
        condition.signal()
        condition.unlock()
        done.wait()
        guard let outcome = result.withLock({ $0 }) else { preconditionFailure("a spawner job finished without a result") }
        return try outcome.get()
    }

    private func startIfNeeded() {
        guard started.withLock({ let first = !$0; $0 = true; return first }) else { return }
        let thread = Thread { [self] in
            while true {
                condition.lock()
                while jobs.withLock({ $0.isEmpty }) { condition.wait() }
                let next = jobs.withLock { $0.removeFirst() }
                condition.unlock()
                next.body()
            }
        }
        thread.name = "chaos-spawner"
        thread.start()
    }
}
