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

    /// Sends GOAWAY, refuses new streams, and closes once open streams finish (or the timeout hits).
    public func initiateGracefulShutdown() {
        guard let session, let context, !shuttingDown else { return }
        shuttingDown = true
        let lastStreamID = role == .server ? nghttp2_session_get_last_proc_stream_id(session) : 0
        _ = nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), lastStreamID,
                                  HTTP2ErrorCode.noError.rawValue, nil, 0)
        shutdownDeadline = context.eventLoop.assumeIsolated().scheduleTask(in: configuration.gracefulShutdownTimeout) {
            self.logger.info("closing HTTP/2 connection: graceful shutdown timed out")
            self.context?.close(promise: nil)
        }
        scheduleFlush()
    }
}
