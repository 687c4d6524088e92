import BallastSDK
import Foundation
import Synchronization

/// One call the cluster acknowledged, as `transfers start --ack-log` and `transfers worker
/// --ack-log` record it: one JSON object per line (docs/reliability.md, "Invariants").
///
/// The chaos checker reads these lines back and requires each acknowledged call to be visible
/// in the final history, so the fields are what identifies the call's effect there.
public struct AckRecord: Sendable, Codable, Equatable {
    /// What was acknowledged.
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// StartWorkflowExecution answered a run id (`started` says whether this call created it).
        case start
        /// SignalWorkflowExecution answered OK.
        case signal
        /// RespondActivityTaskCompleted answered OK.
        case activityCompleted = "activity-completed"
        /// RespondActivityTaskFailed answered OK (the failure may have been retried).
        case activityFailed = "activity-failed"
        /// RespondActivityTaskCanceled answered OK.
        case activityCanceled = "activity-canceled"
        /// RespondWorkflowTaskCompleted answered OK.
        case workflowTaskCompleted = "workflow-task-completed"
        /// RespondWorkflowTaskFailed answered OK.
        case workflowTaskFailed = "workflow-task-failed"
    }

    /// What was acknowledged.
    public var kind: Kind
    /// When the acknowledgement arrived (ISO 8601, UTC, milliseconds).
    public var time: String
    /// The workflow id.
    public var workflowID: String
    /// The run id (empty for a signal sent to the workflow's current run).
    public var runID: String
    /// Start and signal: the request id the call carried (the same across its retries).
    public var requestID: String?
    /// Start: whether this call created the run (false: the request id found it existing).
    public var started: Bool?
    /// Signal: its name.
    public var signalName: String?
    /// Activity: the scheduled event id; workflow task: the scheduled event id of the task.
    public var scheduledEventID: Int64?
    /// Workflow task: the started event id the task was given.
    public var startedEventID: Int64?
    /// Activity: the activity id.
    public var activityID: String?
    /// Task attempt (1-based).
    public var attempt: Int32?
    /// Workflow task completed: how many commands it carried.
    public var commands: Int?
    /// Who responded (worker identity).
    public var identity: String?

    enum CodingKeys: String, CodingKey {
        case kind, time, started, attempt, commands, identity
        case workflowID = "workflow_id", runID = "run_id", requestID = "request_id", signalName = "signal"
        case scheduledEventID = "scheduled_event_id", startedEventID = "started_event_id", activityID = "activity_id"
    }

    /// A record of `kind` for the run, stamped now; fill in the kind's fields.
    public init(kind: Kind, workflowID: String, runID: String, time: Date = Date()) {
        self.kind = kind
        self.time = time.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        self.workflowID = workflowID
        self.runID = runID
    }

    /// The record of a worker's acknowledged response.
    public init(_ acknowledgement: WorkerAcknowledgement, time: Date = Date()) {
        let kind: Kind = switch acknowledgement.kind {
        case .activityCompleted: .activityCompleted
        case .activityFailed: .activityFailed
        case .activityCanceled: .activityCanceled
        case .workflowTaskCompleted: .workflowTaskCompleted
        case .workflowTaskFailed: .workflowTaskFailed
        }
        self.init(kind: kind, workflowID: acknowledgement.workflowID, runID: acknowledgement.runID, time: time)
        scheduledEventID = acknowledgement.scheduledEventID
        startedEventID = acknowledgement.startedEventID
        activityID = acknowledgement.activityID
        attempt = acknowledgement.attempt
        commands = acknowledgement.commandCount
        identity = acknowledgement.identity
    }
}

/// Appends `AckRecord`s to a JSONL file, one `write(2)` per line and no buffering in the
/// process, so a SIGKILLed writer loses at most the line it was writing (a torn last line,
/// which `AckLogReader` skips). Opening a file whose last line is torn first ends that line,
/// so the next record starts on a line of its own. Several processes may append to the same
/// file (O_APPEND), though each normally has its own.
///
/// Nothing is queued: `append` writes before it returns. A failed write (disk full) drops
/// that line, counts it in `failedWrites` and is reported by the caller's logger; the
/// checker then has less to check, never a false violation.
public final class AckLogWriter: Sendable {
    /// The file.
    public let path: String
    private let descriptor: Int32
    private let failures = Atomic<Int>(0)
    private let closed = Atomic<Bool>(false)

