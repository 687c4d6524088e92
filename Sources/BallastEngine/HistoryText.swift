import BallastProto

/// The readable timeline of a run's history, shared by `ballast workflow show` and the web UI,
/// so both say the same thing about the same events. Pure: no clock, no Foundation.
public enum HistoryText {
    /// How an event reads at a glance (the UI colours rows by it).
    public enum Tone: String, Sendable {
        case neutral, good, bad, warning
    }

    /// One event of the timeline, already rendered as text.
    public struct Row: Sendable, Equatable {
        /// The event id.
        public var eventID: Int64
        /// Event time, ISO 8601 UTC with milliseconds.
        public var time: String
        /// Time since the first event, e.g. `+1.2s`.
        public var offset: String
        /// Temporal's event type name.
        public var type: String
        /// `key=value` details of the event.
        public var details: String
        /// How the event reads.
        public var tone: Tone
    }

    /// The rows of `events` (activity outcomes name their activity's type and id).
    public static func rows(_ events: [Ballast_V1_HistoryEvent]) -> [Row] {
        guard let first = events.first else { return [] }
        var activities: [Int64: String] = [:]
        return events.map { event in
            if case .activityTaskScheduled(let scheduled)? = event.attributes {
                activities[event.eventID] = "\(scheduled.activityType.name)#\(scheduled.activityID)"
            }
            return Row(eventID: event.eventID, time: time(event.eventTimeUnixNanos),
                       offset: offset(Self.elapsed(from: first.eventTimeUnixNanos, to: event.eventTimeUnixNanos)), type: event.typeName,
                       details: details(event, activities: activities), tone: tone(event))
        }
    }

    /// The history as plain text, one event per line (what `ballast workflow show` prints).
    public static func timeline(_ events: [Ballast_V1_HistoryEvent]) -> String {
        let rows = rows(events)
        guard !rows.isEmpty else { return "no events" }
        return rows.map { row in
            [leftPadded(String(row.eventID), 5), row.time, leftPadded(row.offset, 8), rightPadded(row.type, 36), row.details]
                .joined(separator: "  ")
        }.joined(separator: "\n")
    }

    /// Event details as `key=value` pairs; `activities` maps scheduled event ids to `Type#id`.
    public static func details(_ event: Ballast_V1_HistoryEvent, activities: [Int64: String] = [:]) -> String {
        func activity(_ id: Int64) -> String { activities[id].map { "activity=\($0)" } ?? "scheduled=\(id)" }
        switch event.attributes {
        case .workflowExecutionStarted(let a)?:
            return "type=\(a.workflowType.name) queue=\(a.taskQueue) input=\(payloads(a.input))"
        case .workflowExecutionCompleted(let a)?: return "result=\(payloads(a.result))"
        case .workflowExecutionFailed(let a)?: return "failure=\(failure(a.failure))"
        case .workflowExecutionTerminated(let a)?: return "reason=\(quoted(a.reason)) identity=\(a.identity)"
        case .workflowExecutionContinuedAsNew(let a)?: return "new run=\(a.newExecutionRunID)"
        case .workflowTaskScheduled(let a)?: return "queue=\(a.taskQueue) attempt=\(a.attempt)"
        case .workflowTaskStarted(let a)?: return "identity=\(a.identity)"
        case .workflowTaskFailed(let a)?: return "cause=\(a.cause) failure=\(failure(a.failure))"
        case .activityTaskScheduled(let a)?:
            return "id=\(a.activityID) type=\(a.activityType.name) input=\(payloads(a.input))"
        case .activityTaskStarted(let a)?:
            return "\(activity(a.scheduledEventID)) attempt=\(a.attempt) identity=\(a.identity)"
        case .activityTaskCompleted(let a)?: return "\(activity(a.scheduledEventID)) result=\(payloads(a.result))"
        case .activityTaskFailed(let a)?: return "\(activity(a.scheduledEventID)) failure=\(failure(a.failure))"
        case .activityTaskTimedOut(let a)?: return "\(activity(a.scheduledEventID)) failure=\(failure(a.failure))"
        case .activityTaskCancelRequested(let a)?: return activity(a.scheduledEventID)
        case .activityTaskCanceled(let a)?: return activity(a.scheduledEventID)
        case .timerStarted(let a)?: return "id=\(a.timerID) fires in \(duration(a.startToFireTimeoutNanos))"
        case .timerFired(let a)?: return "id=\(a.timerID)"
        case .timerCanceled(let a)?: return "id=\(a.timerID)"
        case .workflowExecutionSignaled(let a)?:
            var text = "name=\(a.signalName) input=\(payloads(a.input)) identity=\(a.identity)"
            if !a.reason.isEmpty { text += " reason=\(quoted(a.reason))" }
            return text
        case .workflowExecutionCancelRequested(let a)?: return "reason=\(quoted(a.cause)) identity=\(a.identity)"
        case .markerRecorded(let a)?: return "name=\(a.markerName)"
        case .upsertWorkflowSearchAttributes(let a)?:
            return a.searchAttributes.indexedFields.keys.sorted().map { key in
                "\(key)=\(searchAttribute(a.searchAttributes.indexedFields[key] ?? .init()))"
            }.joined(separator: " ")
        case .startChildWorkflowExecutionInitiated(let a)?: return "id=\(a.workflowID) type=\(a.workflowType.name)"
        case .childWorkflowExecutionStarted(let a)?: return "id=\(a.workflowExecution.workflowID) run=\(a.workflowExecution.runID)"
        case .childWorkflowExecutionCompleted(let a)?: return "id=\(a.workflowExecution.workflowID) result=\(payloads(a.result))"
        case .childWorkflowExecutionFailed(let a)?: return "id=\(a.workflowExecution.workflowID) failure=\(failure(a.failure))"
        default: return ""
        }
    }

