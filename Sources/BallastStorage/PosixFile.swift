#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Thin wrappers over the POSIX calls the log needs; every failure becomes a `StorageError.io`.
enum Posix {
    /// Opens `path` with `flags`, retrying on EINTR.
    static func open(_ path: String, _ flags: Int32, mode: mode_t = 0o644) throws -> Int32 {
        while true {
            let fd = path.withCString { systemOpen($0, flags | O_CLOEXEC, mode) }
            if fd >= 0 { return fd }
            if errno != EINTR { throw StorageError.io(operation: "open", path: path, errno: errno) }
        }
    }

    /// Writes all of `bytes` at `offset`, retrying partial writes and EINTR.
    static func pwriteAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, offset: Int, path: String) throws {
        guard let base = bytes.baseAddress else { return }
        var done = 0
        if let rule = StorageFaultInjection.check(.write, path: path) {
            let partial = min(rule.bytesWrittenFirst, bytes.count)
            if partial > 0 { _ = pwrite(fd, base, partial, off_t(offset)) }
            throw StorageError.io(operation: "pwrite", path: path, errno: rule.errno)
        }
        while done < bytes.count {
            let written = pwrite(fd, base + done, bytes.count - done, off_t(offset + done))
            if written < 0 {
                if errno == EINTR { continue }
                throw StorageError.io(operation: "pwrite", path: path, errno: errno)
            }
            done += written
        }
    }

    /// Reads the whole file at `path`.
    static func readAll(_ path: String) throws -> [UInt8] {
        let fd = try open(path, O_RDONLY)
        defer { _ = close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw StorageError.io(operation: "fstat", path: path, errno: errno) }
        let size = Int(info.st_size)
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let got = bytes.withUnsafeMutableBytes { buffer in
                // The buffer is `size` bytes long, so the base address is non-nil here.
                pread(fd, buffer.baseAddress.map { $0 + done }, size - done, off_t(done))
            }
            if got < 0 {
                if errno == EINTR { continue }
                throw StorageError.io(operation: "pread", path: path, errno: errno)
            }
            if got == 0 { break }
            done += got
        }
        if done < size { bytes.removeSubrange(done...) }
        return bytes
    }

    /// Flushes file data (and the metadata needed to read it back) to stable storage.
    static func dataSync(_ fd: Int32, path: String) throws {
        if let rule = StorageFaultInjection.check(.sync, path: path) {
            throw StorageError.io(operation: "fdatasync", path: path, errno: rule.errno)
        }
        #if os(Linux)
        let result = fdatasync(fd)
        #else
        let result = fsync(fd)
        #endif
        if result != 0 { throw StorageError.io(operation: "fdatasync", path: path, errno: errno) }
    }

    /// Flushes file data and all metadata to stable storage.
    static func fullSync(_ fd: Int32, path: String) throws {
        if let rule = StorageFaultInjection.check(.sync, path: path) {
            throw StorageError.io(operation: "fsync", path: path, errno: rule.errno)
        }
        if fsync(fd) != 0 { throw StorageError.io(operation: "fsync", path: path, errno: errno) }
    }

    /// Makes a directory's entries (creations, renames, deletions) durable.
    static func syncDirectory(_ path: String) throws {
        if let rule = StorageFaultInjection.check(.syncDirectory, path: path) {
            throw StorageError.io(operation: "fsync", path: path, errno: rule.errno)
        }
        let fd = try open(path, O_RDONLY | O_DIRECTORY)
        defer { _ = close(fd) }
        if fsync(fd) != 0 { throw StorageError.io(operation: "fsync", path: path, errno: errno) }
    }

    /// Reserves `size` bytes for the file so later writes need no allocation.
    static func preallocate(_ fd: Int32, size: Int, path: String) throws {
        if let rule = StorageFaultInjection.check(.allocate, path: path) {
            throw StorageError.io(operation: "posix_fallocate", path: path, errno: rule.errno)
        }
        #if os(Linux)
        let result = posix_fallocate(fd, 0, off_t(size))
        if result != 0 { throw StorageError.io(operation: "posix_fallocate", path: path, errno: result) }
        #else
        if ftruncate(fd, off_t(size)) != 0 { throw StorageError.io(operation: "ftruncate", path: path, errno: errno) }
        #endif
    }

    /// Cuts the file to `size` bytes.
    static func truncate(_ fd: Int32, size: Int, path: String) throws {
        if ftruncate(fd, off_t(size)) != 0 { throw StorageError.io(operation: "ftruncate", path: path, errno: errno) }
    }

    /// Renames atomically within one file system.
    static func rename(_ from: String, _ to: String) throws {
        let result = from.withCString { source in to.withCString { systemRename(source, $0) } }
        if result != 0 { throw StorageError.io(operation: "rename", path: from, errno: errno) }
    }

    /// Removes a file; a missing file is not an error.
    static func unlink(_ path: String) throws {
        if systemUnlink(path) != 0 && errno != ENOENT { throw StorageError.io(operation: "unlink", path: path, errno: errno) }
    }

    /// Creates a directory unless it exists.
    static func makeDirectory(_ path: String) throws {
        if mkdir(path, 0o755) != 0 && errno != EEXIST { throw StorageError.io(operation: "mkdir", path: path, errno: errno) }
    }

    /// The names in a directory, without "." and "..".
    static func listDirectory(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw StorageError.io(operation: "opendir", path: path, errno: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Takes an exclusive advisory lock on `path` (created if needed); returns the descriptor holding it.
    static func lockFile(_ path: String) throws -> Int32 {
        let fd = try open(path, O_RDWR | O_CREAT)
        // A child process that this process is spawning shares the descriptor until it execs
        // (O_CLOEXEC closes it only then), so a lock just released can look held for a moment:
        // retry for up to a second before saying another store holds it.
        let deadline = ContinuousClock.now + .seconds(1)
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            if code == EINTR { continue }
            if code == EWOULDBLOCK, ContinuousClock.now < deadline {
                usleep(5_000)
                continue
            }
            _ = close(fd)
            if code == EWOULDBLOCK { throw StorageError.directoryLocked(path: path) }
            throw StorageError.io(operation: "flock", path: path, errno: code)
        }
        return fd
    }
}

private func systemOpen(_ path: UnsafePointer<CChar>, _ flags: Int32, _ mode: mode_t) -> Int32 {
    open(path, flags, mode)
}

private func systemRename(_ from: UnsafePointer<CChar>, _ to: UnsafePointer<CChar>) -> Int32 {
    rename(from, to)
}

private func systemUnlink(_ path: String) -> Int32 {
    unlink(path)
}
