#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOSSL

/// How a verified certificate names its holder, and how TLS failures are described to people.
///
/// The rule for `PeerIdentity.name` (docs/security.md, "Certificates"): the first URI subject
/// alternative name of the form `ballast://<identity>` gives `<identity>`; else the first DNS
/// name; else the subject common name; else the certificate has no usable name and the
/// connection is refused. Nodes are `ballast://node/<id>`, so their identity is `node/<id>`.
public enum TLSNames {
    /// The URI scheme prefix that carries a Ballast identity.
    public static let uriPrefix = "ballast://"

    /// The identity of a node with id `id` (what its certificate must say for the Raft port).
    public static func nodeIdentity(_ id: UInt64) -> String { "node/\(id)" }

    /// The node id an identity names (`node/<id>`), if any.
    public static func nodeID(of identity: String) -> UInt64? {
        guard identity.hasPrefix("node/") else { return nil }
        guard let id = UInt64(identity.dropFirst(5)), id != 0 else { return nil }
        return id
    }

    /// The identity of `certificate` by the rule above; nil when it names nobody.
    public static func identity(of certificate: NIOSSLCertificate) -> PeerIdentity? {
        var uris: [String] = []
        var dnsNames: [String] = []
        var alternatives: [String] = []
        for name in certificate._subjectAlternativeNames() {
            switch name.nameType {
            case .uri:
                let text = String(decoding: name.contents, as: UTF8.self)
                uris.append(text)
                alternatives.append("URI:\(text)")
            case .dnsName:
                let text = String(decoding: name.contents, as: UTF8.self)
                dnsNames.append(text)
                alternatives.append("DNS:\(text)")
            case .email:
                alternatives.append("email:\(String(decoding: name.contents, as: UTF8.self))")
            case .ipAddress:
                let bytes = Array(name.contents)
                if bytes.count == 4 {
                    alternatives.append("IP:" + bytes.map(String.init).joined(separator: "."))
                } else if bytes.count == 16 {
                    let groups = stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
                    alternatives.append("IP:" + groups.joined(separator: ":"))
                }
            default:
                continue
            }
        }
        let subjectParts = certificate.subjectName
        let subject = subjectParts.map { "\(label($0.type))=\($0.value)" }.joined(separator: ",")
        let commonName = subjectParts.first { $0.type == .commonName }?.value
        let fromURI = uris.first { $0.hasPrefix(uriPrefix) && $0.count > uriPrefix.count }.map { String($0.dropFirst(uriPrefix.count)) }
        guard let name = fromURI ?? dnsNames.first ?? commonName, !name.isEmpty,
              name.utf8.count <= 255, !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else {
            return nil
        }
        return PeerIdentity(name: name, subject: subject, alternativeNames: alternatives)
    }

    private static func label(_ type: SSLCertificateNameType) -> String {
        switch type {
        case .commonName: "CN"
        case .organization: "O"
        case .organizationalUnit: "OU"
        case .country: "C"
        case .state: "ST"
        case .city: "L"
        case .emailAddress: "emailAddress"
        case .userId: "UID"
        default: "?"
        }
    }

    /// Whether `text` is an IPv4 or IPv6 address literal.
    public static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return text.withCString { inet_pton(AF_INET, $0, &v4) == 1 || inet_pton(AF_INET6, $0, &v6) == 1 }
    }

    /// A one-line description of a TLS failure for logs and client errors: the BoringSSL reason
    /// codes (e.g. `CERTIFICATE_VERIFY_FAILED`, `SSLV3_ALERT_CERTIFICATE_EXPIRED`) with a plain
    /// explanation of the common ones.
    public static func describe(_ error: any Error) -> String {
        let raw: String
        switch error {
        case NIOSSLError.handshakeFailed(let inner): raw = "\(inner)"
        case let extra as NIOSSLExtraError where extra == .failedToValidateHostname:
            return "the server certificate does not name the host dialled (\(extra))"
        default: raw = "\(error)"
        }
        let hints: [(String, String)] = [
            ("CERTIFICATE_EXPIRED", "the peer refused our certificate: it has expired or is not valid yet (check its dates and the clocks)"),
            ("UNKNOWN_CA", "the peer refused our certificate: it is not issued by a CA the peer trusts"),
            ("CERTIFICATE_REQUIRED", "the peer requires a client certificate and none was presented"),
            ("PEER_DID_NOT_RETURN_A_CERTIFICATE", "the client presented no certificate (mutual TLS is required)"),
            ("BAD_CERTIFICATE", "the peer refused our certificate (not yet valid, or malformed)"),
            ("CERTIFICATE_VERIFY_FAILED", "the peer's certificate failed verification (expired, not yet valid, or not issued by a trusted CA)"),
            ("WRONG_VERSION_NUMBER", "the peer does not speak TLS, or not a version we accept"),
            ("UNSUPPORTED_PROTOCOL", "no TLS version in common (see --tls-min-version)"),
            ("PROTOCOL_VERSION", "no TLS version in common (see --tls-min-version)"),
            ("HTTP_REQUEST", "the peer sent cleartext HTTP to a TLS port"),
        ]
        for (code, hint) in hints where raw.contains(code) { return "\(hint) [\(condense(raw))]" }
        return condense(raw)
    }

    /// Keeps the reason codes of a BoringSSL error list and drops the rest of each entry.
    private static func condense(_ raw: String) -> String {
        raw.count > 300 ? String(raw.prefix(300)) + "…" : raw
    }
}
