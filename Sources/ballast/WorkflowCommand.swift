import ArgumentParser
import BallastProto
import BallastSDK
import Foundation

/// `ballast workflow …`: start, inspect and steer workflows (Temporal's flag names).
struct WorkflowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workflow", abstract: "Start, inspect and steer workflows.",
        subcommands: [WorkflowStartCommand.self, WorkflowDescribeCommand.self, WorkflowShowCommand.self,
                      WorkflowListCommand.self, WorkflowCountCommand.self, WorkflowSignalCommand.self,
                      WorkflowQueryCommand.self, WorkflowCancelCommand.self, WorkflowTerminateCommand.self,
                      WorkflowResultCommand.self])
}

/// The options every workflow subcommand takes.
struct WorkflowClientOptions: ParsableArguments {
    @Option(help: "API addresses HOST:PORT, comma-separated (default: $BALLAST_ADDRESS, else the cluster/up ports 127.0.0.1:7112,7122,7132).")
    var address: String?
    @Option(help: "Namespace.") var namespace = "default"
    @Option(help: "TLS: the cluster's CA bundle, PEM (default: $BALLAST_TLS_CA; none: cleartext).") var tlsCa: String?
    @Option(help: "TLS: this client's certificate, PEM (default: $BALLAST_TLS_CERT).") var tlsCert: String?
    @Option(help: "TLS: this client's private key, PEM (default: $BALLAST_TLS_KEY).") var tlsKey: String?
    @Option(help: "Seconds each call may take, retries and leader changes included.") var callTimeout = 30.0
    @Flag(help: "Print JSON for scripts instead of text.") var json = false

    static let defaultAddresses = "127.0.0.1:7112,127.0.0.1:7122,127.0.0.1:7132"

    func makeClient() throws -> BallastClient {
        guard callTimeout > 0, callTimeout <= 86_400 else { throw ValidationError("--call-timeout must be in (0, 86400] seconds") }
        var options = BallastClientOptions()
        options.namespace = namespace
        options.callTimeout = .milliseconds(Int64(callTimeout * 1000))
        options.identity = "ballast-cli@\(ProcessInfo.processInfo.hostName)"
        do {
            options.tls = try ClientTLSOptions.fromFlags(ca: tlsCa, certificate: tlsCert, key: tlsKey,
                                                         environment: ProcessInfo.processInfo.environment)
        } catch {
            throw ValidationError("\(error)")
        }
        let list = address ?? ProcessInfo.processInfo.environment["BALLAST_ADDRESS"] ?? Self.defaultAddresses
        do {
            return try BallastClient(addresses: list, options: options)
        } catch {
            throw ValidationError("\(error)")
        }
    }
}

/// The workflow a command addresses.
struct WorkflowTarget: ParsableArguments {
    @Option(name: [.customLong("workflow-id"), .customShort("w")], help: "Workflow id.") var workflowID: String
    @Option(name: [.customLong("run-id"), .customShort("r")], help: "Run id (default: the current run).") var runID = ""
}

/// Runs `body` with a client; prints client errors plainly and exits non-zero.
func withWorkflowClient(_ options: WorkflowClientOptions, _ body: (BallastClient) async throws -> Void) async throws {
    let client = try options.makeClient()
    do {
        try await body(client)
        await client.close()
    } catch let error as BallastClientError {
        await client.close()
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(1)
    } catch {
        await client.close()
        throw error
    }
}

/// Parses `--input` JSON text into payloads (nil when absent).
func inputPayloads(_ text: String?) throws -> Ballast_V1_Payloads? {
    guard let text else { return nil }
    do {
        var payloads = Ballast_V1_Payloads()
        payloads.payloads = [try JSONClientPayloadConverter.payload(jsonText: text)]
        return payloads
    } catch {
        throw ValidationError("--input: \(error)")
    }
}

/// Seconds from a flag into a duration, validated.
func flagDuration(_ seconds: Double?, _ name: String) throws -> Duration? {
    guard let seconds else { return nil }
    guard seconds > 0, seconds <= 10 * 365 * 86_400 else { throw ValidationError("\(name) must be a positive number of seconds") }
    return .milliseconds(Int64(seconds * 1000))
}

