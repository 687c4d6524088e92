import BallastWire

extension BallastNode {
    /// WorkerService: task streams, polls and task completions (see docs/protocol.md).
    func registerWorkerService(_ registry: inout GRPCMethodRegistry) {}
}
