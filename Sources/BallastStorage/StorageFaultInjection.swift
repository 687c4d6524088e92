import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A test hook that makes the storage layer's system calls fail as a full or broken disk would.
///
/// Off in production: with no rule armed, each write, allocation or sync pays one relaxed
/// atomic load. Tests arm a rule (`failNext`), run the code under test and `clear()` it.
/// Rules are process-wide, so tests that arm them must not run in parallel with other storage
/// tests that could match the same path (use a unique directory in `pathContaining`).
public enum StorageFaultInjection {
    /// The system call a rule applies to.
    public enum Operation: Sendable, Equatable {
        /// `pwrite` of records, headers and snapshot files.
        case write
        /// `posix_fallocate` of a new segment.
        case allocate
        /// `fdatasync` / `fsync` of files (not directories).
        case sync
        /// `fsync` of a directory (making creations, renames and deletions durable).
        case syncDirectory
    }

    /// One armed failure.
    public struct Rule: Sendable {
        /// The call that fails.
        public var operation: Operation
        /// Only paths containing this string match.
        public var pathContaining: String
        /// The errno reported (`ENOSPC` for a full disk, `EIO` for a broken one).
        public var errno: Int32
        /// How many matching calls fail; `Int.max` for "until cleared".
        public var remaining: Int
        /// For `.write`: how many bytes reach the file before the call fails (a partial write).
        public var bytesWrittenFirst: Int
        /// How many calls this rule failed so far.
        public var hits = 0
    }

    private static let armed = Atomic<Bool>(false)
    private static let rules = Mutex<[Rule]>([])
    private static let hits = Atomic<Int>(0)

    /// Arms a failure of the next `count` matching calls (all of them until `clear()` by default).
    public static func failNext(_ operation: Operation, pathContaining: String, errno: Int32 = ENOSPC,
                                count: Int = .max, bytesWrittenFirst: Int = 0) {
        rules.withLock { rules in
            rules.append(Rule(operation: operation, pathContaining: pathContaining, errno: errno, remaining: count,
                              bytesWrittenFirst: bytesWrittenFirst))
        }
        armed.store(true, ordering: .releasing)
    }

    /// Removes every rule whose path pattern contains `pathContaining` (all rules if nil).
    public static func clear(pathContaining: String? = nil) {
        rules.withLock { rules in
            rules.removeAll { rule in pathContaining.map { rule.pathContaining.contains($0) } ?? true }
            armed.store(!rules.isEmpty, ordering: .releasing)
        }
    }

    /// How many calls failed by injection since the process started.
    public static var injectedFailures: Int { hits.load(ordering: .relaxed) }

    /// How many calls the rules armed with exactly this `pathContaining` failed since they were
    /// armed (0 once cleared): unlike `injectedFailures`, not disturbed by tests running beside.
    public static func injectedFailures(pathContaining: String) -> Int {
        rules.withLock { rules in rules.reduce(0) { $0 + ($1.pathContaining == pathContaining ? $1.hits : 0) } }
    }

    /// The rule that fails this call, if any (consuming one of its failures).
    static func check(_ operation: Operation, path: String) -> Rule? {
        guard armed.load(ordering: .acquiring) else { return nil }
        return rules.withLock { rules -> Rule? in
            guard let position = rules.firstIndex(where: {
                $0.operation == operation && $0.remaining > 0 && path.contains($0.pathContaining)
            }) else { return nil }
            rules[position].remaining -= rules[position].remaining == .max ? 0 : 1
            rules[position].hits += 1
            hits.add(1, ordering: .relaxed)
            return rules[position]
        }
    }
}