    /// Good for closes that completed, bad for failures and terminations, warning for cancel requests and timeouts.
    public static func tone(_ event: Ballast_V1_HistoryEvent) -> Tone {
        switch event.attributes {
        case .workflowExecutionCompleted?, .activityTaskCompleted?, .childWorkflowExecutionCompleted?: .good
        case .workflowExecutionFailed?, .workflowExecutionTerminated?, .workflowTaskFailed?, .activityTaskFailed?,
             .childWorkflowExecutionFailed?, .startChildWorkflowExecutionFailed?: .bad
        case .workflowExecutionCancelRequested?, .workflowExecutionTimedOut?, .workflowTaskTimedOut?, .activityTaskTimedOut?,
             .workflowExecutionCanceled?, .activityTaskCanceled?: .warning
        default: .neutral
        }
    }

    /// Lowercase status names: `running`, `completed`, `failed`, `canceled`, `terminated`, `continued-as-new`, `timed-out`.
    public static func statusName(_ status: Ballast_V1_WorkflowExecutionStatus) -> String {
        switch status {
        case .running: "running"
        case .completed: "completed"
        case .failed: "failed"
        case .canceled: "canceled"
        case .terminated: "terminated"
        case .continuedAsNew: "continued-as-new"
        case .timedOut: "timed-out"
        default: "unknown"
        }
    }

    /// Whether the payload is plain JSON (no encoding metadata or `json/plain`), i.e. no codec is in use.
    public static func isPlainJSON(_ payload: Ballast_V1_Payload) -> Bool {
        let encoding = payload.metadata["encoding"].map { String(decoding: $0, as: UTF8.self) } ?? ""
        return encoding.isEmpty || encoding == "json/plain"
    }

    /// One payload as text: JSON as is, anything else as `<encoding: base64>`.
    public static func payload(_ payload: Ballast_V1_Payload) -> String {
        let bytes = Array(payload.data)
        if isPlainJSON(payload), let text = String(validating: bytes, as: UTF8.self) {
            return text.isEmpty ? "null" : text
        }
        let encoding = payload.metadata["encoding"].map { String(decoding: $0, as: UTF8.self) } ?? "binary"
        return "<\(encoding): \(base64(bytes))>"
    }

