import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A small file replaced atomically and durably: written to `PATH.tmp`, fsynced, renamed over
/// the old one and the directory fsynced, so a crash leaves either the old or the new content.
enum DurableFile {
    /// Replaces the file at `path` with `bytes`; the error names the operation, the path and errno.
    static func replace(_ path: String, with bytes: [UInt8]) throws(DurableFileError) {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure("open", temporary) }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == bytes.count, synced == 0 else { throw failure("write", temporary) }
        guard rename(temporary, path) == 0 else { throw failure("rename", temporary) }
        let directory = (path as NSString).deletingLastPathComponent
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directoryFD >= 0 else { throw failure("open", directory) }
        defer { close(directoryFD) }
        guard fsync(directoryFD) == 0 else { throw failure("fsync", directory) }
    }

    private static func failure(_ operation: String, _ target: String) -> DurableFileError {
        DurableFileError(description: "\(operation) \(target) failed: \(String(cString: strerror(errno)))")
    }
}

/// Why `DurableFile.replace` failed.
struct DurableFileError: Error, Sendable, CustomStringConvertible {
    let description: String
}
