/// The money-transfer reference example: the SQLite ledger, the simulated bank, the activities
/// and the transfer workflow.
public enum TransfersKit {}
