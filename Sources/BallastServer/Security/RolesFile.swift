import BallastEngine
import BallastProto
import Foundation

/// Security settings of a node (docs/security.md, "Identity and roles").
public struct SecuritySettings: Sendable {
    /// Refuse calls without a verified client certificate and check every call's role. Set when
    /// the API port verifies client certificates; off on a cleartext node (development).
    public var enforceAuthorization = false
    /// The bindings of `--roles FILE`, proposed once by the first leader of a new cluster.
    public var bootstrapRoles: [RoleGrant] = []
    /// Where `bootstrapRoles` came from (for the audit record).
    public var rolesSource = ""

    /// Settings with authorization off and nothing to bootstrap.
    public init() {}
}

/// Why a roles file was refused: the file and line, and what is wrong.
public struct RolesFileError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file's path (or a name given by the caller).
    public let path: String
    /// The 1-based line number (0: the file as a whole).
    public let line: Int
    /// What is wrong and what to write instead.
    public let reason: String

    public var description: String { line > 0 ? "\(path):\(line): \(reason)" : "\(path): \(reason)" }
}

/// The `--roles FILE` format: one binding per line, `IDENTITY ROLE NAMESPACE [TASK_QUEUE]`,
/// separated by spaces or tabs; `#` starts a comment; blank lines are ignored. ROLE is reader,
/// writer, worker or admin; NAMESPACE is a name or `*` (every namespace); TASK_QUEUE (worker
/// only) limits the grant to one queue. Example:
///
///     # identity        role    namespace  queue
///     ops@example.com   admin   *
///     payments-api      writer  payments
///     transfer-worker   worker  payments   transfers
///     auditor           reader  *
public enum RolesFile {
    /// Most lines a roles file may have.
    public static let maxLines = 10_000

    /// Reads and validates a roles file.
    public static func load(path: String) throws -> [RoleGrant] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RolesFileError(path: path, line: 0, reason: "cannot read the file")
        }
        guard data.count <= 4 * 1024 * 1024 else { throw RolesFileError(path: path, line: 0, reason: "the file is over 4 MiB") }
        guard let text = String(data: data, encoding: .utf8) else {
            throw RolesFileError(path: path, line: 0, reason: "the file is not UTF-8 text")
        }
        return try parse(text, path: path)
    }

    /// Parses roles-file text; errors name the line.
    public static func parse(_ text: String, path: String) throws(RolesFileError) -> [RoleGrant] {
        var grants: [RoleGrant] = []
        var seen: Set<RoleGrant> = []
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count <= maxLines else { throw RolesFileError(path: path, line: 0, reason: "more than \(maxLines) lines") }
        for (offset, rawLine) in lines.enumerated() {
            let number = offset + 1
            let content = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = content.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
            if fields.isEmpty { continue }
            guard (3 ... 4).contains(fields.count) else {
                throw RolesFileError(path: path, line: number,
                                     reason: "expected `IDENTITY ROLE NAMESPACE [TASK_QUEUE]`, found \(fields.count) fields")
            }
            guard let role = AccessRole(rawValue: fields[1].lowercased()) else {
                throw RolesFileError(path: path, line: number,
                                     reason: "unknown role '\(fields[1])' (reader, writer, worker or admin)")
            }
            var binding = RoleGrant(identity: fields[0], role: role, namespace: fields[2], taskQueue: fields.count == 4 ? fields[3] : "").proto
            binding.role = role.proto
            let grant: RoleGrant
            do { grant = try RoleGrant.validated(binding) } catch {
                throw RolesFileError(path: path, line: number, reason: error.description)
            }
            guard seen.insert(grant).inserted else {
                throw RolesFileError(path: path, line: number, reason: "duplicate binding (\(grant))")
            }
            grants.append(grant)
        }
        return grants
    }
}