struct WorkflowStartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "start", abstract: "Start a workflow run.")
    @OptionGroup var client: WorkflowClientOptions
    @Option(help: "Workflow type name.") var type: String
    @Option(help: "Task queue the workers poll.") var taskQueue: String
    @Option(name: [.customLong("workflow-id"), .customShort("w")], help: "Workflow id (default: a new UUID).") var workflowID: String?
    @Option(help: "Input as JSON text, e.g. '{\"amount\": 5}'.") var input: String?
    @Option(help: "allow-duplicate, allow-duplicate-failed-only, reject-duplicate or terminate-if-running.")
    var idReusePolicy = "allow-duplicate"
    @Option(help: "Execution timeout, seconds.") var executionTimeout: Double?
    @Option(help: "Run timeout, seconds.") var runTimeout: Double?
    @Option(help: "Workflow task timeout, seconds.") var taskTimeout: Double?
    @Option(help: "Keyword search attribute KEY=VALUE (repeatable).") var searchAttribute: [String] = []
    @Option(help: "Memo KEY=JSON (repeatable).") var memo: [String] = []

    func run() async throws {
        var options = WorkflowStartOptions()
        options.reusePolicy = try Self.reusePolicy(idReusePolicy)
        options.executionTimeout = try flagDuration(executionTimeout, "--execution-timeout")
        options.runTimeout = try flagDuration(runTimeout, "--run-timeout")
        options.taskTimeout = try flagDuration(taskTimeout, "--task-timeout")
        for pair in searchAttribute {
            let (key, value) = try Self.split(pair, "--search-attribute")
            options.searchAttributes[key] = .keyword(value)
        }
        for pair in memo {
            let (key, value) = try Self.split(pair, "--memo")
            do { options.memo[key] = try JSONClientPayloadConverter.payload(jsonText: value) } catch {
                throw ValidationError("--memo \(key): \(error)")
            }
        }
        let payloads = try inputPayloads(input)
        let id = workflowID ?? UUID().uuidString.lowercased()
        try await withWorkflowClient(client) { client in
            let handle = try await client.start(type, id: id, taskQueue: taskQueue, payloads: payloads, options: options)
            if self.client.json {
                print(JSONLine.object(["workflow_id": .string(id), "run_id": .string(handle.runID), "started": .bool(handle.startedNow)]))
            } else {
                print("started workflow \(id)  run \(handle.runID)\(handle.startedNow ? "" : "  (already started by this request)")")
            }
        }
    }

    static func reusePolicy(_ text: String) throws -> Ballast_V1_WorkflowIdReusePolicy {
        switch text.lowercased().replacingOccurrences(of: "_", with: "-") {
        case "allow-duplicate": .allowDuplicate
        case "allow-duplicate-failed-only": .allowDuplicateFailedOnly
        case "reject-duplicate": .rejectDuplicate
        case "terminate-if-running": .terminateIfRunning
        default: throw ValidationError("unknown --id-reuse-policy '\(text)'")
        }
    }

    static func split(_ pair: String, _ flag: String) throws -> (String, String) {
        guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else { throw ValidationError("\(flag) needs KEY=VALUE, got '\(pair)'") }
        return (String(pair[..<equals]), String(pair[pair.index(after: equals)...]))
    }
}

struct WorkflowDescribeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "describe", abstract: "Status, pending activities, timers and children of a run.")
    @OptionGroup var client: WorkflowClientOptions
    @OptionGroup var target: WorkflowTarget

    func run() async throws {
        try await withWorkflowClient(client) { client in
            let description = try await client.describe(workflowID: target.workflowID, runID: target.runID)
            print(try WorkflowText.describe(description, json: self.client.json))
        }
    }
}

struct WorkflowShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "A run's history as a timeline (--json: the protobuf JSON of ballast.v1.History, which WorkflowReplayer reads).")
    @OptionGroup var client: WorkflowClientOptions
    @OptionGroup var target: WorkflowTarget

    func run() async throws {
        try await withWorkflowClient(client) { client in
            let events = try await client.history(workflowID: target.workflowID, runID: target.runID)
            if self.client.json {
                var history = Ballast_V1_History()
                history.events = events
                print(try history.jsonString())
            } else {
                print(WorkflowText.timeline(events))
            }
        }
    }
}

struct WorkflowListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "Runs matching a visibility query, newest first unless it says ORDER BY.",
        discussion: """
            The query language (docs/protocol.md): comparisons =, !=, <, <=, >, >=, IN (…), BETWEEN … AND …, \
            STARTS_WITH, IS [NOT] NULL, joined by AND, OR, NOT and parentheses, over WorkflowId, RunId, \
            WorkflowType, ExecutionStatus, TaskQueue, StartTime, CloseTime, ExecutionDuration and the \
            namespace's search attributes; then ORDER BY StartTime|CloseTime [ASC|DESC]. Example: \
            "WorkflowType = 'Transfer' AND ExecutionStatus = 'Running' AND StartTime > '2026-11-24T00:00:00Z'".
            """)
    @OptionGroup var client: WorkflowClientOptions
    @Option(name: [.customLong("query"), .customShort("q")], help: "Visibility query, e.g. \"WorkflowType = 'Transfer' AND ExecutionStatus = 'Running'\".")
    var query = ""
    @Option(help: "Runs asked per call (1-1000).") var pageSize = 100
    @Option(help: "At most this many runs in all.") var limit = 100

    func run() async throws {
        guard (1 ... 100_000).contains(limit) else { throw ValidationError("--limit must be 1-100000") }
        guard (1 ... 1_000).contains(pageSize) else { throw ValidationError("--page-size must be 1-1000") }
        try await withWorkflowClient(client) { client in
            let runs = try await client.list(query: query, pageSize: Int32(pageSize), limit: limit)
            print(try WorkflowText.list(runs, json: self.client.json))
        }
    }
}

