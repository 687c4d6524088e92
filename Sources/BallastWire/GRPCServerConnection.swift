import BallastHTTP2
import Logging
import NIOCore

/// State of one server call (one HTTP/2 stream), owned by its connection on the event loop.
final class GRPCServerCall {
    let streamID: HTTP2StreamID
    var deframer: GRPCMessageDeframer
    var path = ""
    var method: GRPCMethodHandler?
    var metadata = GRPCMetadata()
    var request: GRPCFrame?
    var requestLZ4 = false
    var responseLZ4 = false
    var headersSent = false
    var finished = false
    var requestComplete = false
    var deadline: NIODeadline?
    /// The request must be complete by then (`requestReceiveTimeout`); checked by the
    /// connection's one sweep timer, not a timer per call.
    var receiveLimit: NIODeadline?
    /// `deadline` (the client's grpc-timeout) is in the connection's `deadlines`.
    var deadlineArmed = false
    var cancel: (@Sendable () -> Void)?
    /// Request bytes of this call counted in the connection's buffered total.
    var accountedBytes = 0

    init(streamID: HTTP2StreamID, maxMessageBytes: Int) {
        self.streamID = streamID
        self.deframer = GRPCMessageDeframer(maxMessageBytes: maxMessageBytes)
    }
}

/// Turns HTTP/2 streams of one connection into gRPC calls of the registry's methods.
final class GRPCServerConnection: HTTP2StreamDelegate {
    let registry: GRPCMethodRegistry
    let configuration: GRPCServerConfiguration
    let eventLoop: EventLoop
    let logger: Logger
    weak var handler: HTTP2ConnectionHandler?
    /// Set by the TLS layer once the handshake has verified the client's certificate.
    var peer: PeerIdentity?
    var calls: [HTTP2StreamID: GRPCServerCall] = [:]
    /// Calls started in this read burst; those still unfinished at its end get their timer then,
    /// so a unary call answered within the burst never touches the timer heap.
    var untimedCalls: [GRPCServerCall] = []
    /// Request bytes buffered by all calls of this connection (bounded by
    /// `maxBufferedRequestBytesPerConnection`).
    var bufferedRequestBytes = 0
    /// The one timer that cancels calls whose request did not complete within the receive timeout.
    /// One per connection: a timer per call would put every unfinished stream of a stream flood in
    /// the event loop's timer heap, which each cancellation then has to search.
    var receiveSweep: Scheduled<Void>?
    /// The calls' grpc-timeout deadlines, served by one event-loop task (see `CallDeadlines`).
    var deadlines = CallDeadlines()

    init(registry: GRPCMethodRegistry, configuration: GRPCServerConfiguration, eventLoop: EventLoop, logger: Logger) {
        self.registry = registry
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.logger = logger
    }

    func http2(_ connection: HTTP2ConnectionHandler, receivedHeaders headers: [HTTP2Header],
               streamID: HTTP2StreamID, endStream: Bool) {
        if let call = calls[streamID] {
            // Request trailers carry nothing gRPC uses; they only end the request.
            if endStream { requestEnded(call) }
            return
        }
        let call = GRPCServerCall(streamID: streamID, maxMessageBytes: configuration.maxReceiveMessageBytes)
        calls[streamID] = call
        if let rejection = accept(headers, call: call) {
            reject(call, rejection)
            return
        }
        untimedCalls.append(call)
        if endStream { requestEnded(call) }
    }

    func http2(_ connection: HTTP2ConnectionHandler, receivedData bytes: UnsafeRawBufferPointer, streamID: HTTP2StreamID) {
        guard let call = calls[streamID], !call.finished, !call.requestComplete else { return }
        call.deframer.append(bytes)
        do throws(GRPCStatus) {
            while let frame = try call.deframer.next() {
                guard call.request == nil else {
                    throw GRPCStatus(.internal, "\(call.path) takes one request message, received more")
                }
                call.request = frame
            }
            account(call)
            guard bufferedRequestBytes <= configuration.maxBufferedRequestBytesPerConnection else {
                throw GRPCStatus(.resourceExhausted, "requests in flight on this connection exceed "
                                 + "\(configuration.maxBufferedRequestBytesPerConnection) buffered bytes")
            }
        } catch {
            finish(streamID: streamID, status: error)
        }
    }

