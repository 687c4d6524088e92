import NIOCore

/// Per-stream state kept by the connection: DATA waiting for nghttp2's data provider and its waiters.
///
/// Bounded by the writers: `sendData` promises complete only when nghttp2 took the bytes,
/// which happens only inside the peer's flow-control window and while the channel is writable.
final class HTTP2OutboundStream {
    /// DATA queued by the application and not yet copied into frames.
    var pending: CircularBuffer<ByteBuffer> = CircularBuffer(initialCapacity: 2)
    /// Sum of `pending`'s readable bytes.
    var pendingBytes = 0
    /// Total bytes ever queued; promises wait for `takenBytes` to reach their mark.
    var queuedBytes = 0
    /// Total bytes nghttp2 has copied out of `pending`.
    var takenBytes = 0
    /// The application asked to end the stream once `pending` drains.
    var endRequested = false
    /// Trailers to send after the last DATA frame (server responses).
    var trailers: [HTTP2Header]?
    /// The data provider returned NGHTTP2_ERR_DEFERRED and needs `nghttp2_session_resume_data`.
    var deferred = false
    /// A data provider is attached (response or request body is being sent).
    var hasProvider = false
    /// Write promises, in order of their byte mark.
    var waiters: CircularBuffer<(mark: Int, promise: EventLoopPromise<Void>)> = CircularBuffer(initialCapacity: 1)

    /// Copies up to `length` queued bytes into `destination`, returning how many were copied.
    func take(into destination: UnsafeMutableRawPointer, length: Int) -> Int {
        var copied = 0
        while copied < length, var head = pending.first {
            let count = min(length - copied, head.readableBytes)
            head.withUnsafeReadableBytes { source in
                if let base = source.baseAddress {
                    (destination + copied).copyMemory(from: base, byteCount: count)
                }
            }
            head.moveReaderIndex(forwardBy: count)
            copied += count
            if head.readableBytes == 0 {
                pending.removeFirst()
            } else {
                pending[pending.startIndex] = head
            }
        }
        pendingBytes -= copied
        takenBytes += copied
        precondition(pendingBytes >= 0, "outbound byte accounting went negative")
        completeWaiters()
        return copied
    }

    /// Succeeds every write promise whose bytes nghttp2 has taken.
    func completeWaiters() {
        while let first = waiters.first, first.mark <= takenBytes {
            waiters.removeFirst()
            first.promise.succeed(())
        }
    }

    /// Fails every outstanding write promise (the stream closed first).
    func failWaiters(_ error: Error) {
        while let first = waiters.popFirst() {
            first.promise.fail(error)
        }
    }
}
