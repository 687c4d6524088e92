import CNghttp2
import Logging
import NIOCore

/// Bridges one nghttp2 session to a SwiftNIO channel, on the server or the client side.
///
/// Bytes read from the channel go to `nghttp2_session_mem_recv`; frames produced by
/// `nghttp2_session_mem_send` are collected and written in one write + flush per read burst,
/// and only while the channel is writable. The session lives on the channel's event loop and
/// is deleted before this handler can be released; no nghttp2 call runs after that.
public final class HTTP2ConnectionHandler: ChannelDuplexHandler {
    /// Bytes read from the socket.
    public typealias InboundIn = ByteBuffer
    /// Nothing is passed on: stream events go to the delegate.
    public typealias InboundOut = Never
    /// Unused: frames come from nghttp2, not from handlers after this one.
    public typealias OutboundIn = ByteBuffer
    /// Encoded HTTP/2 frames.
    public typealias OutboundOut = ByteBuffer

    /// Which side of the connection this handler speaks for.
    public enum Role: Sendable { case server, client }

    /// Outbound user event that starts a graceful shutdown (GOAWAY, drain, close).
    public struct GracefulShutdownEvent: Sendable {
        /// Creates the event.
        public init() {}
    }

    let role: Role
    let configuration: HTTP2Configuration
    var logger: Logger
    /// The stream-level consumer; owned by this handler (it holds us weakly).
    public let delegate: HTTP2StreamDelegate

    var session: OpaquePointer?
    var context: ChannelHandlerContext?
    var streams: [HTTP2StreamID: HTTP2OutboundStream] = [:]
    var headerBlock: [HTTP2Header] = []
    var headerBlockBytes = 0
    var headerBlockTooLarge = false
    /// Depth of nghttp2 calls that may run callbacks; the session is never deleted inside one.
    var sessionDepth = 0
    var teardownPending = false
    var inReadBurst = false
    var flushScheduled = false
    var closeAfterFlush = false
    var shuttingDown = false
    var goAwayReceived = false
    var awaitingShutdownPing = false
    var pingTimer: Scheduled<Void>?
    var pingDeadline: Scheduled<Void>?
    var shutdownDeadline: Scheduled<Void>?
    var handshakeDeadline: Scheduled<Void>?
    /// A `read` held back while the channel was not writable (server, `pauseReadsWhileUnwritable`).
    var readPending = false
    /// DATA queued on all streams and not yet taken by nghttp2 (bounded by `maxPendingOutboundBytes`).
    public internal(set) var pendingOutboundBytes = 0
    /// The largest `pendingOutboundBytes` seen on this connection.
    public internal(set) var peakPendingOutboundBytes = 0

    /// Creates a handler for `role` that reports stream events to `delegate`.
    public init(role: Role, configuration: HTTP2Configuration = HTTP2Configuration(),
                delegate: HTTP2StreamDelegate, logger: Logger = Logger(label: "ballast.http2")) {
        self.role = role
        self.configuration = configuration
        self.delegate = delegate
        self.logger = logger
    }

    /// The event loop of the channel, once the handler is in a pipeline.
    public var eventLoop: EventLoop? { context?.eventLoop }

    /// True while the session is open and new streams may be started.
    public var isActive: Bool { session != nil && !shuttingDown && !goAwayReceived && !teardownPending }

    // MARK: channel events

