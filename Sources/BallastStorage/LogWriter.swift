import BallastRaft
import Foundation

/// Group commit: owns a `WriteAheadLog` on a dedicated thread, takes write batches from any
/// number of callers, and makes each accumulated group durable with one `fdatasync`.
///
/// A caller's completion runs (on the writer thread, so keep it short) only after its batch is
/// durable. Batches are applied in submission order. The queue is bounded by
/// `Options.maxQueuedBytes`: `submit` blocks the calling thread while the queue is full.
///
/// A full disk stalls the writer instead of failing it: a batch that fails for lack of space
/// while the log stays usable (`WriteAheadLog.prepareRoom`: nothing of it was written) is
/// retried every `noSpaceRetryInterval`, with every later batch waiting behind it in order,
/// until it succeeds or the writer shuts down. `onDiskPressure` hears when a stall starts and
/// ends. Any other failure completes the batch with the error (the log is then unusable).
public final class LogWriter: @unchecked Sendable {
    // @unchecked: `queue`, `queuedBytes`, `stopping`, `finished` and `counters` are guarded by
    // `condition`; `log` is touched only by the writer thread after `init`.

    /// Limits of the writer.
    public struct Options: Sendable {
        /// Encoded bytes (approximately) that may wait in the queue before `submit` blocks.
        public var maxQueuedBytes: Int

        /// Called on the writer thread after each group commit with the time the sync took and
        /// the number of batches it made durable (for metrics; keep it cheap).
        public var onGroupCommitted: (@Sendable (_ syncDuration: Duration, _ batches: Int) -> Void)?

        /// How long a write stalled for lack of space waits before it is tried again.
        public var noSpaceRetryInterval: Duration

        /// Called on the writer thread when a write stalls for lack of space (with the error) and
        /// again with nil when the stall ends (the write succeeded, or failed for another reason).
        public var onDiskPressure: (@Sendable (_ noSpaceError: String?) -> Void)?

        /// Creates options (64 MiB of queued writes, a stalled write retried every 100 ms).
        public init(maxQueuedBytes: Int = 64 << 20,
                    onGroupCommitted: (@Sendable (_ syncDuration: Duration, _ batches: Int) -> Void)? = nil,
                    noSpaceRetryInterval: Duration = .milliseconds(100),
                    onDiskPressure: (@Sendable (_ noSpaceError: String?) -> Void)? = nil) {
            precondition(maxQueuedBytes > 0, "maxQueuedBytes must be positive")
            precondition(noSpaceRetryInterval > .zero, "noSpaceRetryInterval must be positive")
            self.maxQueuedBytes = maxQueuedBytes
            self.onGroupCommitted = onGroupCommitted
            self.noSpaceRetryInterval = noSpaceRetryInterval
            self.onDiskPressure = onDiskPressure
        }
    }

    /// Counters of the writer.
    public struct Statistics: Sendable {
        /// Write batches completed successfully.
        public var batchesCommitted = 0
        /// Groups made durable (one sync each).
        public var groupsCommitted = 0
        /// `fdatasync` calls made by the log (segment roll-overs included).
        public var dataSyncs = 0
        /// The highest index known durable.
        public var durableIndex = LogIndex.zero
        /// Times a write stalled for lack of space.
        public var noSpaceStalls = 0
        /// Retries made while stalled.
        public var noSpaceRetries = 0
    }

    /// Called once a batch is durable (with the durable last index), or failed.
    public typealias Completion = @Sendable (Result<LogIndex, any Error>) -> Void

    private enum Request {
        case write(entries: [Entry], hardState: HardState?, bytes: Int, completion: Completion)
        /// `body` delivers its own success; `failed` hears a final error.
        case perform(retryOnNoSpace: Bool, body: @Sendable (WriteAheadLog) throws -> Void, failed: @Sendable (any Error) -> Void)
    }

    private let options: Options
    private let condition = NSCondition()
    private var queue: [Request] = []
    private var queuedBytes = 0
    private var stopping = false
    private var finished = false
    private var counters = Statistics()
    private let log: WriteAheadLog

    /// Takes ownership of `log` and starts the writer thread.
    public init(log: sending WriteAheadLog, options: Options = Options()) {
        self.log = log
        self.options = options
        counters.durableIndex = log.durableIndex
        let thread = Thread { [self] in run() }
        thread.name = "ballast-log-writer"
        thread.start()
    }

    /// Counters so far.
    public var statistics: Statistics {
        condition.lock()
        defer { condition.unlock() }
        return counters
    }

    /// Queues a batch (entries first, then the hard state); `completion` runs once it is durable.
    public func submit(entries: [Entry], hardState: HardState? = nil, completion: @escaping Completion) {
        let bytes = entries.reduce(WALFormat.hardStateRecordSize) { $0 + WALFormat.recordSize(payloadCount: $1.data.count) }
        condition.lock()
        while queuedBytes > 0 && queuedBytes + bytes > options.maxQueuedBytes && !stopping { condition.wait() }
        guard !stopping else {
            condition.unlock()
            completion(.failure(StorageError.closed))
            return
        }
        queue.append(.write(entries: entries, hardState: hardState, bytes: bytes, completion: completion))
        queuedBytes += bytes
        condition.signal()
        condition.unlock()
    }

    /// Writes a batch and returns once it is durable, with the durable last index.
    @discardableResult
    public func write(entries: [Entry], hardState: HardState? = nil) async throws -> LogIndex {
        try await withCheckedThrowingContinuation { continuation in
            submit(entries: entries, hardState: hardState) { continuation.resume(with: $0) }
        }
    }

