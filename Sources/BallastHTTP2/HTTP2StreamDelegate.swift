/// Receives stream-level events of one HTTP/2 connection, always on the connection's event loop.
///
/// The server side sees requests (headers, data, end of stream) and answers through
/// the `HTTP2ConnectionHandler` it is given; the client side sees responses and trailers.
public protocol HTTP2StreamDelegate: AnyObject {
    /// A complete header block arrived: request or response headers, or trailers.
    func http2(_ connection: HTTP2ConnectionHandler, receivedHeaders headers: [HTTP2Header],
               streamID: HTTP2StreamID, endStream: Bool)
    /// A chunk of DATA payload arrived; the bytes are only valid during the call.
    func http2(_ connection: HTTP2ConnectionHandler, receivedData bytes: UnsafeRawBufferPointer,
               streamID: HTTP2StreamID)
    /// The peer ended its side of the stream with a DATA frame.
    func http2(_ connection: HTTP2ConnectionHandler, receivedEndStream streamID: HTTP2StreamID)
    /// The stream closed: normally (`.noError`) or reset by either side.
    func http2(_ connection: HTTP2ConnectionHandler, streamClosed streamID: HTTP2StreamID,
               errorCode: UInt32)
    /// The peer sent GOAWAY: no stream above `lastStreamID` will be processed.
    func http2(_ connection: HTTP2ConnectionHandler, receivedGoAway lastStreamID: HTTP2StreamID,
               errorCode: UInt32)
    /// The connection closed; every open stream has already been reported closed.
    func http2ConnectionClosed(_ connection: HTTP2ConnectionHandler)
    /// A burst of reads was processed (before the batched flush): a place for per-burst work.
    func http2ReadBurstComplete(_ connection: HTTP2ConnectionHandler)
}

extension HTTP2StreamDelegate {
    /// Default: nothing to do per read burst.
    public func http2ReadBurstComplete(_ connection: HTTP2ConnectionHandler) {}
}
