import BallastEngine
import BallastProto
import BallastRaft

/// Eager dispatch: an entry that will make tasks ready (a start, a workflow-task completion that
/// schedules activities, an activity result that wakes the workflow) is proposed with slots
/// already reserved on a worker's stream, and starts those tasks itself (`EngineEntry.eager_dispatch`),
/// so they skip the started entry, its fsync and its round trip. What the entry does not use
/// goes back to the stream; tasks it did not start are dispatched as usual.
extension Dispatcher {
    /// Slots reserved for one proposal, valid in the leadership epoch it was made in.
    struct EagerTicket: Sendable {
        let epoch: UInt64
        let reservation: EagerReservation
        /// The eager dispatch of the entry to propose (`EngineEntry.eager`).
        let message: Ballast_V1_EagerDispatch
    }

    /// What an entry could start eagerly.
    enum EagerWant: Sendable {
        /// The first workflow task of a start on this queue (any stream of the queue).
        case firstWorkflowTask(TaskQueueKey)
        /// The next workflow task and up to `activities` activities of a run, on the stream
        /// that last took its workflow task.
        case sticky(runId: String, workflowTask: Bool, activities: UInt32)
    }

    /// Reserves slots for an entry about to be proposed; nil when eager dispatch is off, this
    /// node does not lead, or no suitable stream has free slots.
    func reserveEager(_ want: EagerWant) -> EagerTicket? {
        guard eagerActive else { return nil }
        return state.withLock { state -> EagerTicket? in
            let reservation: EagerReservation?
            switch want {
            case .firstWorkflowTask(let queue):
                reservation = state.core.reserveEager(queue: queue)
            case .sticky(let runId, let workflowTask, let activities):
                reservation = state.core.reserveEager(stickyRun: runId, workflow: workflowTask ? 1 : 0, activity: activities)
            }
            guard let reservation, let sink = state.sinks[reservation.stream] else {
                if let reservation { _ = state.core.eagerFinished(reservation, started: []) }
                return nil
            }
            var message = Ballast_V1_EagerDispatch()
            message.identity = sink.identity
            message.namespace = reservation.queue.namespace
            message.taskQueue = reservation.queue.taskQueue
            message.workflowTasks = reservation.workflow
            message.activityTasks = reservation.activity
            return EagerTicket(epoch: state.epoch, reservation: reservation, message: message)
        }
    }

    /// The entry of `ticket` was applied (with what it started) or failed; on the Raft loop
    /// thread, right after the apply. Pushes the started tasks, refunds the rest, re-matches.
    func eagerFinished(_ ticket: EagerTicket, started: [EagerStart]) {
        let now = monotonicNanos()
        let (sink, work) = state.withLock { state -> (TaskSink?, Work?) in
            guard state.epoch == ticket.epoch else { return (nil, nil) }
            let push = state.core.eagerFinished(ticket.reservation, started: started.map(\.task))
            return (push ? state.sinks[ticket.reservation.stream] : nil, collectWork(&state))
        }
        if let sink {
            metrics.recordEagerStarts(started.count)
            for start in started { deliver(start.response, to: sink, readyAtNanos: now) }
        }
        if let work { perform(work) }
    }
}
