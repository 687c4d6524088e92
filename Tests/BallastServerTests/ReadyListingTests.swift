import BallastEngine
import BallastProto
import BallastWire
import Foundation
import Synchronization
import Testing
@testable import BallastServer

/// What the ready-listing hook saw, and the gate that holds the first listing.
private final class ListingProbe: Sendable {
    private let indexes = Mutex<[UInt64]>([])
    let gate = DispatchSemaphore(value: 0)

    /// Records a listing's copy index; holds the first listing until `gate` is signalled.
    func listing(copyIndex: UInt64) {
        let first = indexes.withLock { indexes -> Bool in
            indexes.append(copyIndex)
            return indexes.count == 1
        }
        if first { gate.wait() }
    }

    var copyIndexes: [UInt64] { indexes.withLock { $0 } }
}

/// Counts the workflow tasks pushed to a stream.
private final class PushCounter: Sendable {
    private let count = Mutex(0)
    func record(_ event: Ballast_V1_TaskStreamEvent) {
        if case .workflowTask? = event.event { count.withLock { $0 += 1 } }
    }
    var workflowTasks: Int { count.withLock { $0 } }
}

/// The leader lists a queue's ready tasks off the loop, one queue at a time (`Dispatcher.load`).
@Suite("Ready listing")
struct ReadyListingTests {
    @Test("a queue waiting for its listing gets a copy of the engine taken when its listing starts, not when it asked")
    func copyTakenWhenTheListingStarts() async throws {
        let single = try await SingleNode()
        let probe = ListingProbe()
        defer { for _ in 0 ..< 4 { probe.gate.signal() } }
        let dispatcher = single.node.dispatcher
        dispatcher.state.withLock { state in state.beforeReadyListing = { probe.listing(copyIndex: $0) } }
        let client = try await single.client()
        func start(_ workflowId: String, queue: String) async throws {
            var request = startRequest(workflowId)
            request.taskQueue = queue
            let _: Ballast_V1_StartWorkflowResponse = try await client.unary(BallastMethod.Workflow.start, request: request)
        }
        try await start("listed-a", queue: "queue-a")
        try await start("listed-b", queue: "queue-b")
        var counters: [PushCounter] = []
        for queue in ["queue-a", "queue-b"] {
            let counter = PushCounter()
            counters.append(counter)
            let sink = TaskSink(identity: "probe-\(queue)", nonce: 1, push: { counter.record($0) }, close: { _ in })
            _ = try dispatcher.openStream(queue: TaskQueueKey(namespace: "default", taskQueue: queue), workflowSlots: 1,
                                          activitySlots: 0, acceptsQueries: false, oneShot: false, sink: sink, onOpen: { _ in })
        }
        // queue-a's listing is held; queue-b's waits behind it. The engine moves on meanwhile.
        try await waitUntil("the first listing is held") { probe.copyIndexes.count == 1 }
        #expect(dispatcher.state.withLock { $0.pendingLoads.map(\.queue.taskQueue) } == ["queue-b"])
        try await start("later", queue: "queue-c")
        let applied = await single.node.raftStatus().applied.rawValue
        probe.gate.signal()
        try await waitUntil("both streams got their workflow task") { counters.allSatisfy { $0.workflowTasks == 1 } }
        let indexes = probe.copyIndexes
        #expect(indexes.count == 2)
        #expect(indexes.count == 2 && indexes[1] >= applied,
                "queue-b's copy (index \(indexes.last ?? 0)) was taken after the start applied at \(applied)")
        #expect(dispatcher.state.withLock { !$0.listingReadyTasks && $0.pendingLoads.isEmpty })
        await client.close()
        await single.stop()
    }
}
