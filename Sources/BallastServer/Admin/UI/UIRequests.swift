import BallastEngine
import BallastProto
import BallastWire
import Foundation
import NIOHTTP1

/// A UI request that cannot be served as asked: the status and a message for the operator.
struct UIRequestError: Error, Sendable, Equatable {
    var status: HTTPResponseStatus
    var message: String

    static func bad(_ message: String) -> UIRequestError { UIRequestError(status: .badRequest, message: message) }
}

/// An operator action from the detail page, validated.
struct UIAction: Sendable, Equatable {
    enum Kind: Sendable, Equatable {
        case signal(name: String, input: String?)
        case cancel
        case terminate
    }

    var kind: Kind
    var reason: String
    /// The optional name the operator typed (unverified; recorded next to the address).
    var operatorName: String

    /// `signal`, `cancel` or `terminate`.
    var name: String {
        switch kind {
        case .signal: "signal"
        case .cancel: "cancel"
        case .terminate: "terminate"
        }
    }
}

/// Parsing and validation of what browsers send to the UI: paths, forms, the CSRF token.
enum UIRequests {
    static let maxQueryBytes = 4_096
    static let maxReasonBytes = 1_000
    static let maxOperatorBytes = 100
    static let maxNameBytes = 200
    static let maxIDBytes = 1_000
    static let maxSignalInputBytes = 256 << 10
    /// Larger form bodies are refused before parsing (the admin server caps any body at 1 MiB).
    static let maxFormBytes = 300 << 10

    /// The per-process secret every action form carries; a page from another origin cannot read it.
    static let csrfToken: String = {
        var generator = SystemRandomNumberGenerator()
        return (0 ..< 4).map { _ in String(generator.next() as UInt64, radix: 16) }.joined(separator: "-")
    }()

    /// The path's segments, each percent-decoded (`/workflows/a%2Fb/r` → `["workflows", "a/b", "r"]`).
    static func segments(_ path: String) throws(UIRequestError) -> [String] {
        let raw = path.split(separator: "/", omittingEmptySubsequences: true)
        guard raw.count <= 6 else { throw .bad("the path has too many segments") }
        return raw.map { AdminQuery.percentDecoded(Substring($0.replacingOccurrences(of: "+", with: "%2B"))) }
    }

