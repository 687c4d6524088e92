import BallastHTTP2
import NIOCore

extension GRPCServerConnection {
    /// Sends one response message of a call (response headers first if not yet sent).
    func sendMessage(streamID: HTTP2StreamID, payload: [UInt8]) -> EventLoopFuture<Void> {
        guard let call = calls[streamID], !call.finished, let handler else {
            return eventLoop.makeFailedFuture(GRPCStatus(.cancelled, "the call already ended"))
        }
        guard payload.count <= configuration.maxSendMessageBytes else {
            let status = GRPCStatus(.resourceExhausted,
                                    "response of \(payload.count) bytes exceeds the limit of \(configuration.maxSendMessageBytes) bytes")
            finish(streamID: streamID, status: status)
            return eventLoop.makeFailedFuture(status)
        }
        if !call.headersSent {
            call.headersSent = true
            handler.sendResponseHeaders(responseHeaders(call), streamID: streamID, endStream: false)
        }
        let framed: ByteBuffer
        do {
            framed = try GRPCCompression.frame(payload, lz4: call.responseLZ4,
                                               thresholdBytes: configuration.compressionThresholdBytes)
        } catch {
            finish(streamID: streamID, status: GRPCStatus(.internal, "cannot compress the response: \(error)"))
            return eventLoop.makeFailedFuture(error)
        }
        if handler.pendingOutboundBytes(streamID: streamID) + framed.readableBytes > configuration.streamHighWaterMarkBytes {
            let promise = eventLoop.makePromise(of: Void.self)
            handler.sendData(framed, streamID: streamID, promise: promise)
            return promise.futureResult
        }
        handler.sendData(framed, streamID: streamID)
        return eventLoop.makeSucceededVoidFuture()
    }

    /// Ends a call with `status`: trailers after messages, or a trailers-only response.
    func finish(streamID: HTTP2StreamID, status: GRPCStatus) {
        guard let call = calls[streamID], !call.finished else { return }
        call.finished = true
        releaseBuffers(call)
        guard let handler else { return }
        var trailers = [HTTP2Header(GRPCHeaderName.status, "\(status.code.rawValue)")]
        if !status.message.isEmpty {
            trailers.append(HTTP2Header(GRPCHeaderName.message, GRPCMessageEncoding.percentEncode(status.message)))
        }
        trailers.append(contentsOf: status.trailers.fields.filter { !GRPCMetadata.isReserved($0.name) })
        if call.headersSent {
            handler.sendTrailers(trailers, streamID: streamID)
        } else {
            handler.sendResponseHeaders(responseHeaders(call) + trailers, streamID: streamID, endStream: true)
            // A client still sending a request we no longer read gets a grace period to see the
            // status (an immediate RST_STREAM races it in some clients), then RST_STREAM(NO_ERROR).
            if !call.requestComplete { scheduleReset(call) }
        }
    }

    private func scheduleReset(_ call: GRPCServerCall) {
        eventLoop.assumeIsolated().scheduleTask(in: configuration.abandonedRequestGracePeriod) {
            guard self.calls[call.streamID] === call else { return }
            self.handler?.resetStream(call.streamID, errorCode: .noError)
        }
    }

    private func responseHeaders(_ call: GRPCServerCall) -> [HTTP2Header] {
        var headers = [
            HTTP2Header(":status", "200"),
            HTTP2Header("content-type", GRPCWireValue.contentType),
            HTTP2Header(GRPCHeaderName.acceptEncoding, GRPCWireValue.acceptedEncodings),
        ]
        if call.responseLZ4 { headers.append(HTTP2Header(GRPCHeaderName.encoding, GRPCWireValue.lz4)) }
        return headers
    }
}

/// Per-message compression (`grpc-encoding: lz4`, LZ4 frame format) and framing.
enum GRPCCompression {
    /// Frames a payload, compressing it when LZ4 was negotiated and it is large enough.
    static func frame(_ payload: [UInt8], lz4: Bool, thresholdBytes: Int) throws -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: payload.count + GRPCFraming.prefixBytes)
        if lz4, payload.count >= thresholdBytes {
            let compressed = try LZ4Frame.compress(payload)
            compressed.withUnsafeBytes { GRPCFraming.write(payload: $0, compressed: true, into: &buffer) }
        } else {
            payload.withUnsafeBytes { GRPCFraming.write(payload: $0, compressed: false, into: &buffer) }
        }
        return buffer
    }

    /// The plain payload of a received frame.
    static func decode(_ frame: GRPCFrame, lz4Negotiated: Bool, maxMessageBytes: Int) throws(GRPCStatus) -> [UInt8] {
        guard frame.compressed else { return Array(frame.payload.readableBytesView) }
        guard lz4Negotiated else {
            throw GRPCStatus(.internal, "compressed message without a grpc-encoding")
        }
        do {
            return try frame.payload.withUnsafeReadableBytes { bytes throws(LZ4Error) in
                try LZ4Frame.decompress(bytes, maxOutputBytes: maxMessageBytes)
            }
        } catch .tooLarge(let limit) {
            throw GRPCStatus(.resourceExhausted, "decompressed message exceeds the limit of \(limit) bytes")
        } catch {
            throw GRPCStatus(.internal, "cannot decompress the message: \(error)")
        }
    }
}