    /// Why the log cannot be opened.
    public struct OpenError: Error, CustomStringConvertible {
        /// The file.
        public let path: String
        /// The errno text.
        public let reason: String
        /// What happened.
        public var description: String { "cannot open the ack log \(path): \(reason)" }
    }

    /// Opens (creating if needed) `path` for appending.
    public init(path: String) throws(OpenError) {
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw OpenError(path: path, reason: String(cString: strerror(errno))) }
        self.path = path
        self.descriptor = descriptor
        if Self.endsTorn(path) { _ = Self.writeAll(descriptor, Array("\n".utf8)) }
    }

    deinit { close() }

    /// Lines that could not be written.
    public var failedWrites: Int { failures.load(ordering: .relaxed) }

    /// Writes `record` as one line; false when the write failed.
    @discardableResult
    public func append(_ record: AckRecord) -> Bool {
        guard !closed.load(ordering: .acquiring) else { return false }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(record) else {
            failures.add(1, ordering: .relaxed)
            return false
        }
        let written = Self.writeAll(descriptor, Array(data) + [0x0A])
        if !written { failures.add(1, ordering: .relaxed) }
        return written
    }

    /// Closes the file; later appends are dropped.
    public func close() {
        guard closed.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        closeDescriptor(descriptor)
    }

    /// Whether the file is non-empty and does not end with a newline (a writer died mid-line).
    static func endsTorn(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        guard let size = try? handle.seekToEnd(), size > 0 else { return false }
        guard (try? handle.seek(toOffset: size - 1)) != nil, let last = try? handle.read(upToCount: 1) else { return false }
        return last.first != 0x0A
    }

    /// One write of the whole line (O_APPEND makes it one atomic append for lines this short);
    /// loops only on a short write or EINTR.
    static func writeAll(_ descriptor: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let count = bytes[offset...].withUnsafeBytes { buffer in write(descriptor, buffer.baseAddress, buffer.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += count
        }
        return true
    }
}

/// `close(2)`, out of reach of `AckLogWriter.close()`'s name.
private func closeDescriptor(_ descriptor: Int32) {
    _ = close(descriptor)
}

/// Reads ack logs back, tolerating what a crashed writer leaves behind.
public enum AckLogReader {
    /// The records of one or more files, and the lines that did not parse.
    public struct Contents: Sendable, Equatable {
        /// Every record, in file order (files in the order given).
        public var records: [AckRecord] = []
        /// Lines that are not a record (a torn line of a killed writer), as `file:line`.
        public var unreadableLines: [String] = []
        /// Files that do not exist (a writer killed before it opened its log).
        public var missingFiles: [String] = []
    }

    /// Why an ack log cannot be read at all.
    public struct ReadError: Error, CustomStringConvertible {
        /// The file.
        public let path: String
        /// What went wrong.
        public let reason: String
        /// What happened.
        public var description: String { "cannot read the ack log \(path): \(reason)" }
    }

    /// The largest ack log read (a 30-minute soak writes a few hundred MB at most).
    public static let maximumFileBytes = 4 << 30

    /// Reads every file in `paths`; a file that does not exist is listed in `missingFiles`
    /// (a writer killed before it opened its log wrote nothing), any other failure throws.
    public static func read(_ paths: [String]) throws(ReadError) -> Contents {
        var contents = Contents()
        for path in paths {
            guard FileManager.default.fileExists(atPath: path) else {
                contents.missingFiles.append(path)
                continue
            }
            let data: Data
            do {
                let attributes = try FileManager.default.attributesOfItem(atPath: path)
                if let size = attributes[.size] as? Int, size > maximumFileBytes {
                    throw ReadError(path: path, reason: "larger than \(maximumFileBytes) bytes")
                }
                data = try Data(contentsOf: URL(fileURLWithPath: path))
            } catch let error as ReadError {
                throw error
            } catch {
                throw ReadError(path: path, reason: "\(error)")
            }
            parse(data, file: path, into: &contents)
        }
        return contents
    }

    /// Parses JSONL `data`; empty lines are skipped, unparsable ones listed.
    public static func parse(_ data: Data, file: String, into contents: inout Contents) {
        let decoder = JSONDecoder()
        var number = 0
        for line in data.split(separator: 0x0A, omittingEmptySubsequences: false) {
            number += 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) { continue }
            if let record = try? decoder.decode(AckRecord.self, from: Data(line)) {
                contents.records.append(record)
            } else {
                contents.unreadableLines.append("\(file):\(number)")
            }
        }
    }
}