    /// Checks a workflow or run id taken from a path.
    static func validateID(_ id: String, _ what: String) throws(UIRequestError) {
        guard !id.isEmpty, id.utf8.count <= maxIDBytes else { throw .bad("the \(what) must be 1-\(maxIDBytes) bytes") }
        guard !id.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw .bad("the \(what) contains control characters")
        }
    }

    /// Decodes an `application/x-www-form-urlencoded` body; a repeated field is an error.
    static func form(_ body: [UInt8], contentType: String?) throws(UIRequestError) -> [String: String] {
        let type = (contentType ?? "").split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        guard type == "application/x-www-form-urlencoded" else {
            throw UIRequestError(status: .unsupportedMediaType, message: "actions take application/x-www-form-urlencoded forms")
        }
        guard body.count <= maxFormBytes else { throw UIRequestError(status: .payloadTooLarge, message: "the form is over \(maxFormBytes) bytes") }
        var fields: [String: String] = [:]
        for pair in body.split(separator: UInt8(ascii: "&")) {
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            let key = AdminQuery.percentDecoded(Substring(decoding: parts[0], as: UTF8.self))
            let value = parts.count == 2 ? AdminQuery.percentDecoded(Substring(decoding: parts[1], as: UTF8.self)) : ""
            guard fields[key] == nil else { throw .bad("the form repeats the field '\(key.prefix(40))'") }
            fields[key] = value
        }
        return fields
    }

    /// The action a form asks for, validated: a confirmation, a reason, bounded fields, JSON input.
    static func action(_ name: String, form: [String: String]) throws(UIRequestError) -> UIAction {
        guard form["confirm"] == "yes" else { throw .bad("tick the confirmation box to \(name)") }
        let reason = (form["reason"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        guard !reason.isEmpty else { throw .bad("a reason is required; it is recorded in the workflow's history") }
        try checkText(reason, "the reason", max: maxReasonBytes)
        let operatorName = (form["operator"] ?? "").trimmingCharacters(in: .whitespaces)
        try checkText(operatorName, "your name", max: maxOperatorBytes)
        switch name {
        case "cancel": return UIAction(kind: .cancel, reason: reason, operatorName: operatorName)
        case "terminate": return UIAction(kind: .terminate, reason: reason, operatorName: operatorName)
        case "signal":
            let signal = (form["name"] ?? "").trimmingCharacters(in: .whitespaces)
            guard !signal.isEmpty else { throw .bad("a signal name is required") }
            try checkText(signal, "the signal name", max: maxNameBytes)
            let input = (form["input"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            guard input.utf8.count <= maxSignalInputBytes else { throw .bad("the signal input is over \(maxSignalInputBytes) bytes") }
            if !input.isEmpty {
                guard (try? JSONSerialization.jsonObject(with: Data(input.utf8), options: [.fragmentsAllowed])) != nil else {
                    throw .bad("the signal input is not valid JSON")
                }
            }
            return UIAction(kind: .signal(name: signal, input: input.isEmpty ? nil : input), reason: reason, operatorName: operatorName)
        default:
            throw UIRequestError(status: .notFound, message: "unknown action '\(name.prefix(40))'")
        }
    }

    private static func checkText(_ text: String, _ what: String, max: Int) throws(UIRequestError) {
        guard text.utf8.count <= max else { throw .bad("\(what) is over \(max) bytes") }
        guard !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw .bad("\(what) contains control characters")
        }
    }

    /// Cross-site request forgery check for a form POST: the form's token must be this process's,
    /// and a browser's `Origin` (or, lacking it, `Referer`) must name the host the request was sent to.
    static func checkSameOrigin(headers: HTTPHeaders, form: [String: String]) throws(UIRequestError) {
        guard let token = form["csrf"], AdminAuthorization.constantTimeEquals(Array(token.utf8), Array(csrfToken.utf8)) else {
            throw UIRequestError(status: .forbidden, message: "the form's CSRF token is missing or stale; reload the page and try again")
        }
        guard let host = headers.first(name: "host"), !host.isEmpty else {
            throw UIRequestError(status: .forbidden, message: "the request names no Host")
        }
        let origin = headers.first(name: "origin") ?? headers.first(name: "referer")
        guard let origin, origin != "null" else { return }
        guard origin == "http://\(host)" || origin == "https://\(host)" || origin.hasPrefix("http://\(host)/")
                || origin.hasPrefix("https://\(host)/") else {
            throw UIRequestError(status: .forbidden, message: "cross-origin form post refused (origin \(origin.prefix(100)))")
        }
    }

    /// The identity an operator action is recorded with: `web-ui[:name]@address (unverified)` —
    /// the name is what the operator typed, so it is marked like any claimed identity
    /// (docs/security.md) until admin tokens are bound to identities.
    static func operatorIdentity(name: String, remoteAddress: String?) -> String {
        CallerIdentity.unverified("web-ui" + (name.isEmpty ? "" : ":" + name) + "@" + (remoteAddress ?? "unknown"))
    }

    /// A JSON text as one payload with `json/plain` encoding (what the SDK's converter writes).
    static func jsonPayloads(_ text: String?) -> Ballast_V1_Payloads? {
        guard let text else { return nil }
        var payload = Ballast_V1_Payload()
        payload.metadata["encoding"] = Data("json/plain".utf8)
        payload.data = Data(text.utf8)
        var payloads = Ballast_V1_Payloads()
        payloads.payloads = [payload]
        return payloads
    }
}

/// The admin token check for mutating UI actions, in one place (the security work binds tokens
/// to identities here later). Without a configured token every caller is allowed.
public enum AdminAuthorization {
    /// Whether the request carries the configured token, as `Authorization: Bearer TOKEN` or the
    /// form field `admin_token`; compared in constant time.
    public static func isAuthorized(headers: HTTPHeaders, form: [String: String], token configured: String?) -> Bool {
        guard let configured, !configured.isEmpty else { return true }
        var presented: String?
        if let header = headers.first(name: "authorization"), header.lowercased().hasPrefix("bearer ") {
            presented = String(header.dropFirst("bearer ".count)).trimmingCharacters(in: .whitespaces)
        } else {
            presented = form["admin_token"]
        }
        guard let presented else { return false }
        return constantTimeEquals(Array(presented.utf8), Array(configured.utf8))
    }

    /// Compares without an early exit, so the time taken does not reveal how much of a guess is right.
    public static func constantTimeEquals(_ left: [UInt8], _ right: [UInt8]) -> Bool {
        var difference = UInt64(left.count ^ right.count)
        for index in 0 ..< max(left.count, right.count) {
            let a = index < left.count ? left[index] : 0, b = index < right.count ? right[index] : 0
            difference |= UInt64(a ^ b)
        }
        return difference == 0
    }

    /// Why the UI refuses every action, if it does: a node that enforces authorization on its API
    /// (verified certificates and roles) must not let the admin port act without a token, since
    /// UI actions are proposed by the node itself and bypass the API's role check.
    public static func actionsRefusal(enforcingAuthorization: Bool, token configured: String?) -> String? {
        guard enforcingAuthorization, (configured ?? "").isEmpty else { return nil }
        return "this node enforces authorization on its API; actions from the web UI need --admin-token"
    }

    /// Whether the request presents a valid bearer token (such callers are scripts, not browsers: no CSRF token needed).
    static func hasValidBearer(headers: HTTPHeaders, token configured: String?) -> Bool {
        guard let configured, !configured.isEmpty, let header = headers.first(name: "authorization"),
              header.lowercased().hasPrefix("bearer ") else { return false }
        return isAuthorized(headers: headers, form: [:], token: configured)
    }
}
