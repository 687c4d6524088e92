/// The kinds of task a worker runs; queries use workflow slots.
public enum WorkerTaskKind: Sendable, Equatable {
    /// Workflow tasks and query tasks.
    case workflow
    /// Activity attempts.
    case activity
}

/// A grant to send: slots given back to the stream named by `streamToken`.
public struct SlotGrant: Sendable, Equatable {
    /// The stream the slots are for.
    public var streamToken: [UInt8]
    /// Workflow (and query) slots.
    public var workflowSlots: UInt32
    /// Activity slots.
    public var activitySlots: UInt32

    /// Creates a grant.
    public init(streamToken: [UInt8], workflowSlots: UInt32, activitySlots: UInt32) {
        self.streamToken = streamToken
        self.workflowSlots = workflowSlots
        self.activitySlots = activitySlots
    }
}

/// The worker's credit bookkeeping, pure: how many tasks of each kind run, and what credit the
/// server holds for the current stream.
///
/// The server's credit for a stream is its initial slots plus grants minus pushes. A stream is
/// opened with every free slot; a slot freed after that (by a task from any stream, old or
/// new) is granted to the current stream, so credit never exceeds free capacity and never
/// leaks across reconnections.
public struct WorkerSlots: Sendable {
    /// Concurrency limits.
    public let maximumWorkflowTasks: Int
    /// Concurrency limit of activity attempts.
    public let maximumActivities: Int
    /// Tasks running now.
    public private(set) var runningWorkflowTasks = 0
    /// Activity attempts running now.
    public private(set) var runningActivities = 0
    /// Slots freed since the current stream was opened, not yet granted.
    public private(set) var pendingWorkflowGrant: UInt32 = 0
    /// Activity slots freed and not yet granted.
    public private(set) var pendingActivityGrant: UInt32 = 0
    /// The current stream's token, once its first message arrived.
    public private(set) var streamToken: [UInt8]?
    /// Tasks pushed beyond the credit given (a server bug; counted for diagnosis).
    public private(set) var overCreditPushes = 0

    /// Creates empty bookkeeping.
    public init(maximumWorkflowTasks: Int, maximumActivities: Int) {
        precondition(maximumWorkflowTasks >= 0 && maximumActivities >= 0, "limits must not be negative")
        self.maximumWorkflowTasks = maximumWorkflowTasks
        self.maximumActivities = maximumActivities
    }

    /// A new stream is being opened: its initial credit is every free slot.
    public mutating func openStream() -> (workflowSlots: UInt32, activitySlots: UInt32) {
        streamToken = nil
        pendingWorkflowGrant = 0
        pendingActivityGrant = 0
        return (UInt32(max(0, maximumWorkflowTasks - runningWorkflowTasks)),
                UInt32(max(0, maximumActivities - runningActivities)))
    }

    /// The stream announced its token.
    public mutating func streamStarted(token: [UInt8]) { streamToken = token }

    /// The stream broke: nothing can be granted until a new one starts.
    public mutating func streamLost() { streamToken = nil }

    /// The server pushed a task of `kind`.
    public mutating func taskArrived(_ kind: WorkerTaskKind) {
        switch kind {
        case .workflow:
            runningWorkflowTasks += 1
            if runningWorkflowTasks > maximumWorkflowTasks { overCreditPushes += 1 }
        case .activity:
            runningActivities += 1
            if runningActivities > maximumActivities { overCreditPushes += 1 }
        }
    }

    /// A task of `kind` finished: its slot is owed to the current stream (only if it is free).
    public mutating func taskFinished(_ kind: WorkerTaskKind) {
        switch kind {
        case .workflow:
            precondition(runningWorkflowTasks > 0, "a workflow task finished that never started")
            runningWorkflowTasks -= 1
            if runningWorkflowTasks < maximumWorkflowTasks { pendingWorkflowGrant += 1 }
        case .activity:
            precondition(runningActivities > 0, "an activity finished that never started")
            runningActivities -= 1
            if runningActivities < maximumActivities { pendingActivityGrant += 1 }
        }
    }

    /// Takes every pending slot as one grant (nil when nothing is owed or no stream is up).
    public mutating func takeGrant() -> SlotGrant? {
        guard let streamToken, pendingWorkflowGrant > 0 || pendingActivityGrant > 0 else { return nil }
        let grant = SlotGrant(streamToken: streamToken, workflowSlots: pendingWorkflowGrant, activitySlots: pendingActivityGrant)
        pendingWorkflowGrant = 0
        pendingActivityGrant = 0
        return grant
    }

    /// A grant could not be delivered: owe it again if its stream is still the current one.
    public mutating func grantFailed(_ grant: SlotGrant) {
        guard grant.streamToken == streamToken else { return }
        pendingWorkflowGrant += grant.workflowSlots
        pendingActivityGrant += grant.activitySlots
    }

    /// Whether no task is running.
    public var idle: Bool { runningWorkflowTasks == 0 && runningActivities == 0 }
}
