import BallastProto
import SwiftProtobuf

/// Collects what one entry produces while it is applied.
struct ApplyContext {
    /// Engine time for this entry (leader time, never earlier than the previous entry's).
    let now: Int64
    /// The log index being applied (salts generated run ids).
    let index: UInt64
    /// Whether retry arithmetic is bounded (entry format 3 on; `RetryRules`).
    let boundedRetries: Bool
    /// Whether appended events add to the run's history size (entry format 4 on).
    let countsHistorySize: Bool
    /// Whether a retried activity timeout keeps its failure without the previous one as its
    /// cause (entry format 5 on; `flatTimeoutFailureFormatVersion`).
    let keepsFlatTimeoutFailures: Bool
    /// Whether search attribute values are limited in size (entry format 5 on; `searchAttributeSizeFormatVersion`).
    let limitsSearchAttributeSizes: Bool
    /// Whether what pending activities keep is limited per run (entry format 5 on; `keptActivityBytesFormatVersion`).
    let limitsKeptActivityBytes: Bool
    /// Whether names and ids are limited in length, and memos checked names included (entry
    /// format 6 on; `identifierLengthFormatVersion`).
    let limitsIdentifiers: Bool
    var result = ApplyResult()
    /// Distinguishes runs created by the same entry (children, continue-as-new).
    var nextRunSalt: UInt64 = 0
    /// Cross-run effects, run in order once the entry's own run is stored.
    var followUps: [FollowUp] = []

    init(now: Int64, index: UInt64, formatVersion: UInt32) {
        self.now = now
        self.index = index
        boundedRetries = formatVersion >= boundedRetryFormatVersion
        countsHistorySize = formatVersion >= historySizeFormatVersion
        keepsFlatTimeoutFailures = formatVersion >= flatTimeoutFailureFormatVersion
        limitsSearchAttributeSizes = formatVersion >= searchAttributeSizeFormatVersion
        limitsKeptActivityBytes = formatVersion >= keptActivityBytesFormatVersion
        limitsIdentifiers = formatVersion >= identifierLengthFormatVersion
    }

    /// Where each run's events are in `result.events`, once the entry has touched more than
    /// `linearSlots` runs (nil before).
    private var slotOfRun: [String: Int]?
    /// Runs an entry touches before `emit` looks them up in `slotOfRun` instead of scanning.
    static let linearSlots = 8

    /// Records an appended event for the run's history store.
    mutating func emit(_ run: RunKey, _ event: consuming Ballast_V1_HistoryEvent) {
        // An entry touches one or a few runs: a backwards linear scan beats a dictionary. One
        // that closes a tree of children touches thousands, where the scan made the entry
        // quadratic (22,001 runs terminated in one entry: 28 s), so past a few the slots are
        // indexed. The order of `result.events` (first touch) is the same either way.
        var slot: Int?
        if let slotOfRun {
            slot = slotOfRun[run.runId]
        } else {
            var position = result.events.count - 1
            while position >= 0, result.events[position].run.runId != run.runId { position -= 1 }
            if position >= 0 { slot = position }
        }
        if let slot {
            result.events[slot].events.append(event)
            return
        }
        // Most entries that write events write two or three to the run: room for four up
        // front saves growing the array (a reallocation and a move) once or twice.
        var events: [Ballast_V1_HistoryEvent] = []
        events.reserveCapacity(4)
        events.append(event)
        result.events.append(RunEvents(run: run, events: events))
        if slotOfRun != nil {
            slotOfRun?[run.runId] = result.events.count - 1
        } else if result.events.count > Self.linearSlots {
            var slots: [String: Int] = [:]
            for (position, batch) in result.events.enumerated() { slots[batch.run.runId] = position }
            slotOfRun = slots
        }
    }

    /// Hands over what the entry produced, leaving an empty result: a move (`swap`), where
    /// returning `result` copied it (≈ 400 instructions) and then released the context's copy.
    mutating func takeResult() -> ApplyResult {
        var taken = ApplyResult()
        swap(&taken, &result)
        slotOfRun = nil
        return taken
    }

    /// Records a task that became dispatchable.
    mutating func ready(_ task: ReadyTask) { result.newTasks.append(task) }

    /// Records an armed deadline.
    mutating func arm(_ timer: DueTimer) { result.newTimers.append(timer) }
}