    /// Brings the connection's buffered-bytes total up to date with `call`.
    private func account(_ call: GRPCServerCall) {
        let now = call.deframer.bufferedBytes + (call.request?.payload.readableBytes ?? 0)
        bufferedRequestBytes += now - call.accountedBytes
        call.accountedBytes = now
    }

    /// Drops a call's buffered request bytes (it finished, closed, or its request was handed over).
    func releaseBuffers(_ call: GRPCServerCall) {
        bufferedRequestBytes -= call.accountedBytes
        call.accountedBytes = 0
        call.request = nil
        if call.deframer.bufferedBytes > 0 {
            call.deframer = GRPCMessageDeframer(maxMessageBytes: configuration.maxReceiveMessageBytes)
        }
        precondition(bufferedRequestBytes >= 0, "buffered request accounting went negative")
    }

    func http2(_ connection: HTTP2ConnectionHandler, receivedEndStream streamID: HTTP2StreamID) {
        if let call = calls[streamID] { requestEnded(call) }
    }

    func http2(_ connection: HTTP2ConnectionHandler, streamClosed streamID: HTTP2StreamID, errorCode: UInt32) {
        guard let call = calls.removeValue(forKey: streamID) else { return }
        releaseBuffers(call)
        if !call.finished {
            call.finished = true
            call.cancel?()
        }
    }

    func http2(_ connection: HTTP2ConnectionHandler, receivedGoAway lastStreamID: HTTP2StreamID, errorCode: UInt32) {}

    func http2ReadBurstComplete(_ connection: HTTP2ConnectionHandler) {
        guard !untimedCalls.isEmpty else { return }
        let limit = NIODeadline.now() + configuration.requestReceiveTimeout
        var waiting = false
        for call in untimedCalls where !call.finished {
            armTimer(call)
            if !call.requestComplete {
                call.receiveLimit = limit
                waiting = true
            }
        }
        untimedCalls.removeAll(keepingCapacity: true)
        if waiting, receiveSweep == nil { scheduleReceiveSweep(at: limit) }
    }

    /// Limits only grow (now + a constant), so a sweep already scheduled is never too late.
    private func scheduleReceiveSweep(at when: NIODeadline) {
        receiveSweep = eventLoop.assumeIsolated().scheduleTask(deadline: when) {
            self.receiveSweep = nil
            self.sweepReceiveLimits()
        }
    }

    /// Cancels the calls whose request is overdue; re-arms for the next one.
    private func sweepReceiveLimits() {
        let now = NIODeadline.now()
        var next: NIODeadline?
        for call in Array(calls.values) where !call.finished && !call.requestComplete {
            guard let limit = call.receiveLimit else { continue }
            if limit <= now {
                finish(streamID: call.streamID, status: GRPCStatus(.cancelled, "request not completed within the server's receive timeout"))
            } else {
                next = min(next ?? limit, limit)
            }
        }
        if let next { scheduleReceiveSweep(at: next) }
    }

    func http2ConnectionClosed(_ connection: HTTP2ConnectionHandler) {
        receiveSweep?.cancel()
        receiveSweep = nil
        deadlines.removeAll()
        untimedCalls.removeAll()
        bufferedRequestBytes = 0
        let open = calls
        calls = [:]
        for (_, call) in open where !call.finished {
            call.finished = true
            call.cancel?()
        }
    }

    // MARK: call lifecycle

    /// HTTP-level rejections (not gRPC) and gRPC trailers-only rejections.
    enum Rejection {
        case httpStatus(Int)
        case grpc(GRPCStatus)
    }

