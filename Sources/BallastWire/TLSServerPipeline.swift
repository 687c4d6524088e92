import Foundation
import Logging
import NIOCore
import NIOSSL
import NIOTLS

/// Sets up an accepted connection of a TLS port. The first bytes decide: a TLS handshake record
/// gets the TLS handler (mutual authentication with the store's current context); anything else
/// is refused with a log line when TLS is required, or served in cleartext when it is not.
/// The protocol handlers (`addProtocolHandlers`) are added only once this is decided, so
/// nothing the protocol writes at start can leave the connection unencrypted. Once the
/// handshake has verified the client's certificate, `onPeer` gets its identity before any
/// application byte is passed on; a certificate that names nobody, or that `onPeer` refuses
/// (returns a reason), closes the connection with a log line.
public enum TLSServerPipeline {
    /// What `onPeer` answers: nil accepts the peer, a string refuses it for that reason.
    public typealias PeerCheck = (PeerIdentity, Channel) -> String?
    /// A connection that sends no first byte, or does not finish its handshake, within this
    /// time is closed (so idle or stalled connections cannot pile up before authentication).
    public static let handshakeTimeout: TimeAmount = .seconds(10)

    /// Configures `channel`; call from its child channel initializer, on its event loop.
    public static func configure(
        _ channel: Channel, store: TLSContextStore?, logger: Logger,
        onPeer: @escaping PeerCheck = { _, _ in nil },
        addProtocolHandlers: @escaping (Channel) throws -> Void
    ) throws {
        guard let store else {
            try addProtocolHandlers(channel)
            return
        }
        try channel.pipeline.syncOperations.addHandler(
            TLSSniffHandler(store: store, logger: logger, onPeer: onPeer, addProtocolHandlers: addProtocolHandlers))
    }
}