extension RunState {
    /// Appends one event to the history: next id, engine time, rolling hash.
    @discardableResult
    mutating func append(_ attributes: consuming EventAttributes, _ context: inout ApplyContext) -> Int64 {
        let eventId = nextEventId
        var counted: Int64 = 0
        var event = HistoryEvent()
        event.eventID = eventId
        event.eventTimeUnixNanos = context.now
        switch attributes {
        case .activityTaskCompleted, .activityTaskFailed, .activityTaskCanceled, .activityTaskTimedOut,
             .childWorkflowExecutionStarted, .childWorkflowExecutionCompleted, .childWorkflowExecutionFailed,
             .childWorkflowExecutionCanceled, .childWorkflowExecutionTimedOut, .childWorkflowExecutionTerminated:
            let linked = linkEventIds(attributes, eventId: eventId)
            historyHash = HashingVisitor.combineEvent(historyHash, eventId: eventId, time: context.now, attributes: linked, counted: &counted)
            event.attributes = linked
        default:
            // Nothing to link: skip copying the attributes through linkEventIds.
            historyHash = HashingVisitor.combineEvent(historyHash, eventId: eventId, time: context.now, attributes: attributes, counted: &counted)
            // Moved into the event (a consuming parameter), not copied and then released.
            event.attributes = consume attributes
        }
        nextEventId += 1
        if context.countsHistorySize { historySizeBytes = historySizeBytes.addingSaturated(counted) }
        context.emit(key, event)
        return eventId
    }

    /// Writes the event now, or buffers it while a workflow task is in flight.
    mutating func appendOrBuffer(_ attributes: consuming EventAttributes, _ context: inout ApplyContext) {
        if isTaskInFlight {
            bufferedSize = bufferedSize.addingSaturated(Self.countedSize(attributes))
            var event = HistoryEvent()
            event.attributes = consume attributes
            buffered.append(event)
        } else {
            append(consume attributes, &context) // moved on, not copied (`append` consumes it)
        }
    }

    /// The counted size (`HashingVisitor.counted`) of an event not yet written: its attributes only.
    static func countedSize(_ attributes: EventAttributes) -> Int64 {
        var counted: Int64 = 0
        _ = HashingVisitor.combineEvent(0, eventId: 0, time: 0, attributes: attributes, counted: &counted)
        return counted
    }

    /// Writes all buffered events; returns whether there were any.
    @discardableResult
    mutating func flushBuffered(_ context: inout ApplyContext) -> Bool {
        guard !buffered.isEmpty else { return false }
        let events = buffered
        buffered.removeAll()
        bufferedSize = 0
        for event in events {
            if let attributes = event.attributes { append(attributes, &context) }
        }
        return true
    }
}

extension RunState {
    /// Fills ids known only when an event is written (buffered events get their ids late).
    mutating func linkEventIds(_ attributes: EventAttributes, eventId: Int64) -> EventAttributes {
        switch attributes {
        case var .activityTaskCompleted(value) where value.startedEventID == startedEventIdOfPreviousEvent:
            value.startedEventID = eventId - 1
            return .activityTaskCompleted(value)
        case var .activityTaskFailed(value) where value.startedEventID == startedEventIdOfPreviousEvent:
            value.startedEventID = eventId - 1
            return .activityTaskFailed(value)
        case var .activityTaskCanceled(value) where value.startedEventID == startedEventIdOfPreviousEvent:
            value.startedEventID = eventId - 1
            return .activityTaskCanceled(value)
        case var .activityTaskTimedOut(value) where value.startedEventID == startedEventIdOfPreviousEvent:
            value.startedEventID = eventId - 1
            return .activityTaskTimedOut(value)
        case let .childWorkflowExecutionStarted(value):
            children[value.initiatedEventID]?.startedEventId = eventId
            return attributes
        case var .childWorkflowExecutionCompleted(value):
            value.startedEventID = takeChildStartedId(value.initiatedEventID)
            return .childWorkflowExecutionCompleted(value)
        case var .childWorkflowExecutionFailed(value):
            value.startedEventID = takeChildStartedId(value.initiatedEventID)
            return .childWorkflowExecutionFailed(value)
        case var .childWorkflowExecutionCanceled(value):
            value.startedEventID = takeChildStartedId(value.initiatedEventID)
            return .childWorkflowExecutionCanceled(value)
        case var .childWorkflowExecutionTimedOut(value):
            value.startedEventID = takeChildStartedId(value.initiatedEventID)
            return .childWorkflowExecutionTimedOut(value)
        case var .childWorkflowExecutionTerminated(value):
            value.startedEventID = takeChildStartedId(value.initiatedEventID)
            return .childWorkflowExecutionTerminated(value)
        default:
            return attributes
        }
    }

    /// A child's close event is written: it stops being pending; returns its started event id.
    private mutating func takeChildStartedId(_ initiatedEventId: Int64) -> Int64 {
        children.removeValue(forKey: initiatedEventId)?.startedEventId ?? 0
    }
}
