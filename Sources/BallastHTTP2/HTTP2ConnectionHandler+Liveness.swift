import CNghttp2
import NIOCore

extension HTTP2ConnectionHandler {
    /// Schedules the next keep-alive PING, if keep-alive is on.
    func schedulePing() {
        guard let interval = configuration.pingInterval, let context else { return }
        pingTimer?.cancel()
        pingTimer = context.eventLoop.assumeIsolated().scheduleTask(in: interval) {
            self.sendKeepAlivePing()
        }
    }

    private func sendKeepAlivePing() {
        guard let session, let context else { return }
        _ = nghttp2_submit_ping(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nil)
        pingDeadline?.cancel()
        pingDeadline = context.eventLoop.assumeIsolated().scheduleTask(in: configuration.pingTimeout) {
            self.logger.info("closing HTTP/2 connection: keep-alive PING not acknowledged in time")
            self.context?.close(promise: nil)
        }
        scheduleFlush()
    }

    /// A PING ACK arrived: the peer is alive and reading.
    func receivedPingAck() {
        pingDeadline?.cancel()
        pingDeadline = nil
        schedulePing()
    }

    /// Opaque data of the PING that ends the first phase of a server's graceful shutdown.
    static let shutdownPingData: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0x42, 0x41, 0x4C, 0x4C, 0x41, 0x53, 0x54, 0x21)

    /// Sends GOAWAY, refuses new streams, and closes once open streams finish (or the timeout hits).
    ///
    /// A server does it in two phases, like grpc-go: a shutdown notice (GOAWAY with the maximum
    /// stream id) and a PING; when the PING is acknowledged every request the client sent before
    /// seeing the notice has arrived, and the final GOAWAY names the last one processed. So a
    /// request racing the shutdown is served instead of refused.
    public func initiateGracefulShutdown() {
        guard let session, let context, !shuttingDown else { return }
        shuttingDown = true
        if role == .server {
            _ = nghttp2_submit_shutdown_notice(session)
            var opaque = Self.shutdownPingData
            _ = withUnsafeBytes(of: &opaque) { bytes in
                nghttp2_submit_ping(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), bytes.baseAddress?.assumingMemoryBound(to: UInt8.self))
            }
            awaitingShutdownPing = true
            context.eventLoop.assumeIsolated().scheduleTask(in: configuration.pingTimeout) { self.sendFinalGoAway() }
        } else {
            _ = nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, HTTP2ErrorCode.noError.rawValue, nil, 0)
        }
        shutdownDeadline = context.eventLoop.assumeIsolated().scheduleTask(in: configuration.gracefulShutdownTimeout) {
            self.logger.info("closing HTTP/2 connection: graceful shutdown timed out")
            self.context?.close(promise: nil)
        }
        scheduleFlush()
    }

    /// Second phase of a server's graceful shutdown: GOAWAY with the last processed stream.
    func sendFinalGoAway() {
        guard awaitingShutdownPing, let session else { return }
        awaitingShutdownPing = false
        _ = nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nghttp2_session_get_last_proc_stream_id(session),
                                  HTTP2ErrorCode.noError.rawValue, nil, 0)
        scheduleFlush()
    }
}