/// Looks at the first byte of a connection and installs TLS or cleartext accordingly.
final class TLSSniffHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let store: TLSContextStore
    private let logger: Logger
    private let onPeer: TLSServerPipeline.PeerCheck
    private let addProtocolHandlers: (Channel) throws -> Void
    private var decided = false
    private var deadline: Scheduled<Void>?

    init(store: TLSContextStore, logger: Logger, onPeer: @escaping TLSServerPipeline.PeerCheck,
         addProtocolHandlers: @escaping (Channel) throws -> Void) {
        self.store = store
        self.logger = logger
        self.onPeer = onPeer
        self.addProtocolHandlers = addProtocolHandlers
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        let logger = self.logger, port = store.portName
        deadline = context.eventLoop.scheduleTask(in: TLSServerPipeline.handshakeTimeout) {
            logger.info("closing a connection that sent nothing", metadata: ["port": "\(port)",
                                                                            "remote": "\(channel.remoteAddress.map { "\($0)" } ?? "?")"])
            channel.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard !decided else { return context.fireChannelRead(data) }
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return }
        decided = true
        deadline?.cancel()
        let remote = context.remoteAddress.map { "\($0)" } ?? "?"
        do {
            let operations = context.pipeline.syncOperations
            if first == 0x16 {
                let peer = TLSPeerHandler(store: store, logger: logger, onPeer: onPeer)
                let ssl = try TLSVerificationDiagnosis.makeServerHandler(NIOSSLServerHandler.self, context: store.context) {
                    [weak peer] problem in peer?.verificationProblem = problem
                }
                try operations.addHandlers([ssl, peer], position: .after(self))
                try addProtocolHandlers(context.channel)
            } else if store.options.required {
                logger.warning("refused a cleartext connection: this port requires TLS",
                               metadata: ["port": "\(store.portName)", "remote": "\(remote)"])
                context.close(promise: nil)
                return
            } else {
                logger.debug("serving a cleartext connection (TLS not required)",
                             metadata: ["port": "\(store.portName)", "remote": "\(remote)"])
                try addProtocolHandlers(context.channel)
            }
        } catch {
            logger.error("cannot set up the connection", metadata: ["port": "\(store.portName)", "error": "\(error)"])
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

/// Sits right after the TLS handler: logs refused handshakes with their reason, and on a
/// completed one names the peer (or refuses it), then gets out of the way.
final class TLSPeerHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let store: TLSContextStore
    private let logger: Logger
    private let onPeer: TLSServerPipeline.PeerCheck
    private var refused = false
    private var deadline: Scheduled<Void>?
    /// Why the client's certificate failed verification, as seen during the handshake.
    var verificationProblem: String?

    init(store: TLSContextStore, logger: Logger, onPeer: @escaping TLSServerPipeline.PeerCheck) {
        self.store = store
        self.logger = logger
        self.onPeer = onPeer
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        let logger = self.logger, port = store.portName
        deadline = context.eventLoop.scheduleTask(in: TLSServerPipeline.handshakeTimeout) {
            logger.warning("refused a TLS connection: the handshake did not finish in time",
                           metadata: ["port": "\(port)", "remote": "\(channel.remoteAddress.map { "\($0)" } ?? "?")"])
            channel.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case TLSUserEvent.handshakeCompleted = event else { return context.fireUserInboundEventTriggered(event) }
        let remote = context.remoteAddress.map { "\($0)" } ?? "?"
        guard let certificate = try? context.pipeline.syncOperations.nioSSL_peerCertificate(),
              let identity = TLSNames.identity(of: certificate) else {
            return refuse(context, remote: remote, "the client certificate names no identity (no ballast:// URI, DNS name or CN)")
        }
        if let why = onPeer(identity, context.channel) {
            return refuse(context, remote: remote, why, identity: identity.name)
        }
        logger.debug("TLS peer verified", metadata: ["port": "\(store.portName)", "remote": "\(remote)", "peer": "\(identity.name)"])
        context.fireUserInboundEventTriggered(event)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private func refuse(_ context: ChannelHandlerContext, remote: String, _ why: String, identity: String? = nil) {
        refused = true
        var metadata: Logger.Metadata = ["port": "\(store.portName)", "remote": "\(remote)", "reason": "\(why)"]
        if let identity { metadata["peer"] = "\(identity)" }
        logger.warning("refused a TLS connection: \(why)", metadata: metadata)
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let remote = context.remoteAddress.map { "\($0)" } ?? "?"
        if case NIOSSLError.uncleanShutdown = error {
            context.fireErrorCaught(error)
            return
        }
        refused = true
        let reason = verificationProblem.map { "client certificate refused: \($0)" } ?? TLSNames.describe(error)
        logger.warning("refused a TLS connection: \(reason)", metadata: ["port": "\(store.portName)", "remote": "\(remote)"])
        context.close(promise: nil)
    }
}

/// Says why a presented certificate failed verification (BoringSSL's handshake error only says
/// CERTIFICATE_VERIFY_FAILED): each certificate that fails is checked for its dates; one within
/// its dates failed for its issuer.
protocol TLSServerHandlerWithVerification {
    init(context: NIOSSLContext, verificationCallback: NIOSSLVerificationCallback?) throws
}

extension NIOSSLServerHandler: TLSServerHandlerWithVerification {}

enum TLSVerificationDiagnosis {
    /// A server handler that verifies as usual and reports the first problem to `report`.
    static func makeServerHandler<Handler: TLSServerHandlerWithVerification>(
        _ type: Handler.Type, context: NIOSSLContext, report: @escaping (String) -> Void
    ) throws -> Handler {
        var reported = false
        return try Handler(context: context) { result, certificate in
            if case .failed = result, !reported {
                reported = true
                report(problem(with: certificate))
            }
            return result
        }
    }

    /// What is wrong with `certificate`, which failed verification.
    static func problem(with certificate: NIOSSLCertificate, now: Date = Date()) -> String {
        let name = TLSNames.identity(of: certificate)?.name ?? "an unnamed certificate"
        let notAfter = Date(timeIntervalSince1970: TimeInterval(certificate.notValidAfter))
        let notBefore = Date(timeIntervalSince1970: TimeInterval(certificate.notValidBefore))
        if notAfter < now { return "\(name) expired at \(notAfter)" }
        if notBefore > now { return "\(name) is not valid before \(notBefore)" }
        let issuer = certificate.issuerName.map(\.value).joined(separator: ",")
        return "\(name) is not issued by a trusted CA (issuer \(issuer))"
    }
}
