import BallastProto

// Short internal names for the generated protobuf types the engine uses everywhere.
typealias HistoryEvent = Ballast_V1_HistoryEvent
typealias EventAttributes = Ballast_V1_HistoryEvent.OneOf_Attributes
typealias Payloads = Ballast_V1_Payloads
typealias Failure = Ballast_V1_Failure
typealias RetryPolicy = Ballast_V1_RetryPolicy
typealias Command = Ballast_V1_Command
typealias EngineEntry = Ballast_V1_EngineEntry
typealias TaskToken = Ballast_V1_TaskToken
typealias WorkflowStatus = Ballast_V1_WorkflowExecutionStatus
typealias Memo = Ballast_V1_Memo
typealias SearchAttributes = Ballast_V1_SearchAttributes
typealias Header = Ballast_V1_Header
