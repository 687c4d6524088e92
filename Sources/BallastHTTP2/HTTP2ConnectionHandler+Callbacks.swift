import CNghttp2
import NIOCore

// nghttp2 calls these C function pointers only from inside mem_recv/mem_send, which run on
// the event loop while the handler (passed unretained as user_data) is in the pipeline.
extension HTTP2ConnectionHandler {
    static func from(_ userData: UnsafeMutableRawPointer?) -> HTTP2ConnectionHandler? {
        guard let userData else { return nil }
        return Unmanaged<HTTP2ConnectionHandler>.fromOpaque(userData).takeUnretainedValue()
    }

    static let callbackFailure = Int32(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue)
    static let temporalFailure = Int32(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)

    /// The data provider shared by every stream: it reads the stream's queue through user_data.
    static let dataProvider = nghttp2_data_provider(
        source: nghttp2_data_source(ptr: nil),
        read_callback: { _, streamID, buffer, length, flags, _, userData -> Int in
            guard let handler = HTTP2ConnectionHandler.from(userData), let buffer, let flags else {
                return Int(HTTP2ConnectionHandler.callbackFailure)
            }
            return handler.readOutbound(streamID: streamID, into: buffer, length: length, flags: flags)
        })

    static func installCallbacks(_ callbacks: OpaquePointer) {
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, userData in
            guard let handler = HTTP2ConnectionHandler.from(userData), let frame else { return HTTP2ConnectionHandler.callbackFailure }
            handler.beginHeaders(frame: frame)
            return 0
        }
        nghttp2_session_callbacks_set_on_header_callback(callbacks) { _, _, name, nameLength, value, valueLength, _, userData in
            guard let handler = HTTP2ConnectionHandler.from(userData), let name, let value else { return HTTP2ConnectionHandler.callbackFailure }
            return handler.receivedHeader(name: UnsafeBufferPointer(start: name, count: nameLength),
                                          value: UnsafeBufferPointer(start: value, count: valueLength))
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
            guard let handler = HTTP2ConnectionHandler.from(userData), let frame else { return HTTP2ConnectionHandler.callbackFailure }
            handler.receivedFrame(frame)
            return 0
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, streamID, data, length, userData in
            guard let handler = HTTP2ConnectionHandler.from(userData) else { return HTTP2ConnectionHandler.callbackFailure }
            handler.delegate.http2(handler, receivedData: UnsafeRawBufferPointer(start: data, count: length), streamID: streamID)
            return 0
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, errorCode, userData in
            guard let handler = HTTP2ConnectionHandler.from(userData) else { return HTTP2ConnectionHandler.callbackFailure }
            handler.streamClosed(streamID: streamID, errorCode: errorCode)
            return 0
        }
        nghttp2_session_callbacks_set_error_callback2(callbacks) { _, code, message, length, userData in
            guard let handler = HTTP2ConnectionHandler.from(userData), let message else { return 0 }
            let text = message.withMemoryRebound(to: UInt8.self, capacity: length) {
                String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
            }
            handler.logger.debug("nghttp2 protocol error", metadata: ["code": "\(code)", "detail": "\(text)"])
            return 0
        }
    }

    func beginHeaders(frame: UnsafePointer<nghttp2_frame>) {
        headerBlock.removeAll(keepingCapacity: true)
        headerBlockBytes = 0
        headerBlockTooLarge = false
        let streamID = frame.pointee.hd.stream_id
        if role == .server, frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST, streams[streamID] == nil {
            streams[streamID] = HTTP2OutboundStream()
        }
    }

    func receivedHeader(name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) -> Int32 {
        // RFC 9113 section 6.5.2: each field counts its name, value and 32 octets.
        headerBlockBytes += name.count + value.count + 32
        if headerBlockBytes > Int(configuration.maxHeaderListSizeBytes) {
            headerBlockTooLarge = true
            return Self.temporalFailure  // nghttp2 resets just this stream
        }
        headerBlock.append(HTTP2Header(String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        return 0
    }

    func receivedFrame(_ frame: UnsafePointer<nghttp2_frame>) {
        let header = frame.pointee.hd
        let endStream = header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
        switch UInt32(header.type) {
        case NGHTTP2_HEADERS.rawValue:
            let block = headerBlock
            headerBlock = []
            delegate.http2(self, receivedHeaders: block, streamID: header.stream_id, endStream: endStream)
        case NGHTTP2_DATA.rawValue where endStream:
            delegate.http2(self, receivedEndStream: header.stream_id)
        case NGHTTP2_PING.rawValue where header.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0:
            var opaque = frame.pointee.ping.opaque_data
            var marker = Self.shutdownPingData
            let isShutdownPing = withUnsafeBytes(of: &opaque) { a in withUnsafeBytes(of: &marker) { b in a.elementsEqual(b) } }
            if isShutdownPing { sendFinalGoAway() } else { receivedPingAck() }
        case NGHTTP2_SETTINGS.rawValue where header.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0:
            receivedPeerSettings()
        case NGHTTP2_GOAWAY.rawValue:
            goAwayReceived = true
            delegate.http2(self, receivedGoAway: frame.pointee.goaway.last_stream_id,
                           errorCode: frame.pointee.goaway.error_code)
        default:
            break
        }
    }

    func streamClosed(streamID: HTTP2StreamID, errorCode: UInt32) {
        guard let stream = streams.removeValue(forKey: streamID) else {
            delegate.http2(self, streamClosed: streamID, errorCode: errorCode)
            return
        }
        pendingOutboundBytes -= stream.pendingBytes
        stream.failWaiters(HTTP2Error(operation: "write", code: Int32(bitPattern: errorCode),
                                      detail: "stream \(streamID) closed with HTTP/2 error \(errorCode)"))
        delegate.http2(self, streamClosed: streamID, errorCode: errorCode)
    }

    func readOutbound(streamID: HTTP2StreamID, into buffer: UnsafeMutablePointer<UInt8>, length: Int,
                      flags: UnsafeMutablePointer<UInt32>) -> Int {
        guard let stream = streams[streamID] else { return Int(Self.temporalFailure) }
        let copied = stream.take(into: UnsafeMutableRawPointer(buffer), length: length)
        pendingOutboundBytes -= copied
        guard stream.pending.isEmpty else { return copied }
        if stream.endRequested {
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            if let trailers = stream.trailers, let session {
                flags.pointee |= NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
                let rv = NGHTTP2HeaderBlock.with(trailers) { nva, count in
                    nghttp2_submit_trailer(session, streamID, nva, count)
                }
                if rv != 0 { logger.debug("cannot submit trailers", metadata: ["stream": "\(streamID)", "code": "\(rv)"]) }
            }
            return copied
        }
        if copied == 0 {
            stream.deferred = true
            return Int(NGHTTP2_ERR_DEFERRED.rawValue)
        }
        return copied
    }
}
