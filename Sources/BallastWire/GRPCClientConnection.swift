import BallastHTTP2
import Logging
import NIOCore

/// State of one client call, owned by the connection on the event loop.
final class GRPCClientCall {
    var deframer: GRPCMessageDeframer
    var lz4 = false
    var initialMetadata = GRPCMetadata()
    var receivedHeaders = false
    var done = false
    /// How to send the request again if the server refuses the stream before processing it.
    var retry: GRPCClientRetry?
    /// Server-streaming: DATA is acknowledged (WINDOW_UPDATE) only while the consumer keeps up.
    var streaming = false
    /// Received DATA bytes not yet reported consumed to nghttp2.
    var owedBytes = 0
    /// Wire sizes of messages handed to the consumer and not yet taken, oldest first.
    var deliveredSizes = CircularBuffer<Int>()
    var deliveredBytes = 0
    let onMessage: ([UInt8]) -> Void
    let onFinish: (GRPCStatus, GRPCMetadata) -> Void

    init(maxMessageBytes: Int, onMessage: @escaping ([UInt8]) -> Void,
         onFinish: @escaping (GRPCStatus, GRPCMetadata) -> Void) {
        self.deframer = GRPCMessageDeframer(maxMessageBytes: maxMessageBytes)
        self.onMessage = onMessage
        self.onFinish = onFinish
    }
}

/// What a refused call needs to be sent again (REFUSED_STREAM guarantees it was not processed).
struct GRPCClientRetry {
    var path: String
    var payload: [UInt8]
    var metadata: GRPCMetadata
    var deadline: NIODeadline?
    var attemptsLeft: Int
    var streaming: Bool
    var onStreamID: ((HTTP2StreamID) -> Void)?
}

/// The client side of one HTTP/2 connection: starts calls and turns streams back into results.
final class GRPCClientConnection: HTTP2StreamDelegate {
    let configuration: GRPCClientConfiguration
    let eventLoop: EventLoop
    let authority: String
    weak var handler: HTTP2ConnectionHandler?
    var calls: [HTTP2StreamID: GRPCClientCall] = [:]
    var closed = false
    /// The calls' deadlines, served by one event-loop task (see `CallDeadlines`).
    var deadlines = CallDeadlines()
    /// Why the connection failed below HTTP/2 (a TLS alert from the server, say); added to the
    /// status of calls that fail because of it.
    var closeReason: String?
    private var closedSuffix: String { closeReason.map { ": \($0)" } ?? "" }

