import BallastEngine
import BallastProto
import Foundation
import Logging
import Synchronization

/// A security event a node reports to the audit log (`BallastNode.recordSecurityEvent`).
public enum SecurityEventKind: Sendable, Equatable {
    /// The node's TLS certificates were reloaded (SIGHUP or a file change).
    case certificateReloaded
    /// A member was added, promoted or removed.
    case membershipChanged
    /// An operator acted through the web UI (signal, cancel, terminate); recorded as `OTHER`.
    case operatorAction
    /// The admin UI's tokens file was reloaded (or a reload refused); recorded as `OTHER`.
    case adminTokensReloaded
    /// Anything else security-relevant.
    case other

    var auditKind: Ballast_V1_AuditKind {
        switch self {
        case .certificateReloaded: .certificateReloaded
        case .membershipChanged: .membershipChanged
        case .other, .operatorAction, .adminTokensReloaded: .other
        }
    }
}

/// The node's security shell: the authorizer in front of the API, the outbox of security events,
/// and the loop that proposes them (and the roles bootstrap) while this node leads.
final class NodeSecurity: Sendable {
    /// How often the loop looks for work; audit records are proposed at most once per `flushInterval`.
    static let loopInterval: Duration = .milliseconds(200)
    static let flushInterval: Duration = .seconds(1)
    /// Most records proposed in one entry.
    static let maxRecordsPerEntry = 256

    let settings: SecuritySettings
    let authorizer: Authorizer
    let publisher: RoleTablePublisher
    let nodeID: UInt64
    let logger: Logger
    private let outbox = Mutex(AuditOutbox())
    private let bootstrapDone = Atomic<Bool>(false)
    private let loop = Mutex<Task<Void, Never>?>(nil)

    init(settings: SecuritySettings, publisher: RoleTablePublisher, nodeID: UInt64, logger: Logger,
         isMemberNode: @escaping @Sendable (UInt64) -> Bool) {
        self.settings = settings
        self.publisher = publisher
        self.nodeID = nodeID
        self.logger = logger
        authorizer = Authorizer(enforce: settings.enforceAuthorization, publisher: publisher, nodeID: nodeID, logger: logger,
                                isMemberNode: isMemberNode)
        if settings.bootstrapRoles.isEmpty { bootstrapDone.store(true, ordering: .relaxed) }
    }

    /// Queues a security event for the audit log.
    func record(_ kind: SecurityEventKind, identity: String, detail: String) {
        var record = Ballast_V1_AuditRecord()
        record.kind = kind.auditKind
        record.identity = truncated(identity, maxBytes: 1_000)
        record.identityVerified = !identity.isEmpty && CallerIdentity.isVerified(identity)
        record.nodeID = nodeID
        record.detail = truncated(detail, maxBytes: 2_048)
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000_000)
        (record.firstSeenUnixNanos, record.lastSeenUnixNanos, record.count) = (now, now, 1)
        outbox.withLock { $0.add(record) }
        logger.notice("security event", metadata: ["kind": "\(kind)", "identity": "\(identity)", "detail": "\(detail)"])
    }

    /// Starts the loop; `step` runs every `loopInterval` until `stop()`.
    func start(_ step: @escaping @Sendable (_ flushAudit: Bool) async -> Void) {
        let task = Task {
            var lastFlush = ContinuousClock.now
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.loopInterval)
                let flush = ContinuousClock.now - lastFlush >= Self.flushInterval
                if flush { lastFlush = ContinuousClock.now }
                await step(flush)
            }
        }
        loop.withLock { $0 = task }
    }

    func stop() {
        loop.withLock { $0?.cancel() }
    }

    /// Whether the roles file still has to be proposed.
    var needsBootstrap: Bool {
        if bootstrapDone.load(ordering: .relaxed) { return false }
        if publisher.rolesInitialized {
            bootstrapDone.store(true, ordering: .relaxed)
            return false
        }
        return true
    }

    func bootstrapSucceeded() { bootstrapDone.store(true, ordering: .relaxed) }

    /// The records to propose now: queued events first, then the denied calls of the window.
    func takeRecords() -> [Ballast_V1_AuditRecord] {
        outbox.withLock { $0.take(max: Self.maxRecordsPerEntry, nodeID: nodeID) } + authorizer.drainDenials()
    }

    /// Puts back events whose proposal failed (denied-call counts are logged instead).
    func putBack(_ records: [Ballast_V1_AuditRecord]) {
        let events = records.filter { $0.kind != .accessDenied && $0.kind != .denialsSuppressed }
        outbox.withLock { $0.putBack(events) }
        let denied = records.count - events.count
        if denied > 0 {
            let calls = records.filter { $0.kind == .accessDenied || $0.kind == .denialsSuppressed }.reduce(0) { $0 + $1.count }
            logger.notice("denied calls not in the replicated audit log: this node could not propose them",
                          metadata: ["records": "\(denied)", "calls": "\(calls)"])
        }
    }
}

/// `text` cut to at most `maxBytes` of UTF-8, on a character boundary.
func truncated(_ text: String, maxBytes: Int) -> String {
    guard text.utf8.count > maxBytes else { return text }
    var result = ""
    var bytes = 0
    for character in text {
        let size = character.utf8.count
        guard bytes + size <= maxBytes else { break }
        result.append(character)
        bytes += size
    }
    return result
}
