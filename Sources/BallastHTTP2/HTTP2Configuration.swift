import NIOCore

/// An HTTP/2 stream identifier (odd for client-initiated streams).
public typealias HTTP2StreamID = Int32

/// One HTTP/2 header field; names are lowercase as HTTP/2 requires.
public struct HTTP2Header: Sendable, Hashable {
    /// The lowercase field name, pseudo-headers included (`:path`).
    public var name: String
    /// The field value.
    public var value: String

    /// Creates a header field.
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// HTTP/2 connection settings and liveness limits; every field has a bounded default.
public struct HTTP2Configuration: Sendable {
    /// SETTINGS_MAX_CONCURRENT_STREAMS we announce; streams beyond it are refused (REFUSED_STREAM).
    public var maxConcurrentStreams: UInt32 = 256
    /// SETTINGS_INITIAL_WINDOW_SIZE we announce for each stream, in bytes.
    public var initialWindowSizeBytes: UInt32 = 1 << 20
    /// Receive window of the whole connection, in bytes (raised by WINDOW_UPDATE after SETTINGS).
    public var connectionWindowSizeBytes: Int32 = 8 << 20
    /// SETTINGS_MAX_FRAME_SIZE we announce, in bytes.
    public var maxFrameSizeBytes: UInt32 = 1 << 14
    /// SETTINGS_MAX_HEADER_LIST_SIZE we announce and enforce on received header blocks, in bytes.
    public var maxHeaderListSizeBytes: UInt32 = 16 << 10
    /// Interval between keep-alive PINGs; nil disables keep-alive.
    public var pingInterval: TimeAmount? = .seconds(30)
    /// The connection is closed when a PING is not acknowledged within this time.
    public var pingTimeout: TimeAmount = .seconds(10)
    /// After GOAWAY, open streams get this long to finish before the connection is closed.
    public var gracefulShutdownTimeout: TimeAmount = .seconds(10)
    /// Send WINDOW_UPDATE as soon as DATA arrives (true), or only when the application calls
    /// `consumeInbound` (false: the application holds back a peer that sends faster than it reads).
    public var automaticInboundWindowUpdates = true
    /// Bytes of encoded frames collected before they are written to the channel in one go.
    public var maxWriteChunkBytes: Int = 64 << 10
    /// Server: the client's connection preface and first SETTINGS must arrive within this time,
    /// or the connection is closed (a peer that connects and sends nothing, or drips bytes,
    /// holds no connection slot for long); nil waits forever.
    public var handshakeTimeout: TimeAmount? = .seconds(10)
    /// Server: DATA the application queued on all streams of the connection and nghttp2 has not
    /// sent yet. A peer that leaves more than this unread gets GOAWAY(ENHANCE_YOUR_CALM) and the
    /// connection is closed. (Streaming writers wait at their own per-stream mark long before;
    /// what crosses this is unary responses piling up for a client that does not read.)
    public var maxPendingOutboundBytes: Int = 16 << 20
    /// Server: stop reading from the socket while the channel is not writable (the peer is not
    /// reading what we already owe it), and resume when it drains. A client that never reads then
    /// costs no CPU and its requests wait in its own socket buffer. Only the server side does this,
    /// so two peers of this bridge can never both stop reading.
    public var pauseReadsWhileUnwritable = true
    /// Server: RST_STREAM frames a peer may send at once, and per second after that (a token
    /// bucket). Past it the peer gets GOAWAY and the connection is closed: a client that opens
    /// streams and resets them at once (the "rapid reset" attack, CVE-2023-44487) never holds
    /// many streams, yet makes the server set up and tear down a call per frame pair. These are
    /// nghttp2's defaults, set here so they do not depend on the library build.
    public var maxPeerStreamResetBurst: UInt64 = 1000
    public var peerStreamResetsPerSecond: UInt64 = 33

    /// Creates the default configuration.
    public init() {}
}

/// Errors raised by the HTTP/2 bridge, with the nghttp2 error code and what was being done.
public struct HTTP2Error: Error, Sendable, CustomStringConvertible {
    /// What failed (for example "nghttp2_session_mem_recv").
    public var operation: String
    /// The nghttp2 library error code (negative) or HTTP/2 error code.
    public var code: Int32
    /// A human-readable explanation.
    public var detail: String

    /// Creates an error.
    public init(operation: String, code: Int32, detail: String) {
        self.operation = operation
        self.code = code
        self.detail = detail
    }

    /// Describes the error for logs.
    public var description: String { "\(operation) failed (\(code)): \(detail)" }
}

/// HTTP/2 error codes used in RST_STREAM and GOAWAY (RFC 9113 section 7).
public enum HTTP2ErrorCode: UInt32, Sendable {
    case noError = 0x0, protocolError = 0x1, internalError = 0x2, flowControlError = 0x3
    case settingsTimeout = 0x4, streamClosed = 0x5, frameSizeError = 0x6, refusedStream = 0x7
    case cancel = 0x8, compressionError = 0x9, connectError = 0xa, enhanceYourCalm = 0xb
    case inadequateSecurity = 0xc, http11Required = 0xd
}