    init(configuration: GRPCClientConfiguration, eventLoop: EventLoop, authority: String) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.authority = authority
    }

    /// Starts a call with one request message; returns its stream id, or reports failure via `onFinish`.
    @discardableResult
    func startCall(path: String, payload: [UInt8], metadata: GRPCMetadata, timeoutNanoseconds: Int64?,
                   attemptsLeft: Int = 3, streaming: Bool = false, onStreamID: ((HTTP2StreamID) -> Void)? = nil,
                   onMessage: @escaping ([UInt8]) -> Void,
                   onFinish: @escaping (GRPCStatus, GRPCMetadata) -> Void) -> HTTP2StreamID? {
        guard let handler, !closed, handler.isActive else {
            onFinish(GRPCStatus(.unavailable, "the connection to \(authority) is closed\(closedSuffix)"), GRPCMetadata())
            return nil
        }
        let compress = configuration.compressRequests && payload.count >= configuration.compressionThresholdBytes
        var headers = [
            HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "http"),
            HTTP2Header(":path", path), HTTP2Header(":authority", authority),
            HTTP2Header("content-type", GRPCWireValue.contentType), HTTP2Header("te", "trailers"),
            HTTP2Header(GRPCHeaderName.acceptEncoding, GRPCWireValue.acceptedEncodings),
            HTTP2Header("user-agent", "ballast-swift/0.1"),
        ]
        if let timeoutNanoseconds {
            headers.append(HTTP2Header(GRPCHeaderName.timeout, GRPCTimeout.format(nanoseconds: timeoutNanoseconds)))
        }
        if compress { headers.append(HTTP2Header(GRPCHeaderName.encoding, GRPCWireValue.lz4)) }
        headers.append(contentsOf: metadata.fields.filter { !GRPCMetadata.isReserved($0.name) })
        let framed: ByteBuffer
        do {
            framed = try GRPCCompression.frame(payload, lz4: compress, thresholdBytes: 0)
        } catch {
            onFinish(GRPCStatus(.internal, "cannot compress the request: \(error)"), GRPCMetadata())
            return nil
        }
        guard let streamID = handler.startRequest(headers, endStream: false) else {
            onFinish(GRPCStatus(.unavailable, "cannot open a stream to \(authority)"), GRPCMetadata())
            return nil
        }
        let call = GRPCClientCall(maxMessageBytes: configuration.maxReceiveMessageBytes, onMessage: onMessage, onFinish: onFinish)
        call.retry = GRPCClientRetry(path: path, payload: payload, metadata: metadata,
                                     deadline: timeoutNanoseconds.map { .now() + .nanoseconds($0) },
                                     attemptsLeft: attemptsLeft, streaming: streaming, onStreamID: onStreamID)
        call.streaming = streaming
        calls[streamID] = call
        onStreamID?(streamID)
        handler.sendData(framed, streamID: streamID, endStream: true)
        if let deadline = call.retry?.deadline {
            deadlines.add(deadline, streamID: streamID, liveCalls: calls.count, isLive: isInFlight, schedule: scheduleDeadlines)
        }
        return streamID
    }

    private func isInFlight(_ streamID: HTTP2StreamID) -> Bool { calls[streamID] != nil }

    private func scheduleDeadlines(at fireAt: NIODeadline) -> Scheduled<Void> {
        eventLoop.assumeIsolated().scheduleTask(deadline: fireAt) {
            for streamID in self.deadlines.fired(now: .now()) {
                self.cancel(streamID: streamID, status: GRPCStatus(.deadlineExceeded, "deadline exceeded"))
            }
            self.deadlines.rearm(isLive: self.isInFlight, schedule: self.scheduleDeadlines)
        }
    }

    /// Ends a call locally with `status` and resets its stream.
    func cancel(streamID: HTTP2StreamID, status: GRPCStatus) {
        guard calls[streamID] != nil else { return }
        complete(streamID: streamID, status: status)
        handler?.resetStream(streamID, errorCode: .cancel)
    }

    private func complete(streamID: HTTP2StreamID, status: GRPCStatus) {
        guard let call = calls.removeValue(forKey: streamID), !call.done else { return }
        call.done = true
        handler?.consumeInbound(streamID: streamID, bytes: call.owedBytes)
        call.owedBytes = 0
        call.onFinish(status, call.initialMetadata)
    }

    func http2(_ connection: HTTP2ConnectionHandler, receivedHeaders headers: [HTTP2Header],
               streamID: HTTP2StreamID, endStream: Bool) {
        guard let call = calls[streamID] else { return }
        if !call.receivedHeaders {
            call.receivedHeaders = true
            call.initialMetadata = GRPCMetadata(headers.filter { !GRPCMetadata.isReserved($0.name) })
            call.lz4 = headers.contains { $0.name == GRPCHeaderName.encoding && $0.value == GRPCWireValue.lz4 }
            let httpStatus = headers.first { $0.name == ":status" }?.value ?? ""
            if httpStatus != "200" {
                complete(streamID: streamID, status: GRPCClientStatus.fromHTTPStatus(httpStatus, headers: headers))
                return
            }
            if !endStream { return }
        }
        guard endStream else { return }
        if call.deframer.bufferedBytes > 0 {
            complete(streamID: streamID, status: GRPCStatus(.internal, "response ended inside a gRPC message"))
        } else {
            complete(streamID: streamID, status: GRPCClientStatus.fromTrailers(headers))
        }
    }

    func http2(_ connection: HTTP2ConnectionHandler, receivedData bytes: UnsafeRawBufferPointer, streamID: HTTP2StreamID) {
        guard let call = calls[streamID] else {
            connection.consumeInbound(streamID: streamID, bytes: bytes.count)
            return
        }
        call.deframer.append(bytes)
        call.owedBytes += bytes.count
        do {
            while let frame = try call.deframer.next() {
                let payload = try GRPCCompression.decode(frame, lz4Negotiated: call.lz4,
                                                         maxMessageBytes: configuration.maxReceiveMessageBytes)
                if call.streaming {
                    // Counted decompressed: this is the memory the consumer has yet to take.
                    let size = payload.count + GRPCFraming.prefixBytes
                    call.deliveredSizes.append(size)
                    call.deliveredBytes += size
                }
                call.onMessage(payload)
            }
        } catch {
            cancel(streamID: streamID, status: error)
            return
        }
        settleWindow(streamID: streamID, call: call)
    }

    /// The consumer took one message of a streaming call: maybe reopen the flow-control window.
    func messageTaken(streamID: HTTP2StreamID) {
        guard let call = calls[streamID], let size = call.deliveredSizes.popFirst() else { return }
        call.deliveredBytes -= size
        settleWindow(streamID: streamID, call: call)
    }

    /// Reports received bytes consumed unless the consumer is more than the high-water mark behind,
    /// so a slow reader of a streaming call holds the server back (bounded client memory).
    private func settleWindow(streamID: HTTP2StreamID, call: GRPCClientCall) {
        guard call.owedBytes > 0, call.deliveredBytes <= configuration.streamingHighWaterMarkBytes else { return }
        handler?.consumeInbound(streamID: streamID, bytes: call.owedBytes)
        call.owedBytes = 0
    }

    func http2(_ connection: HTTP2ConnectionHandler, receivedEndStream streamID: HTTP2StreamID) {
        // A response must end with trailers; a DATA END_STREAM without them is a protocol violation.
        if calls[streamID] != nil {
            complete(streamID: streamID, status: GRPCStatus(.internal, "response ended without trailers"))
        }
    }

    func http2(_ connection: HTTP2ConnectionHandler, streamClosed streamID: HTTP2StreamID, errorCode: UInt32) {
        guard let call = calls[streamID] else { return }
        if errorCode == HTTP2ErrorCode.refusedStream.rawValue, !call.receivedHeaders, retryRefused(streamID, call) { return }
        if errorCode == HTTP2ErrorCode.cancel.rawValue, !connection.isActive {
            // The connection is going away (the peer died or closed it), not this call: say
            // UNAVAILABLE, which callers retry, rather than CANCELLED, which they must not.
            complete(streamID: streamID, status: GRPCStatus(.unavailable, "the connection to \(authority) closed before the call finished\(closedSuffix)"))
            return
        }
        complete(streamID: streamID, status: GRPCClientStatus.fromReset(errorCode: errorCode))
    }

    /// Sends a refused call again on a new stream (by now nghttp2 knows the server's stream limit).
    private func retryRefused(_ streamID: HTTP2StreamID, _ call: GRPCClientCall) -> Bool {
        guard let retry = call.retry, retry.attemptsLeft > 0, !closed else { return false }
        var remaining: Int64?
        if let deadline = retry.deadline {
            remaining = (deadline - .now()).nanoseconds
            if let left = remaining, left <= 0 { return false }
        }
        calls.removeValue(forKey: streamID)
        call.done = true
        startCall(path: retry.path, payload: retry.payload, metadata: retry.metadata, timeoutNanoseconds: remaining,
                  attemptsLeft: retry.attemptsLeft - 1, streaming: retry.streaming, onStreamID: retry.onStreamID,
                  onMessage: call.onMessage, onFinish: call.onFinish)
        return true
    }

    func http2(_ connection: HTTP2ConnectionHandler, receivedGoAway lastStreamID: HTTP2StreamID, errorCode: UInt32) {
        closed = true
    }

    func http2ConnectionClosed(_ connection: HTTP2ConnectionHandler) {
        closed = true
        deadlines.removeAll()
        for streamID in calls.keys.sorted() {
            complete(streamID: streamID, status: GRPCStatus(.unavailable, "the connection to \(authority) closed\(closedSuffix)"))
        }
    }
}

