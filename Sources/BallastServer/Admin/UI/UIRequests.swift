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

    /// The identity an action is recorded with when nothing authenticates the caller (no
    /// certificate, no token configured): `web-ui[:name]@address (unverified)` — the name is
    /// what the operator typed, so it is marked like any claimed identity (docs/security.md).
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

/// Who performs a web UI action, and how the node knows it (docs/security.md, "Admin UI tokens").
struct UIActor: Sendable, Equatable {
    enum Source: String, Sendable, Equatable {
        /// The admin connection's verified TLS client certificate.
        case certificate = "client certificate"
        /// A token of `--admin-tokens`, bound to the identity.
        case token = "admin token"
        /// The single shared `--admin-token` (identity `admin-token`).
        case sharedToken = "shared admin token"
        /// Nothing authenticates the caller: a name typed in the form, marked unverified.
        case claim = "unverified"
    }

    /// The identity recorded in history and in the audit log.
    var identity: String
    var source: Source
}

/// How the detail page's action forms authenticate, decided per request.
enum UIActionMode: Sendable, Equatable {
    /// Acting as the verified client certificate's identity: no token, no name field.
    case certificate(String)
    /// A token is required; the identity is the one it is bound to.
    case token
    /// Anyone may act; an optional typed name is recorded, marked unverified (development).
    case open
    /// Actions are refused on this node, for this reason.
    case refused(String)
}

/// What authenticates UI actions on a node: the shared token, the identity-bound tokens, and
/// whether the node enforces authorization.
public struct AdminCredentials: Sendable {
    /// `--admin-token`: one shared secret (identity `admin-token`).
    public var sharedToken: String?
    /// `--admin-tokens FILE`: tokens bound to identities.
    public var tokens: AdminTokens
    /// Whether the node refuses unauthenticated callers and checks roles on its API.
    public var enforceAuthorization: Bool

    /// Credentials as configured.
    public init(sharedToken: String? = nil, tokens: AdminTokens = AdminTokens(), enforceAuthorization: Bool = false) {
        self.sharedToken = sharedToken
        self.tokens = tokens
        self.enforceAuthorization = enforceAuthorization
    }

    /// Whether any token is configured (then a cleartext caller must present one).
    public var requiresToken: Bool { !(sharedToken ?? "").isEmpty || !tokens.isEmpty }
}

/// The authentication of mutating UI actions, in one place: certificate, bound token, shared
/// token or (development only) nothing.
public enum AdminAuthorization {
    /// The forms' mode for a request on a connection that verified `peer` (nil: no certificate).
    static func actionMode(peer: PeerIdentity?, credentials: AdminCredentials) -> UIActionMode {
        if let peer { return .certificate(peer.name) }
        if credentials.requiresToken { return .token }
        // A node that checks roles on its API must not let an anonymous admin caller act: UI
        // actions are proposed by the node itself.
        if credentials.enforceAuthorization {
            return .refused("this node enforces authorization on its API; actions from the web UI need a client certificate "
                + "or a token of --admin-tokens")
        }
        return .open
    }

    /// The token the request presents: `Authorization: Bearer TOKEN`, else the form field `admin_token`.
    static func presentedToken(headers: HTTPHeaders, form: [String: String]) -> String? {
        if let header = headers.first(name: "authorization"), header.lowercased().hasPrefix("bearer ") {
            return String(header.dropFirst("bearer ".count)).trimmingCharacters(in: .whitespaces)
        }
        return form["admin_token"]
    }

    /// Who acts: the certificate's identity, else the identity bound to the presented token, else
    /// (no token configured, authorization off) the typed name marked unverified. A name typed in
    /// the form never overrides a certificate or a token.
    static func actor(peer: PeerIdentity?, headers: HTTPHeaders, form: [String: String], credentials: AdminCredentials,
                      typedName: String, remoteAddress: String?) throws(UIRequestError) -> UIActor {
        switch actionMode(peer: peer, credentials: credentials) {
        case .certificate(let identity):
            return UIActor(identity: identity, source: .certificate)
        case .refused(let why):
            throw UIRequestError(status: .forbidden, message: why)
        case .open:
            return UIActor(identity: UIRequests.operatorIdentity(name: typedName, remoteAddress: remoteAddress), source: .claim)
        case .token:
            guard let presented = presentedToken(headers: headers, form: form), !presented.isEmpty else {
                throw UIRequestError(status: .unauthorized, message: "this node requires an admin token for actions; none was given")
            }
            if let identity = credentials.tokens.identity(for: presented) { return UIActor(identity: identity, source: .token) }
            if let shared = credentials.sharedToken, !shared.isEmpty,
               constantTimeEquals(Array(presented.utf8), Array(shared.utf8)) {
                return UIActor(identity: AdminTokens.sharedTokenIdentity, source: .sharedToken)
            }
            throw UIRequestError(status: .unauthorized, message: "this node requires an admin token for actions; the token given is wrong")
        }
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

    /// Whether the request authenticates with an `Authorization: Bearer` header on a node that
    /// takes tokens. Such callers are scripts: a browser never sends that header with a form
    /// another site makes it post, so no CSRF token is needed; a wrong token is then refused as
    /// unauthorized (401), not as a missing CSRF token.
    static func usesBearer(headers: HTTPHeaders, credentials: AdminCredentials) -> Bool {
        guard credentials.requiresToken, let header = headers.first(name: "authorization") else { return false }
        return header.lowercased().hasPrefix("bearer ")
    }
}
