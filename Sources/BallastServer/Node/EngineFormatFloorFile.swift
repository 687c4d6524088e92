import BallastEngine
import Foundation

/// The newest engine entry format this node has seen every member agree on, in
/// `DATA_DIR/engine-format` (one decimal number and a newline). A node that starts — after a
/// restart of the whole cluster, say — has heard no member's report yet; without the file it
/// would write format 1 until every member answered (about a second in a chaos run), applying
/// the entries of that second by the oldest rules and without the limits added since. With it,
/// the node writes at least this format from the start (never above its own
/// `--max-engine-format`). Formats agreed once stay safe to write: a build that does not know
/// one cannot replay the log that holds it (docs/operations.md, "Upgrades").
struct EngineFormatFloorFile: Sendable {
    /// The file's path.
    let path: String

    /// The file of the data directory `dataDirectory`.
    init(dataDirectory: String) { path = dataDirectory + "/engine-format" }

    /// The stored format; nil when there is no file. Content that is not one format this build
    /// knows is an error (the caller logs it and goes on without a floor).
    func load() throws(DurableFileError) -> UInt32? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path), data.count <= 16 else {
            throw DurableFileError(description: "\(path) cannot be read or is over 16 bytes")
        }
        let text = String(decoding: data, as: UTF8.self)
        guard text.hasSuffix("\n"), let format = UInt32(text.dropLast()),
              (engineFormatVersion ... newestEngineFormatVersion).contains(format) else {
            throw DurableFileError(description: "\(path) does not hold an engine format from \(engineFormatVersion) to \(newestEngineFormatVersion)")
        }
        return format
    }

    /// Stores `format` atomically and durably.
    func save(_ format: UInt32) throws(DurableFileError) {
        try DurableFile.replace(path, with: Array("\(format)\n".utf8))
    }
}