    /// Runs `body` on the writer thread after every earlier batch is durable (snapshots, compaction, restore).
    /// With `retryingOnNoSpace`, a body that fails for lack of space (log still usable) stalls the
    /// writer and is run again until it succeeds, like a write.
    public func perform<T: Sendable>(retryingOnNoSpace: Bool = false,
                                     _ body: @escaping @Sendable (WriteAheadLog) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            enqueue(.perform(retryOnNoSpace: retryingOnNoSpace, body: { log in continuation.resume(returning: try body(log)) },
                             failed: { continuation.resume(throwing: $0) })) {
                continuation.resume(throwing: StorageError.closed)
            }
        }
    }

    /// Like `perform`, for callers on a thread of their own: `completion` runs on the writer
    /// thread with the outcome once `body` has run, after every earlier batch is durable.
    public func submit(perform body: @escaping @Sendable (WriteAheadLog) throws -> Void, retryingOnNoSpace: Bool = false,
                       completion: @escaping @Sendable (Result<Void, any Error>) -> Void) {
        enqueue(.perform(retryOnNoSpace: retryingOnNoSpace, body: { log in try body(log); completion(.success(())) },
                         failed: { completion(.failure($0)) })) { completion(.failure(StorageError.closed)) }
    }

    /// Queues `request`, or calls `refused` if the writer is stopping.
    private func enqueue(_ request: Request, refused: () -> Void) {
        condition.lock()
        guard !stopping else {
            condition.unlock()
            refused()
            return
        }
        queue.append(request)
        condition.signal()
        condition.unlock()
    }

    /// Completes every queued batch, closes the log and stops the thread; later submissions fail with `closed`.
    public func shutdown() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while !finished { condition.wait() }
        condition.unlock()
    }

    // MARK: - Writer thread

    private func run() {
        while let group = nextGroup() { process(group) }
        try? log.close()
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    /// Waits for work and takes the whole queue; nil once stopping and drained.
    private func nextGroup() -> [Request]? {
        condition.lock()
        defer { condition.unlock() }
        while queue.isEmpty && !stopping { condition.wait() }
        if queue.isEmpty { return nil }
        let group = queue
        queue.removeAll(keepingCapacity: true)
        queuedBytes = 0
        condition.broadcast()  // wake submitters blocked on a full queue
        return group
    }

    /// Applies a group in order with one sync per run of writes.
    private func process(_ group: [Request]) {
        var waiting: [Completion] = []
        for request in group {
            switch request {
            case let .write(entries, hardState, bytes, completion):
                var result = attemptWrite(entries, hardState, bytes: bytes)
                if case .failure(let error) = result, isRetryable(error) {
                    commit(&waiting)  // what is already written is durable and acknowledged first
                    result = stall(after: error) { attemptWrite(entries, hardState, bytes: bytes) }
                }
                switch result {
                case .success: waiting.append(completion)
                case .failure(let error): completion(.failure(error))
                }
            case let .perform(retryOnNoSpace, body, failed):
                commit(&waiting)
                var result = Result { try body(log) }
                if retryOnNoSpace, case .failure(let error) = result, isRetryable(error) {
                    result = stall(after: error) { Result { try body(log) } }
                }
                if case .failure(let error) = result { failed(error) }
            }
        }
        commit(&waiting)
    }

    /// Writes one batch: room first (where a full disk is met before anything is written), then
    /// the entries, then the hard state (never durable without the entries it commits).
    private func attemptWrite(_ entries: [Entry], _ hardState: HardState?, bytes: Int) -> Result<Void, any Error> {
        Result {
            try log.prepareRoom(forBytes: bytes)
            try log.append(entries)
            if let hardState { try log.setHardState(hardState) }
        }
    }

    /// Whether `error` is a lack of space that left the log usable, so the same call may be retried.
    private func isRetryable(_ error: any Error) -> Bool {
        (error as? StorageError)?.isNoSpace == true && log.isUsable
    }

    /// Retries `attempt` every `noSpaceRetryInterval` while it fails for lack of space, until it
    /// succeeds, fails otherwise, or the writer shuts down (then the last error stands).
    private func stall(after error: any Error, _ attempt: () -> Result<Void, any Error>) -> Result<Void, any Error> {
        condition.lock()
        counters.noSpaceStalls += 1
        condition.unlock()
        options.onDiskPressure?("\(error)")
        var result: Result<Void, any Error> = .failure(error)
        while case .failure(let last) = result, isRetryable(last), waitBeforeRetry() {
            result = attempt()
        }
        options.onDiskPressure?(nil)
        return result
    }

    /// Waits one retry interval; false if the writer is shutting down.
    private func waitBeforeRetry() -> Bool {
        let deadline = ContinuousClock.now + options.noSpaceRetryInterval
        condition.lock()
        defer { condition.unlock() }
        while !stopping, ContinuousClock.now < deadline {
            let left = deadline - ContinuousClock.now
            let seconds = Double(left.components.seconds) + Double(left.components.attoseconds) / 1e18
            _ = condition.wait(until: Date(timeIntervalSinceNow: seconds))
        }
        if !stopping { counters.noSpaceRetries += 1 }
        return !stopping
    }

    /// Syncs the log and completes `waiting`.
    private func commit(_ waiting: inout [Completion]) {
        guard !waiting.isEmpty else { return }
        let started = ContinuousClock.now
        let result: Result<LogIndex, any Error> = Result { try log.sync(); return log.durableIndex }
        if case .success = result { options.onGroupCommitted?(ContinuousClock.now - started, waiting.count) }
        condition.lock()
        if case .success(let index) = result {
            counters.batchesCommitted += waiting.count
            counters.groupsCommitted += 1
            counters.durableIndex = index
        }
        counters.dataSyncs = log.statistics.dataSyncs
        condition.unlock()
        for completion in waiting { completion(result) }
        waiting.removeAll(keepingCapacity: true)
    }
}
