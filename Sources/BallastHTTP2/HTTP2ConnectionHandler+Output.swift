import CNghttp2
import NIOCore

extension HTTP2ConnectionHandler {
    /// Asks for a flush: now-ish if idle, or at the end of the current read burst / session call.
    func scheduleFlush() {
        guard let context, !flushScheduled else { return }
        if inReadBurst || sessionDepth > 0 { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            self.flushOutput()
        }
    }

    /// Moves frames from nghttp2 to the channel while it is writable, then flushes once.
    func flushOutput() {
        guard let context, let session, sessionDepth == 0 else { return }
        var output: ByteBuffer?
        var lastWrite: EventLoopFuture<Void>?
        sessionDepth += 1
        while context.channel.isWritable || closeAfterFlush {
            var data: UnsafePointer<UInt8>?
            let length = nghttp2_session_mem_send(session, &data)
            if length < 0 {
                failConnection(code: Int32(length), operation: "nghttp2_session_mem_send")
                break
            }
            guard length > 0, let data else { break }
            if output == nil {
                output = context.channel.allocator.buffer(capacity: max(length, 4096))
            }
            output?.writeBytes(UnsafeRawBufferPointer(start: data, count: length))
            if let chunk = output, chunk.readableBytes >= configuration.maxWriteChunkBytes {
                lastWrite = context.write(wrapOutboundOut(chunk))
                output = nil
            }
        }
        sessionDepth -= 1
        if let chunk = output {
            lastWrite = context.write(wrapOutboundOut(chunk))
        }
        if lastWrite != nil { context.flush() }
        if teardownPending {
            teardown()
            return
        }
        closeIfFinished(context: context, session: session, lastWrite: lastWrite)
    }

    /// Closes once the last frames are written; at once if the peer is not reading them (they
    /// would never leave, and the connection would never close).
    private func closeIfFinished(context: ChannelHandlerContext, session: OpaquePointer, lastWrite: EventLoopFuture<Void>?) {
        let done = closeAfterFlush || (nghttp2_session_want_read(session) == 0 && nghttp2_session_want_write(session) == 0)
        guard done else { return }
        closeAfterFlush = false
        let channel = context.channel
        if let lastWrite, channel.isWritable {
            lastWrite.whenComplete { _ in channel.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }

    // MARK: stream API (call on the event loop)

    /// Sends response headers on a server stream; with `endStream` the response is headers only.
    public func sendResponseHeaders(_ headers: [HTTP2Header], streamID: HTTP2StreamID, endStream: Bool) {
        guard let session else { return }
        let rv: Int32
        if endStream {
            rv = NGHTTP2HeaderBlock.with(headers) { nva, count in
                nghttp2_submit_response(session, streamID, nva, count, nil)
            }
        } else {
            let stream = streams[streamID] ?? HTTP2OutboundStream()
            streams[streamID] = stream
            stream.hasProvider = true
            var provider = Self.dataProvider
            rv = NGHTTP2HeaderBlock.with(headers) { nva, count in
                nghttp2_submit_response(session, streamID, nva, count, &provider)
            }
        }
        if rv != 0 {
            logger.debug("cannot submit response headers", metadata: ["stream": "\(streamID)", "code": "\(rv)"])
        }
        scheduleFlush()
    }

    /// Opens a client stream with request headers; returns its id, or nil if the session refuses.
    public func startRequest(_ headers: [HTTP2Header], endStream: Bool) -> HTTP2StreamID? {
        guard let session, isActive else { return nil }
        var provider = Self.dataProvider
        let streamID = NGHTTP2HeaderBlock.with(headers) { nva, count in
            endStream
                ? nghttp2_submit_request(session, nil, nva, count, nil, nil)
                : nghttp2_submit_request(session, nil, nva, count, &provider, nil)
        }
        guard streamID > 0 else { return nil }
        let stream = HTTP2OutboundStream()
        stream.hasProvider = !endStream
        streams[streamID] = stream
        scheduleFlush()
        return streamID
    }

    /// Queues DATA; `promise` succeeds once nghttp2 took the bytes (flow control + writability).
    public func sendData(_ buffer: ByteBuffer, streamID: HTTP2StreamID, endStream: Bool = false,
                         promise: EventLoopPromise<Void>? = nil) {
        guard let stream = streams[streamID], stream.hasProvider, !stream.endRequested else {
            promise?.fail(HTTP2Error(operation: "sendData", code: Int32(HTTP2ErrorCode.streamClosed.rawValue),
                                     detail: "stream \(streamID) is not open for sending"))
            return
        }
        let count = buffer.readableBytes
        if count > 0 {
            stream.pending.append(buffer)
            stream.pendingBytes += count
            stream.queuedBytes += count
            pendingOutboundBytes += count
            peakPendingOutboundBytes = max(peakPendingOutboundBytes, pendingOutboundBytes)
            if role == .server, pendingOutboundBytes > configuration.maxPendingOutboundBytes, !closeAfterFlush {
                logger.debug("closing HTTP/2 connection: the peer leaves too much output unread",
                             metadata: ["pendingBytes": "\(pendingOutboundBytes)"])
                terminate(.enhanceYourCalm)
            }
        }
        if let promise {
            stream.waiters.append((stream.queuedBytes, promise))
            stream.completeWaiters()
        }
        stream.endRequested = endStream
        resume(streamID: streamID, stream: stream)
    }

    /// Ends a server stream with trailers after any queued DATA.
    public func sendTrailers(_ headers: [HTTP2Header], streamID: HTTP2StreamID) {
        guard let stream = streams[streamID], stream.hasProvider, !stream.endRequested else { return }
        stream.trailers = headers
        stream.endRequested = true
        resume(streamID: streamID, stream: stream)
    }

    /// Resets a stream with `errorCode` (RST_STREAM).
    public func resetStream(_ streamID: HTTP2StreamID, errorCode: HTTP2ErrorCode) {
        guard let session else { return }
        _ = nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, errorCode.rawValue)
        scheduleFlush()
    }

    /// Reports `bytes` of received DATA as processed so the peer's windows reopen
    /// (only with `automaticInboundWindowUpdates` off; the stream may already be closed).
    public func consumeInbound(streamID: HTTP2StreamID, bytes: Int) {
        guard let session, bytes > 0, !configuration.automaticInboundWindowUpdates else { return }
        _ = nghttp2_session_consume_connection(session, bytes)
        _ = nghttp2_session_consume_stream(session, streamID, bytes)
        scheduleFlush()
    }

    /// Bytes queued on a stream that nghttp2 has not taken yet.
    public func pendingOutboundBytes(streamID: HTTP2StreamID) -> Int {
        streams[streamID]?.pendingBytes ?? 0
    }

    /// Number of streams this side still tracks.
    public var openStreamCount: Int { streams.count }

    private func resume(streamID: HTTP2StreamID, stream: HTTP2OutboundStream) {
        if stream.deferred, let session {
            stream.deferred = false
            _ = nghttp2_session_resume_data(session, streamID)
        }
        scheduleFlush()
    }
}