struct WorkflowCountCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "count", abstract: "How many runs match a visibility query (--json adds the count per status).")
    @OptionGroup var client: WorkflowClientOptions
    @Option(name: [.customLong("query"), .customShort("q")], help: "Visibility query (ORDER BY is ignored).") var query = ""
    @Flag(help: "Also print the count of each status.") var byStatus = false

    func run() async throws {
        try await withWorkflowClient(client) { client in
            let response = try await client.countByStatus(query: query)
            print(WorkflowText.count(response, json: self.client.json, byStatus: byStatus))
        }
    }
}

struct WorkflowSignalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "signal", abstract: "Send a signal to a run.")
    @OptionGroup var client: WorkflowClientOptions
    @OptionGroup var target: WorkflowTarget
    @Option(help: "Signal name.") var name: String
    @Option(help: "Signal input as JSON text.") var input: String?
    @Option(help: "Why (recorded in the run's history with your identity).") var reason = ""

    func run() async throws {
        let payloads = try inputPayloads(input)
        try await withWorkflowClient(client) { client in
            try await client.signal(workflowID: target.workflowID, runID: target.runID, name: name, payloads: payloads,
                                    reason: reason)
            print(self.client.json ? JSONLine.object(["signaled": .bool(true)]) : "signaled \(target.workflowID) with \(name)")
        }
    }
}

struct WorkflowQueryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "query", abstract: "Ask a run's query handler (answered by a worker).")
    @OptionGroup var client: WorkflowClientOptions
    @OptionGroup var target: WorkflowTarget
    @Option(name: [.customLong("type"), .customLong("name")], help: "Query type.") var queryType: String
    @Option(help: "Query arguments as JSON text.") var input: String?

    func run() async throws {
        let payloads = try inputPayloads(input)
        try await withWorkflowClient(client) { client in
            let answer = try await client.query(workflowID: target.workflowID, runID: target.runID, queryType: queryType, arguments: payloads)
            print(WorkflowText.payloads(answer))
        }
    }
}

struct WorkflowCancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Ask a run to cancel (its code may compensate).")
    @OptionGroup var client: WorkflowClientOptions
    @OptionGroup var target: WorkflowTarget
    @Option(help: "Why (recorded in the run's history with your identity).") var reason = ""

    func run() async throws {
        try await withWorkflowClient(client) { client in
            try await client.cancel(workflowID: target.workflowID, runID: target.runID, reason: reason)
            print(self.client.json ? JSONLine.object(["cancel_requested": .bool(true)]) : "cancel requested for \(target.workflowID)")
        }
    }
}

struct WorkflowTerminateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "terminate", abstract: "End a run at once, without running its code.")
    @OptionGroup var client: WorkflowClientOptions
    @OptionGroup var target: WorkflowTarget
    @Option(help: "Why (recorded in the run's history with your identity).") var reason = ""

    func run() async throws {
        try await withWorkflowClient(client) { client in
            try await client.terminate(workflowID: target.workflowID, runID: target.runID, reason: reason)
            print(self.client.json ? JSONLine.object(["terminated": .bool(true)]) : "terminated \(target.workflowID)")
        }
    }
}

struct WorkflowResultCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "result", abstract: "Wait for a run (following continue-as-new) to close and print its result; exit 1 unless it completed.")
    @OptionGroup var client: WorkflowClientOptions
    @OptionGroup var target: WorkflowTarget
    @Option(help: "Give up after this many seconds (default: wait as long as it takes).") var timeout: Double?

    func run() async throws {
        let limit = try flagDuration(timeout, "--timeout")
        try await withWorkflowClient(client) { client in
            let closed = try await client.handle(workflowID: target.workflowID, runID: target.runID).waitClosed(timeout: limit)
            print(WorkflowText.result(closed, json: self.client.json))
            if closed.status != .completed { throw ExitCode(1) }
        }
    }
}