/// Maps what a client receives (trailers, HTTP status, resets) to a `GRPCStatus`.
enum GRPCClientStatus {
    static func fromTrailers(_ headers: [HTTP2Header]) -> GRPCStatus {
        guard let raw = headers.first(where: { $0.name == GRPCHeaderName.status })?.value else {
            return GRPCStatus(.internal, "response trailers have no grpc-status")
        }
        let code = Int(raw).flatMap(GRPCStatusCode.init(rawValue:)) ?? .unknown
        let message = headers.first { $0.name == GRPCHeaderName.message }.map { GRPCMessageEncoding.percentDecode($0.value) } ?? ""
        return GRPCStatus(code, message, trailers: GRPCMetadata(headers.filter { !GRPCMetadata.isReserved($0.name) }))
    }

    static func fromHTTPStatus(_ status: String, headers: [HTTP2Header]) -> GRPCStatus {
        let code: GRPCStatusCode
        switch status {
        case "400": code = .internal
        case "401": code = .unauthenticated
        case "403": code = .permissionDenied
        case "404": code = .unimplemented
        case "429", "502", "503", "504": code = .unavailable
        default: code = .unknown
        }
        return GRPCStatus(code, "HTTP status \(status)")
    }

    static func fromReset(errorCode: UInt32) -> GRPCStatus {
        switch HTTP2ErrorCode(rawValue: errorCode) {
        case .refusedStream: GRPCStatus(.unavailable, "the server refused the stream (REFUSED_STREAM)")
        case .cancel: GRPCStatus(.cancelled, "the stream was cancelled")
        case .enhanceYourCalm: GRPCStatus(.resourceExhausted, "the server asked to slow down (ENHANCE_YOUR_CALM)")
        default: GRPCStatus(.internal, "the stream was reset with HTTP/2 error \(errorCode)")
        }
    }
}