    /// Starts the session if the channel is already active.
    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { start(context: context) }
    }

    /// Creates the session, submits SETTINGS and starts keep-alive.
    public func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    /// Deletes the session (deferred while nghttp2 is on the stack).
    public func handlerRemoved(context: ChannelHandlerContext) {
        teardown()
        self.context = nil
    }

    /// Deletes the session and reports every open stream closed.
    public func channelInactive(context: ChannelHandlerContext) {
        teardown()
        context.fireChannelInactive()
    }

    /// Feeds the bytes to `nghttp2_session_mem_recv`.
    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard let session else { return }
        inReadBurst = true
        sessionDepth += 1
        let consumed = buffer.withUnsafeReadableBytes { bytes -> Int in
            nghttp2_session_mem_recv(session, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count)
        }
        sessionDepth -= 1
        if consumed < 0 {
            failConnection(code: Int32(consumed), operation: "nghttp2_session_mem_recv")
        }
        finishSessionCall()
    }

    /// Ends a read burst: one batched write and flush.
    public func channelReadComplete(context: ChannelHandlerContext) {
        if session != nil { delegate.http2ReadBurstComplete(self) }
        inReadBurst = false
        flushOutput()
        context.fireChannelReadComplete()
    }

    /// Resumes writing frames once the channel drains, and reading if a read was held back.
    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            flushOutput()
            if readPending, context.channel.isWritable {
                readPending = false
                context.read()
            }
        }
        context.fireChannelWritabilityChanged()
    }

    /// Server: holds a read back while the peer leaves our output unread (see
    /// `HTTP2Configuration.pauseReadsWhileUnwritable`).
    public func read(context: ChannelHandlerContext) {
        if role == .server, configuration.pauseReadsWhileUnwritable, !context.channel.isWritable {
            readPending = true
            return
        }
        context.read()
    }

    /// Closes the connection on a channel error.
    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.debug("closing HTTP/2 connection after a channel error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    /// Handles `GracefulShutdownEvent`; passes other events on.
    public func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        if event is GracefulShutdownEvent {
            initiateGracefulShutdown()
            promise?.succeed(())
        } else {
            context.triggerUserOutboundEvent(event, promise: promise)
        }
    }

    // MARK: session lifecycle

    private func start(context: ChannelHandlerContext) {
        guard session == nil, !teardownPending else { return }
        do {
            session = try makeSession()
        } catch {
            logger.error("cannot create the nghttp2 session", metadata: ["error": "\(error)"])
            context.close(promise: nil)
            return
        }
        submitInitialSettings()
        schedulePing()
        scheduleHandshakeDeadline(context: context)
        flushOutput()
    }

    private func scheduleHandshakeDeadline(context: ChannelHandlerContext) {
        guard role == .server, let timeout = configuration.handshakeTimeout else { return }
        handshakeDeadline = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            self.logger.debug("closing HTTP/2 connection: no connection preface and SETTINGS in time")
            self.context?.close(promise: nil)
        }
    }

    /// The peer's first SETTINGS frame arrived: the handshake is complete.
    func receivedPeerSettings() {
        handshakeDeadline?.cancel()
        handshakeDeadline = nil
    }

    private func makeSession() throws -> OpaquePointer {
        var callbacks: OpaquePointer?
        guard nghttp2_session_callbacks_new(&callbacks) == 0, let callbacks else {
            throw HTTP2Error(operation: "nghttp2_session_callbacks_new", code: -1, detail: "out of memory")
        }
        defer { nghttp2_session_callbacks_del(callbacks) }
        Self.installCallbacks(callbacks)
        var option: OpaquePointer?
        guard nghttp2_option_new(&option) == 0, let option else {
            throw HTTP2Error(operation: "nghttp2_option_new", code: -1, detail: "out of memory")
        }
        defer { nghttp2_option_del(option) }
        nghttp2_option_set_max_send_header_block_length(option, Int(configuration.maxHeaderListSizeBytes) * 2)
        if !configuration.automaticInboundWindowUpdates { nghttp2_option_set_no_auto_window_update(option, 1) }
        if role == .server {
            nghttp2_option_set_stream_reset_rate_limit(option, configuration.maxPeerStreamResetBurst,
                                                       configuration.peerStreamResetsPerSecond)
        }
        var created: OpaquePointer?
        let userData = Unmanaged.passUnretained(self).toOpaque()
        let rv = role == .server
            ? nghttp2_session_server_new2(&created, callbacks, userData, option)
            : nghttp2_session_client_new2(&created, callbacks, userData, option)
        guard rv == 0, let created else {
            throw HTTP2Error(operation: "nghttp2_session_new", code: rv, detail: String(cString: nghttp2_strerror(rv)))
        }
        return created
    }

    private func submitInitialSettings() {
        guard let session else { return }
        let settings: [nghttp2_settings_entry] = [
            .init(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: configuration.maxConcurrentStreams),
            .init(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: configuration.initialWindowSizeBytes),
            .init(settings_id: Int32(NGHTTP2_SETTINGS_MAX_FRAME_SIZE.rawValue), value: configuration.maxFrameSizeBytes),
            .init(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: configuration.maxHeaderListSizeBytes),
        ]
        let rv = settings.withUnsafeBufferPointer {
            nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), $0.baseAddress, $0.count)
        }
        precondition(rv == 0, "nghttp2_submit_settings rejected our own settings: \(rv)")
        let window = configuration.connectionWindowSizeBytes
        if window > 65_535 {
            _ = nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, window)
        }
    }

    /// Deletes the session (deferred while an nghttp2 call is on the stack) and reports closure.
    func teardown() {
        guard session != nil else { return }
        if sessionDepth > 0 {
            teardownPending = true
            return
        }
        let deleted = session
        session = nil
        teardownPending = false
        nghttp2_session_del(deleted)
        pingTimer?.cancel()
        pingDeadline?.cancel()
        shutdownDeadline?.cancel()
        handshakeDeadline?.cancel()
        pendingOutboundBytes = 0
        let open = streams
        streams = [:]
        for (id, stream) in open.sorted(by: { $0.key < $1.key }) {
            stream.failWaiters(HTTP2Error(operation: "write", code: Int32(HTTP2ErrorCode.cancel.rawValue),
                                          detail: "connection closed before stream \(id) finished"))
            delegate.http2(self, streamClosed: id, errorCode: HTTP2ErrorCode.cancel.rawValue)
        }
        delegate.http2ConnectionClosed(self)
    }

    /// Runs after a session call returns: a deferred teardown or a flush requested meanwhile.
    func finishSessionCall() {
        guard sessionDepth == 0 else { return }
        if teardownPending {
            teardown()
            return
        }
        if !inReadBurst { scheduleFlush() }
    }

    /// Ends the connection after a fatal nghttp2 error: GOAWAY(PROTOCOL_ERROR), flush, close.
    func failConnection(code: Int32, operation: String) {
        let error = HTTP2Error(operation: operation, code: code, detail: String(cString: nghttp2_strerror(code)))
        logger.debug("HTTP/2 connection error", metadata: ["error": "\(error)"])
        terminate(HTTP2ErrorCode.protocolError)
    }

    /// Ends the connection with GOAWAY(`code`), written as soon as the channel takes it, then closes.
    func terminate(_ code: HTTP2ErrorCode) {
        if let session {
            _ = nghttp2_session_terminate_session(session, code.rawValue)
        }
        closeAfterFlush = true
    }
}