    private func accept(_ headers: [HTTP2Header], call: GRPCServerCall) -> Rejection? {
        var method = "", contentType = "", encoding = "", accept = "", timeout: String?
        for header in headers {
            switch header.name {
            case ":method": method = header.value
            case ":path": call.path = header.value
            case "content-type": contentType = header.value
            case GRPCHeaderName.encoding: encoding = header.value
            case GRPCHeaderName.acceptEncoding: accept = header.value
            case GRPCHeaderName.timeout: timeout = header.value
            default:
                if !GRPCMetadata.isReserved(header.name) { call.metadata.fields.append(header) }
            }
        }
        guard method == "POST" else { return .httpStatus(405) }
        guard contentType == GRPCWireValue.contentType || contentType.hasPrefix(GRPCWireValue.contentType + "+")
                || contentType.hasPrefix(GRPCWireValue.contentType + ";") else { return .httpStatus(415) }
        guard let handler = registry.methods[call.path] else {
            return .grpc(GRPCStatus(.unimplemented, "unknown method \(call.path)"))
        }
        call.method = handler
        switch encoding {
        case "", GRPCWireValue.identity: break
        case GRPCWireValue.lz4: call.requestLZ4 = true
        default: return .grpc(GRPCStatus(.unimplemented, "grpc-encoding \(encoding) is not supported (lz4, identity are)"))
        }
        call.responseLZ4 = configuration.compressResponses
            && GRPCWireValue.list(accept, names: GRPCWireValue.lz4)
        if let timeout {
            guard let nanoseconds = GRPCTimeout.parseNanoseconds(timeout) else {
                return .grpc(GRPCStatus(.internal, "malformed grpc-timeout \(timeout)"))
            }
            call.deadline = NIODeadline.now() + .nanoseconds(nanoseconds)
        }
        return nil
    }

    private func reject(_ call: GRPCServerCall, _ rejection: Rejection) {
        switch rejection {
        case .grpc(let status):
            finish(streamID: call.streamID, status: status)
        case .httpStatus(let code):
            call.finished = true
            handler?.sendResponseHeaders([HTTP2Header(":status", "\(code)")], streamID: call.streamID, endStream: true)
        }
    }

    /// Puts the call's deadline (the client's grpc-timeout), if it has one, in `deadlines`.
    private func armTimer(_ call: GRPCServerCall) {
        guard !call.deadlineArmed, let fireAt = call.deadline else { return }
        call.deadlineArmed = true
        deadlines.add(fireAt, streamID: call.streamID, liveCalls: calls.count, isLive: isInFlight, schedule: scheduleDeadlines)
    }

    private func isInFlight(_ streamID: HTTP2StreamID) -> Bool {
        guard let call = calls[streamID] else { return false }
        return !call.finished
    }

    private func scheduleDeadlines(at fireAt: NIODeadline) -> Scheduled<Void> {
        eventLoop.assumeIsolated().scheduleTask(deadline: fireAt) {
            for streamID in self.deadlines.fired(now: .now()) { self.timerFired(streamID: streamID) }
            self.deadlines.rearm(isLive: self.isInFlight, schedule: self.scheduleDeadlines)
        }
    }

    private func timerFired(streamID: HTTP2StreamID) {
        guard let call = calls[streamID], !call.finished else { return }
        call.cancel?()
        finish(streamID: streamID, status: GRPCStatus(.deadlineExceeded, "deadline exceeded on the server"))
    }

    private func requestEnded(_ call: GRPCServerCall) {
        guard !call.finished, !call.requestComplete, let method = call.method else { return }
        call.requestComplete = true
        guard call.deframer.bufferedBytes == 0 else {
            finish(streamID: call.streamID, status: GRPCStatus(.internal, "request ended inside a gRPC message"))
            return
        }
        guard let frame = call.request else {
            finish(streamID: call.streamID, status: GRPCStatus(.internal, "\(call.path) needs one request message, received none"))
            return
        }
        releaseBuffers(call)
        let payload: [UInt8]
        do {
            payload = try GRPCCompression.decode(frame, lz4Negotiated: call.requestLZ4,
                                                 maxMessageBytes: configuration.maxReceiveMessageBytes)
        } catch {
            finish(streamID: call.streamID, status: error)
            return
        }
        call.receiveLimit = nil
        let context = GRPCServerContext(path: call.path, metadata: call.metadata, deadline: call.deadline, peer: peer)
        let responder = GRPCServerResponder(eventLoop: eventLoop, connection: NIOLoopBound(self, eventLoop: eventLoop),
                                            streamID: call.streamID)
        call.cancel = method.start(payload, context, responder)
    }
}
