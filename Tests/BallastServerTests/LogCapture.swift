import Logging
import Synchronization

/// Keeps the lines a logger writes (at `.warning` and above unless told otherwise): message and
/// metadata, the logger's own merged with the line's.
final class CapturedLogLines: Sendable {
    private let lines = Mutex<[(message: String, metadata: Logger.Metadata)]>([])
    func append(_ message: String, _ metadata: Logger.Metadata) { lines.withLock { $0.append((message, metadata)) } }
    var all: [(message: String, metadata: Logger.Metadata)] { lines.withLock { $0 } }
    /// The metadata of the lines whose message starts with `prefix`.
    func metadata(ofLinesStartingWith prefix: String) -> [Logger.Metadata] {
        all.filter { $0.message.hasPrefix(prefix) }.map(\.metadata)
    }
    /// A logger that writes here.
    func logger(label: String, level: Logger.Level = .warning) -> Logger {
        Logger(label: label) { _ in CapturingLogHandler(lines: self, logLevel: level) }
    }
}

private struct CapturingLogHandler: LogHandler {
    let lines: CapturedLogLines
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        lines.append(event.message.description, metadata.merging(event.metadata ?? [:]) { $1 })
    }
}
