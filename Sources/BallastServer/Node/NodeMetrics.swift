import BallastEngine
import BallastRaft
import Prometheus
import Synchronization

/// The node's Prometheus metrics, served at the admin port's `/metrics`. Each node has its own
/// registry (no global bootstrap), so several nodes can live in one process in tests.
public final class NodeMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let term: Gauge
    private let commitIndex: Gauge
    private let appliedIndex: Gauge
    private let lastIndex: Gauge
    private let isLeader: Gauge
    private let voters: Gauge
    private let leaderChanges: Counter
    private let proposals: Counter
    private let proposalsRejected: Counter
    private let proposalsFailed: Counter
    private let commitLatency: DurationHistogram
    private let readLatency: DurationHistogram
    private let fsyncLatency: DurationHistogram
    private let batchesPerFsync: ValueHistogram
    private let lastLeader = Mutex<NodeID?>(nil)
    private let dispatchLatency: DurationHistogram
    private let tasksPushed: Counter
    private let connectedWorkers: Gauge
    private let timersFired: Counter
    private let deadlinesDropped: Counter
    private let eagerStarts: Counter
    private let partialHistories: Counter
    private let readsOffLoop: Counter
    private let readsRefused: Counter
    private let pendingTasks = Mutex<[String: Gauge]>([:])
    private let workflowsStarted: Counter
    /// One counter per closing status; the label set is fixed, so it stays bounded.
    private let workflowsClosed: [ClosedStatus: Counter]
    /// Per port (`api`, `admin`, `raft`): inbound connections open, and those closed at accept.
    private let connectionsOpen: [String: Gauge]
    private let connectionsRefused: [String: Counter]
    /// The servers' refusal totals at the last update (the counters grow by the difference).
    private let refusedAtLastUpdate = Mutex<[String: Int]>([:])
    /// The ports `updateConnections` reports, as the `port` label.
    static let connectionPorts = ["api", "admin", "raft"]

    /// How a run closed, as the `status` label of `ballast_workflows_closed_total`.
    enum ClosedStatus: String, CaseIterable {
        case completed, failed, canceled, terminated
        case timedOut = "timed_out"
        case continuedAsNew = "continued_as_new"
    }

    /// Creates the metrics, all at zero.
    public init() {
        let latencyBuckets: [Duration] = [.microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
                                          .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                                          .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1)]
        func name(_ subsystem: String, _ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "ballast", subsystem: subsystem, metricName: metric, unitName: unit, helpText: help)
        }
        term = registry.makeGauge(descriptor: name("raft", "term", "", "Current Raft term."))
        commitIndex = registry.makeGauge(descriptor: name("raft", "commit", "index", "Highest log index known committed."))
        appliedIndex = registry.makeGauge(descriptor: name("raft", "applied", "index", "Highest log index applied to the engine."))
        lastIndex = registry.makeGauge(descriptor: name("raft", "last", "index", "Last index in this node's log."))
        isLeader = registry.makeGauge(descriptor: name("raft", "is", "leader", "1 while this node is the leader."))
        voters = registry.makeGauge(descriptor: name("raft", "voters", "", "Voting members in the current membership."))
        leaderChanges = registry.makeCounter(
            descriptor: name("raft", "leader_changes", "total", "Times this node saw the leader change."))
        proposals = registry.makeCounter(descriptor: name("", "proposals", "total", "Client calls proposed as engine entries."))
        proposalsRejected = registry.makeCounter(
            descriptor: name("", "proposals_rejected", "total", "Proposals applied but rejected by the engine (nothing changed)."))
        proposalsFailed = registry.makeCounter(
            descriptor: name("", "proposals_failed", "total", "Proposals refused or lost (not leader, superseded, storage)."))
        commitLatency = registry.makeDurationHistogram(
            descriptor: name("", "commit_latency", "seconds", "Proposal to committed-and-applied, on the leader."),
            buckets: latencyBuckets)
        readLatency = registry.makeDurationHistogram(
            descriptor: name("", "read_latency", "seconds", "Linearizable (ReadIndex) read latency."), buckets: latencyBuckets)
        fsyncLatency = registry.makeDurationHistogram(
            descriptor: name("", "fsync_latency", "seconds", "Write-ahead log group sync (fdatasync) latency."),
            buckets: latencyBuckets)
        batchesPerFsync = registry.makeValueHistogram(
            descriptor: name("", "batches_per", "fsync", "Write batches made durable by one sync (group commit)."),
            buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 1024])
        dispatchLatency = registry.makeDurationHistogram(
            descriptor: name("dispatch", "latency", "seconds", "Task ready (or queue loaded) to pushed to a worker, on the leader."),
            buckets: latencyBuckets)
        tasksPushed = registry.makeCounter(
            descriptor: name("dispatch", "tasks_pushed", "total", "Workflow and activity tasks pushed to workers."))
        connectedWorkers = registry.makeGauge(
            descriptor: name("dispatch", "connected", "workers", "Open task streams and waiting long polls on this leader."))
        workflowsStarted = registry.makeCounter(
            descriptor: name("workflows", "started", "total", "Workflow runs started, as applied by this node."))
        var closed: [ClosedStatus: Counter] = [:]
        for status in ClosedStatus.allCases {
            closed[status] = registry.makeCounter(
                descriptor: name("workflows", "closed", "total", "Workflow runs closed, by status, as applied by this node."),
                labels: [("status", status.rawValue)])
        }
        workflowsClosed = closed
        var open: [String: Gauge] = [:]
        var refused: [String: Counter] = [:]
        for port in Self.connectionPorts {
            open[port] = registry.makeGauge(
                descriptor: name("", "connections_open", "", "Inbound connections open now, by port (raft: from peers)."),
                labels: [("port", port)])
            refused[port] = registry.makeCounter(
                descriptor: name("", "connections_refused", "total",
                                 "Inbound connections closed at accept because the port was at its connection limit, by port."),
                labels: [("port", port)])
        }
        connectionsOpen = open
        connectionsRefused = refused
        timersFired = registry.makeCounter(
            descriptor: name("", "timers_fired", "total", "Deadlines (timers, timeouts, retries) fired and applied by this leader."))
        eagerStarts = registry.makeCounter(
            descriptor: name("dispatch", "eager_starts", "total",
                             "Tasks started by the entry that made them ready (eager dispatch) and pushed by this leader."))
        partialHistories = registry.makeCounter(
            descriptor: name("dispatch", "partial_histories", "total",
                             "Workflow tasks pushed with only the events after the stream's previous task of the run (sticky)."))
        readsOffLoop = registry.makeCounter(
            descriptor: name("", "reads_off_loop", "total",
                             "Reads run on a copy of the engine off the Raft loop: counts, List pages that read many rows, the web UI's failing runs."))
        readsRefused = registry.makeCounter(
            descriptor: name("", "reads_refused", "total",
                             "List pages and reads off the loop refused with RESOURCE_EXHAUSTED: too many of them were waiting on this node."))
        deadlinesDropped = registry.makeCounter(
            descriptor: name("", "deadlines_dropped", "total",
                             "Deadlines that came due after the engine had dropped them (task done, timer canceled), not proposed."))
    }

    /// Refreshes the Raft gauges from a status snapshot and counts leader changes.
    func update(from status: RaftStatus) {
        term.set(Double(status.term.rawValue))
        commitIndex.set(Double(status.commit.rawValue))
        appliedIndex.set(Double(status.applied.rawValue))
        lastIndex.set(Double(status.lastIndex.rawValue))
        isLeader.set(status.role == .leader ? 1.0 : 0.0)
        voters.set(Double(status.membership.voters.count))
        let changed = lastLeader.withLock { last -> Bool in
            defer { last = status.leader }
            return status.leader != nil && status.leader != last
        }
        if changed { leaderChanges.increment() }
    }

    /// Records one proposal's outcome and, when it was applied, its latency.
    func recordProposal(latency: Duration, outcome: ProposalOutcome) {
        proposals.increment()
        switch outcome {
        case .applied: commitLatency.record(latency)
        case .rejected:
            commitLatency.record(latency)
            proposalsRejected.increment()
        case .failed: proposalsFailed.increment()
        }
    }

    /// What became of a proposal.
    enum ProposalOutcome { case applied, rejected, failed }

    /// Counts the runs an applied entry started and closed (called on the loop thread of every
    /// node, so each node's counters describe the same history).
    func recordApplied(_ result: ApplyResult) {
        for run in result.events {
            for event in run.events {
                switch event.attributes {
                case .workflowExecutionStarted: workflowsStarted.increment()
                case .workflowExecutionCompleted: workflowsClosed[.completed]?.increment()
                case .workflowExecutionFailed: workflowsClosed[.failed]?.increment()
                case .workflowExecutionCanceled: workflowsClosed[.canceled]?.increment()
                case .workflowExecutionTerminated: workflowsClosed[.terminated]?.increment()
                case .workflowExecutionTimedOut: workflowsClosed[.timedOut]?.increment()
                case .workflowExecutionContinuedAsNew: workflowsClosed[.continuedAsNew]?.increment()
                default: continue
                }
            }
        }
    }

    /// Records a linearizable read's latency.
    func recordRead(latency: Duration) { readLatency.record(latency) }

    /// Records a group commit of the write-ahead log.
    @Sendable func recordGroupCommit(syncDuration: Duration, batches: Int) {
        fsyncLatency.record(syncDuration)
        batchesPerFsync.record(Double(batches))
    }

    /// Records one task pushed to a worker, `latencyNanos` after it was ready.
    func recordDispatch(latencyNanos: Int64) {
        tasksPushed.increment()
        dispatchLatency.record(.nanoseconds(max(0, latencyNanos)))
    }

    /// Counts a deadline fired and applied.
    func recordTimerFired() { timersFired.increment() }
    func recordDeadlinesDropped(_ count: Int) { deadlinesDropped.increment(by: Int64(count)) }
    func recordEagerStarts(_ count: Int) { if count > 0 { eagerStarts.increment(by: Int64(count)) } }
    func recordPartialHistory() { partialHistories.increment() }
    func recordReadOffLoop() { readsOffLoop.increment() }
    func recordReadRefused() { readsRefused.increment() }

    /// Sets the dispatch gauges: open streams and ready tasks per tracked queue (a queue's
    /// gauge is removed when the queue is no longer tracked, so labels stay bounded).
    func updateDispatch(streams: Int, pending: [TaskQueueKey: Int]) {
        connectedWorkers.set(Double(streams))
        pendingTasks.withLock { gauges in
            var seen: Set<String> = []
            for (queue, count) in pending {
                let key = queue.description
                seen.insert(key)
                let gauge = gauges[key] ?? registry.makeGauge(
                    descriptor: MetricNameDescriptor(namespace: "ballast", subsystem: "dispatch", metricName: "pending",
                                                     unitName: "tasks",
                                                     helpText: "Ready tasks waiting for a worker slot, per tracked task queue."),
                    labels: [("namespace", queue.namespace), ("task_queue", queue.taskQueue)])
                gauges[key] = gauge
                gauge.set(Double(count))
            }
            for (key, gauge) in gauges where !seen.contains(key) {
                registry.unregisterGauge(gauge)
                gauges[key] = nil
            }
        }
    }

    /// Sets the open-connection gauges and counts the refusals since the last update, per port
    /// (`refused`: the server's total since it started).
    func updateConnections(_ ports: [(port: String, open: Int, refused: Int)]) {
        refusedAtLastUpdate.withLock { last in
            for entry in ports {
                connectionsOpen[entry.port]?.set(Double(entry.open))
                let growth = entry.refused - (last[entry.port] ?? 0)
                if growth > 0 {
                    connectionsRefused[entry.port]?.increment(by: Int64(growth))
                    last[entry.port] = entry.refused
                }
            }
        }
    }

    /// The Prometheus text exposition.
    func text() -> String { registry.emitToString() }
}
