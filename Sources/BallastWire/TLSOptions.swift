import NIOSSL

/// The lowest TLS version a side accepts (`--tls-min-version`). TLS 1.3 unless told otherwise.
public enum TLSMinimumVersion: String, Sendable, CaseIterable {
    /// TLS 1.2 and 1.3.
    case v1_2 = "1.2"
    /// TLS 1.3 only.
    case v1_3 = "1.3"

    var nio: TLSVersion { self == .v1_2 ? .tlsv12 : .tlsv13 }
}

/// Where one side's TLS identity and trust are: PEM files, read again on every reload.
public struct TLSFiles: Sendable, Hashable {
    /// This side's certificate chain (leaf first), PEM.
    public var certificate: String
    /// The private key of the leaf certificate, PEM.
    public var privateKey: String
    /// The CA bundle that peer certificates must chain to, PEM.
    public var trustRoots: String

    /// Creates the three paths.
    public init(certificate: String, privateKey: String, trustRoots: String) {
        self.certificate = certificate
        self.privateKey = privateKey
        self.trustRoots = trustRoots
    }

    /// The paths, for change polling.
    public var paths: [String] { [certificate, privateKey, trustRoots] }
}

/// A server port's TLS settings: mutual TLS with these files.
public struct TLSServerOptions: Sendable, Hashable {
    /// Certificate, key and CA bundle.
    public var files: TLSFiles
    /// Lowest version accepted.
    public var minimumVersion: TLSMinimumVersion
    /// Refuse cleartext connections (the default). When false, a connection whose first byte is
    /// not a TLS handshake record is served in cleartext without a peer identity (migration only).
    public var required: Bool

    /// Creates server options.
    public init(files: TLSFiles, minimumVersion: TLSMinimumVersion = .v1_3, required: Bool = true) {
        self.files = files
        self.minimumVersion = minimumVersion
        self.required = required
    }

    /// The NIOSSL configuration: our chain and key, client certificates required and verified
    /// against `trustRoots` (no host name: a client is named by its certificate, not its address).
    func makeConfiguration(applicationProtocols: [String]) throws -> TLSConfiguration {
        let chain = try NIOSSLCertificate.fromPEMFile(files.certificate)
        guard !chain.isEmpty else { throw TLSSetupError.noCertificate(files.certificate) }
        let key = try NIOSSLPrivateKey(file: files.privateKey, format: .pem)
        let roots = try NIOSSLCertificate.fromPEMFile(files.trustRoots)
        guard !roots.isEmpty else { throw TLSSetupError.noCertificate(files.trustRoots) }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = minimumVersion.nio
        configuration.certificateVerification = .noHostnameVerification
        configuration.trustRoots = .certificates(roots)
        configuration.applicationProtocols = applicationProtocols
        return configuration
    }
}

/// A client's TLS settings: the CA bundle that the server must chain to, and optionally the
/// client's own certificate and key (required by Ballast servers, which use mutual TLS).
public struct TLSClientOptions: Sendable, Hashable {
    /// CA bundle, PEM.
    public var trustRoots: String
    /// Client certificate chain, PEM (nil: present none; a Ballast server then refuses).
    public var certificate: String?
    /// Client private key, PEM.
    public var privateKey: String?
    /// Lowest version accepted.
    public var minimumVersion: TLSMinimumVersion
    /// The name the server certificate must carry; nil: the host dialled (an IP address is
    /// checked against the certificate's IP address entries).
    public var serverName: String?

    /// Creates client options.
    public init(trustRoots: String, certificate: String? = nil, privateKey: String? = nil,
                minimumVersion: TLSMinimumVersion = .v1_3, serverName: String? = nil) {
        self.trustRoots = trustRoots
        self.certificate = certificate
        self.privateKey = privateKey
        self.minimumVersion = minimumVersion
        self.serverName = serverName
    }

    /// Client options from node files (a node dialling a peer presents its own certificate).
    public init(files: TLSFiles, minimumVersion: TLSMinimumVersion = .v1_3) {
        self.init(trustRoots: files.trustRoots, certificate: files.certificate, privateKey: files.privateKey,
                  minimumVersion: minimumVersion)
    }

    /// Builds a context from the files as they are now (so a client picks up rotated files on
    /// its next connection).
    public func makeContext(applicationProtocols: [String] = []) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = minimumVersion.nio
        configuration.certificateVerification = .fullVerification
        let roots = try NIOSSLCertificate.fromPEMFile(trustRoots)
        guard !roots.isEmpty else { throw TLSSetupError.noCertificate(trustRoots) }
        configuration.trustRoots = .certificates(roots)
        switch (certificate, privateKey) {
        case (let certificate?, let privateKey?):
            let chain = try NIOSSLCertificate.fromPEMFile(certificate)
            guard !chain.isEmpty else { throw TLSSetupError.noCertificate(certificate) }
            configuration.certificateChain = chain.map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: privateKey, format: .pem))
        case (nil, nil):
            break
        default:
            throw TLSSetupError.incomplete("a client certificate needs its key and a key needs its certificate")
        }
        configuration.applicationProtocols = applicationProtocols
        return try NIOSSLContext(configuration: configuration)
    }

    /// The handler for a connection to `host`: SNI and name check against `serverName ?? host`
    /// (an IP address is verified against the certificate's IP entries, without SNI).
    public func makeHandler(context: NIOSSLContext, host: String) throws -> NIOSSLClientHandler {
        let name = serverName ?? host
        return try NIOSSLClientHandler(context: context, serverHostname: TLSNames.isIPAddress(name) ? nil : name)
    }
}

/// Configuration that cannot work, found before any connection is made.
public enum TLSSetupError: Error, CustomStringConvertible, Sendable {
    /// A PEM file held no certificate.
    case noCertificate(String)
    /// Options that need each other were given alone.
    case incomplete(String)

    public var description: String {
        switch self {
        case .noCertificate(let path): "\(path) holds no PEM certificate"
        case .incomplete(let why): "incomplete TLS options: \(why)"
        }
    }
}

extension TLSClientOptions {
    /// Client options from `--tls-ca/--tls-cert/--tls-key`, each falling back to the environment
    /// (`BALLAST_TLS_CA`, `BALLAST_TLS_CERT`, `BALLAST_TLS_KEY`); nil when none is set (cleartext).
    public static func fromFlags(ca: String?, certificate: String?, key: String?,
                                 environment: [String: String]) throws(TLSSetupError) -> TLSClientOptions? {
        let ca = ca ?? environment["BALLAST_TLS_CA"]
        let certificate = certificate ?? environment["BALLAST_TLS_CERT"]
        let key = key ?? environment["BALLAST_TLS_KEY"]
        guard ca != nil || certificate != nil || key != nil else { return nil }
        guard let ca, !ca.isEmpty else { throw .incomplete("--tls-cert and --tls-key need --tls-ca (the cluster's CA bundle)") }
        guard (certificate == nil) == (key == nil) else { throw .incomplete("--tls-cert and --tls-key go together") }
        return TLSClientOptions(trustRoots: ca, certificate: certificate, privateKey: key)
    }
}