    /// Payloads as text: `null`, the one payload, or a bracketed list.
    public static func payloads(_ payloads: Ballast_V1_Payloads) -> String {
        switch payloads.payloads.count {
        case 0: "null"
        case 1: payload(payloads.payloads[0])
        default: "[" + payloads.payloads.map(payload).joined(separator: ", ") + "]"
        }
    }

    /// `Type: message (non-retryable): caused by: …`.
    public static func failure(_ failure: Ballast_V1_Failure) -> String {
        var parts = [failure.type, failure.message].filter { !$0.isEmpty }
        if failure.nonRetryable { parts.append("(non-retryable)") }
        if failure.hasCause { parts.append("caused by: " + self.failure(failure.cause)) }
        return parts.joined(separator: ": ")
    }

    /// A search attribute value as text.
    public static func searchAttribute(_ value: Ballast_V1_SearchAttributeValue) -> String {
        switch value.value {
        case .textValue(let text)?: text
        case .keywordValue(let keyword)?: keyword
        case .intValue(let number)?: String(number)
        case .doubleValue(let number)?: String(number)
        case .boolValue(let flag)?: String(flag)
        case .datetimeUnixNanos(let nanos)?: time(nanos)
        case .keywordListValue(let list)?: list.values.joined(separator: ",")
        case nil: "-"
        }
    }

    /// `2026-11-24T08:30:00.123Z` for Unix nanoseconds (UTC); `-` for 0 or less.
    public static func time(_ nanos: Int64) -> String {
        guard nanos > 0 else { return "-" }
        let millisTotal = nanos / 1_000_000
        let days = millisTotal / 86_400_000
        let millisOfDay = millisTotal % 86_400_000
        let (year, month, day) = civilDate(daysSinceEpoch: days)
        let hour = millisOfDay / 3_600_000, minute = millisOfDay / 60_000 % 60, second = millisOfDay / 1000 % 60
        return "\(year)-\(zeroPadded(month, 2))-\(zeroPadded(day, 2))T\(zeroPadded(hour, 2)):\(zeroPadded(minute, 2)):"
            + "\(zeroPadded(second, 2)).\(zeroPadded(millisOfDay % 1000, 3))Z"
    }

    /// `350ms`, `1.2s`, or `-` for zero or less. Rounded to tenths without adding first: a
    /// timer of `Int64.max` (what the Swift SDK sends for a sleep beyond 292 years) made
    /// `nanos + 50_000_000` overflow, which trapped in the node serving the run's web page.
    public static func duration(_ nanos: Int64) -> String {
        if nanos <= 0 { return "-" }
        if nanos < 1_000_000_000 { return "\(nanos / 1_000_000)ms" }
        let tenths = nanos / 100_000_000 + (nanos % 100_000_000 >= 50_000_000 ? 1 : 0)
        return "\(tenths / 10).\(tenths % 10)s"
    }

    /// `+350ms`, `+1.2s`; `+0ms` for the first event.
    public static func offset(_ nanos: Int64) -> String { nanos > 0 ? "+" + duration(nanos) : "+0ms" }

    /// `to - from`, held at `Int64.max`/`Int64.min` where it would overflow (times more than 292
    /// years apart, which only a history written by hand can hold).
    public static func elapsed(from: Int64, to: Int64) -> Int64 {
        let (difference, overflow) = to.subtractingReportingOverflow(from)
        guard overflow else { return difference }
        return to > from ? .max : .min
    }

    /// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
    static func civilDate(daysSinceEpoch: Int64) -> (Int64, Int64, Int64) {
        let shifted = daysSinceEpoch + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// Standard base64 with padding.
    public static func base64(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let chunk = bytes[index ..< min(index + 3, bytes.count)]
            let value = chunk.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (16 - 8 * UInt32($1.offset)) }
            for position in 0 ..< 4 {
                out.append(position <= chunk.count ? alphabet[Int(value >> (18 - 6 * UInt32(position)) & 63)] : UInt8(ascii: "="))
            }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func quoted(_ text: String) -> String { "\"" + text + "\"" }

    static func zeroPadded(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }

    static func leftPadded(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }

    static func rightPadded(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }
}
