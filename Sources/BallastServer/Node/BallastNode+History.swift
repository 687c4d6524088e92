import BallastWire

extension BallastNode {
    /// The read side of WorkflowService: history, list, count and waiting for a run to close.
    func registerHistoryService(_ registry: inout GRPCMethodRegistry) {}
}
