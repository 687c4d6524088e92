#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import NIOConcurrencyHelpers
import NIOSSL

/// The server TLS context of one port, replaceable while the port serves: every new connection
/// takes the context current at its accept, and established connections keep theirs, so a
/// rotation never drops a connection. A reload that fails (a missing, unreadable or mismatched
/// file) changes nothing: the old certificates stay in use and the failure is logged.
public final class TLSContextStore: Sendable {
    /// How a reload ended.
    public enum ReloadResult: Sendable, Equatable {
        /// New certificates are in use.
        case reloaded
        /// The files are unchanged since the last load (only `reloadIfChanged`).
        case unchanged
        /// The new files were refused; the old certificates stay in use.
        case refused(String)
    }

    /// The settings this store was created with (paths, version, whether cleartext is refused).
    public let options: TLSServerOptions
    let applicationProtocols: [String]
    let logger: Logger
    /// What the port is called in log lines (`api`, `raft`, `admin`).
    let portName: String
    private struct State {
        var context: NIOSSLContext
        var stamps: [FileStamp]
        var generation: Int
    }
    private let state: NIOLockedValueBox<State>
    private let observer = NIOLockedValueBox<(@Sendable (ReloadResult, String) -> Void)?>(nil)

    /// Tells `observe` every reload's result and reason (e.g. for the audit log).
    public func observeReloads(_ observe: @escaping @Sendable (ReloadResult, String) -> Void) {
        observer.withLockedValue { $0 = observe }
    }

    /// Loads the files; throws when they cannot be used (nothing is served with bad files).
    public init(options: TLSServerOptions, applicationProtocols: [String], portName: String, logger: Logger) throws {
        self.options = options
        self.applicationProtocols = applicationProtocols
        self.portName = portName
        self.logger = logger
        let stamps = FileStamp.of(options.files.paths)
        let context = try NIOSSLContext(configuration: try options.makeConfiguration(applicationProtocols: applicationProtocols))
        state = NIOLockedValueBox(State(context: context, stamps: stamps, generation: 1))
    }

    /// The context for a new connection.
    public var context: NIOSSLContext { state.withLockedValue { $0.context } }

    /// How many times certificates were loaded (1 after start).
    public var generation: Int { state.withLockedValue { $0.generation } }

    /// Reads the files again and, if they make a working context, uses it for new connections.
    @discardableResult
    public func reload(reason: String) -> ReloadResult {
        let stamps = FileStamp.of(options.files.paths)
        do {
            let context = try NIOSSLContext(configuration: try options.makeConfiguration(applicationProtocols: applicationProtocols))
            let generation = state.withLockedValue { state in
                state.context = context
                state.stamps = stamps
                state.generation += 1
                return state.generation
            }
            logger.notice("TLS certificates reloaded; new connections use them",
                          metadata: ["port": "\(portName)", "reason": "\(reason)", "generation": "\(generation)",
                                     "certificate": "\(options.files.certificate)"])
            observer.withLockedValue { $0 }?(.reloaded, reason)
            return .reloaded
        } catch {
            // Remember the stamps so a bad file is reported once, not on every poll.
            state.withLockedValue { $0.stamps = stamps }
            let why = "\(error)"
            logger.error("TLS certificate reload refused; the previous certificates stay in use",
                         metadata: ["port": "\(portName)", "reason": "\(reason)", "error": "\(why)"])
            observer.withLockedValue { $0 }?(.refused(why), reason)
            return .refused(why)
        }
    }

    /// Reloads when a file's modification time, size or inode changed since the last load.
    @discardableResult
    public func reloadIfChanged() -> ReloadResult {
        let now = FileStamp.of(options.files.paths)
        guard now != state.withLockedValue({ $0.stamps }) else { return .unchanged }
        return reload(reason: "file changed")
    }
}

/// What identifies a version of a file cheaply: modification time, size and inode (an atomic
/// rename changes the inode even within the same clock tick).
struct FileStamp: Equatable, Sendable {
    var seconds: Int
    var nanoseconds: Int
    var size: Int64
    var inode: UInt64

    static func of(_ paths: [String]) -> [FileStamp] {
        paths.map { path in
            var info = stat()
            guard stat(path, &info) == 0 else { return FileStamp(seconds: -1, nanoseconds: -1, size: -1, inode: 0) }
            return FileStamp(seconds: Int(info.st_mtim.tv_sec), nanoseconds: Int(info.st_mtim.tv_nsec),
                             size: Int64(info.st_size), inode: UInt64(info.st_ino))
        }
    }
}

/// Reloads a set of stores on a timer (file change) and on request (SIGHUP), from one task.
public final class TLSReloader: Sendable {
    private let stores: [TLSContextStore]
    private let task: NIOLockedValueBox<Task<Void, Never>?> = NIOLockedValueBox(nil)

    /// Creates a reloader for `stores` (one per TLS port).
    public init(stores: [TLSContextStore]) {
        self.stores = stores
    }

    /// Polls the files every `interval` and reloads the stores whose files changed.
    public func startPolling(every interval: Duration) {
        let stores = self.stores
        let polling = Task.detached {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                if Task.isCancelled { return }
                for store in stores { store.reloadIfChanged() }
            }
        }
        task.withLockedValue { $0?.cancel(); $0 = polling }
    }

    /// Reloads every store now (SIGHUP); returns each store's result.
    @discardableResult
    public func reloadAll(reason: String) -> [TLSContextStore.ReloadResult] {
        stores.map { $0.reload(reason: reason) }
    }

    /// Stops polling.
    public func stop() {
        task.withLockedValue { $0?.cancel(); $0 = nil }
    }
}
