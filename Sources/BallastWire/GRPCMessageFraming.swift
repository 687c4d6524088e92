import NIOCore

/// One gRPC length-prefixed message: the compressed flag and the (possibly compressed) payload.
public struct GRPCFrame: Sendable, Equatable {
    /// Whether the payload is compressed with the stream's `grpc-encoding`.
    public var compressed: Bool
    /// The payload bytes.
    public var payload: ByteBuffer

    /// Creates a frame.
    public init(compressed: Bool, payload: ByteBuffer) {
        self.compressed = compressed
        self.payload = payload
    }
}

/// The 5-byte gRPC length prefix: parse and write (pure, no I/O).
public enum GRPCFraming {
    /// Bytes of the prefix: 1 flag byte and a 4-byte big-endian length.
    public static let prefixBytes = 5

    /// Parses one frame from the front of `buffer`, or returns nil when more bytes are needed.
    ///
    /// The length is checked against `maxMessageBytes` before any payload is buffered, so an
    /// announced oversized message fails at once with RESOURCE_EXHAUSTED.
    public static func parse(_ buffer: inout ByteBuffer, maxMessageBytes: Int) throws(GRPCStatus) -> GRPCFrame? {
        guard let flag = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
              let length = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt32.self) else { return nil }
        guard flag <= 1 else {
            throw GRPCStatus(.internal, "invalid gRPC message flag \(flag) (expected 0 or 1)")
        }
        guard Int(length) <= maxMessageBytes else {
            throw GRPCStatus(.resourceExhausted,
                             "message of \(length) bytes exceeds the limit of \(maxMessageBytes) bytes")
        }
        guard buffer.readableBytes >= prefixBytes + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: prefixBytes)
        guard let payload = buffer.readSlice(length: Int(length)) else { return nil }
        return GRPCFrame(compressed: flag == 1, payload: payload)
    }

    /// Writes `payload` with its prefix into `buffer`.
    public static func write(payload: UnsafeRawBufferPointer, compressed: Bool, into buffer: inout ByteBuffer) {
        buffer.reserveCapacity(minimumWritableBytes: prefixBytes + payload.count)
        buffer.writeInteger(compressed ? UInt8(1) : UInt8(0))
        buffer.writeInteger(UInt32(payload.count))
        buffer.writeBytes(payload)
    }
}

/// Reassembles gRPC frames from DATA chunks of one stream; memory is bounded by the limit.
public struct GRPCMessageDeframer: Sendable {
    /// Largest accepted message, in bytes.
    public let maxMessageBytes: Int
    private var buffer: ByteBuffer

    /// Creates a deframer with an upper bound on message size.
    public init(maxMessageBytes: Int, allocator: ByteBufferAllocator = ByteBufferAllocator()) {
        precondition(maxMessageBytes > 0, "maxMessageBytes must be positive")
        self.maxMessageBytes = maxMessageBytes
        self.buffer = allocator.buffer(capacity: 0)
    }

    /// Appends received bytes.
    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if buffer.readableBytes == 0 { buffer.clear() }
        buffer.writeBytes(bytes)
    }

    /// Appends a received buffer.
    public mutating func append(_ bytes: ByteBuffer) {
        if buffer.readableBytes == 0 { buffer.clear() }
        var copy = bytes
        buffer.writeBuffer(&copy)
    }

    /// The next complete frame, if buffered.
    public mutating func next() throws(GRPCStatus) -> GRPCFrame? {
        let frame = try GRPCFraming.parse(&buffer, maxMessageBytes: maxMessageBytes)
        if buffer.readableBytes == 0, buffer.readerIndex > 0 { buffer.clear() }
        return frame
    }

    /// Bytes of an incomplete frame left over: non-zero at end of stream means truncation.
    public var bufferedBytes: Int { buffer.readableBytes }
}

/// `ByteToMessageDecoder` for a byte stream of gRPC frames (the layered-codec form of the framing).
public struct GRPCMessageDecoder: ByteToMessageDecoder {
    /// Decoded frames.
    public typealias InboundOut = GRPCFrame
    /// Largest accepted message, in bytes.
    public let maxMessageBytes: Int

    /// Creates a decoder.
    public init(maxMessageBytes: Int = 4 << 20) { self.maxMessageBytes = maxMessageBytes }

    /// Decodes one frame if complete.
    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try GRPCFraming.parse(&buffer, maxMessageBytes: maxMessageBytes) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    /// Decodes what is left at end of stream; a partial frame is an error.
    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if buffer.readableBytes > 0 {
            throw GRPCStatus(.internal, "stream ended inside a gRPC message (\(buffer.readableBytes) bytes left)")
        }
        return .needMoreData
    }
}

/// `MessageToByteEncoder` writing gRPC frames.
public struct GRPCMessageEncoder: MessageToByteEncoder {
    /// Frames to encode.
    public typealias OutboundIn = GRPCFrame

    /// Creates an encoder.
    public init() {}

    /// Writes the prefix and the payload.
    public func encode(data: GRPCFrame, out: inout ByteBuffer) throws {
        data.payload.withUnsafeReadableBytes { GRPCFraming.write(payload: $0, compressed: data.compressed, into: &out) }
    }
}
