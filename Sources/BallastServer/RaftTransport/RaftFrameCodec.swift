import BallastStorage
import NIOCore

/// The frame around each Raft message on a TCP connection (docs/raft.md, "Wire format"):
/// `version u8 | kind u8 | payload length u32 | CRC32C of payload u32 | payload`, big-endian.
public enum RaftFrame {
    /// What a frame carries.
    public enum Kind: UInt8, Sendable {
        /// A Raft message (`RaftMessageCodec`).
        case message = 0
        /// The first frame of a connection: who is calling and where its ports are (`NodeInfo`).
        case hello = 1
        /// Sent after the hello: the caller's member table (`MemberTableCodec.encodeList`), so a
        /// node that restored from a snapshot or just joined learns where every member is.
        case members = 2
    }

    /// The only frame version this node speaks.
    public static let version: UInt8 = 1
    /// Bytes before the payload.
    public static let headerBytes = 10
    /// Largest payload accepted (an AppendEntries batch or a snapshot chunk with headroom).
    public static let defaultMaxPayloadBytes = 32 << 20
}

/// Splits the byte stream into frame payloads, checking version, size and checksum. Any
/// violation is an error: the connection is closed, since a byte stream cannot resynchronize.
public struct RaftFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = (RaftFrame.Kind, ByteBuffer)
    private let maxPayloadBytes: Int

    /// Creates a decoder that refuses payloads above `maxPayloadBytes`.
    public init(maxPayloadBytes: Int = RaftFrame.defaultMaxPayloadBytes) {
        self.maxPayloadBytes = maxPayloadBytes
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try nextFrame(&buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        let state = try decode(context: context, buffer: &buffer)
        if state == .needMoreData, buffer.readableBytes > 0 {
            throw RaftWireError.truncated(needed: 1, offset: buffer.readerIndex)
        }
        return state
    }

    /// Takes one whole frame off the front of `buffer`, or nil if it is not all there yet.
    func nextFrame(_ buffer: inout ByteBuffer) throws(RaftWireError) -> (RaftFrame.Kind, ByteBuffer)? {
        guard let version: UInt8 = buffer.getInteger(at: buffer.readerIndex) else { return nil }
        guard version == RaftFrame.version else { throw .unsupportedVersion(version) }
        guard buffer.readableBytes >= RaftFrame.headerBytes,
              let flags: UInt8 = buffer.getInteger(at: buffer.readerIndex + 1),
              let length: UInt32 = buffer.getInteger(at: buffer.readerIndex + 2),
              let checksum: UInt32 = buffer.getInteger(at: buffer.readerIndex + 6)
        else { return nil }
        guard let kind = RaftFrame.Kind(rawValue: flags) else { throw .invalidValue(field: "frame kind", offset: buffer.readerIndex + 1) }
        guard length <= maxPayloadBytes else { throw .tooLarge(field: "frame", bytes: Int(length), limit: maxPayloadBytes) }
        guard buffer.readableBytes >= RaftFrame.headerBytes + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: RaftFrame.headerBytes)
        guard let payload = buffer.readSlice(length: Int(length)) else { return nil }
        let actual = payload.withUnsafeReadableBytes { CRC32C.checksum($0) }
        guard actual == checksum else { throw .checksumMismatch(expected: checksum, actual: actual) }
        return (kind, payload)
    }
}

/// Writes payloads with their frame header.
public enum RaftFrameEncoder {
    /// Appends one frame carrying `payload` to `out`.
    public static func write(payload: [UInt8], kind: RaftFrame.Kind = .message, to out: inout ByteBuffer) {
        out.reserveCapacity(minimumWritableBytes: RaftFrame.headerBytes + payload.count)
        out.writeInteger(RaftFrame.version)
        out.writeInteger(kind.rawValue)
        out.writeInteger(UInt32(payload.count))
        out.writeInteger(payload.withUnsafeBytes { CRC32C.checksum($0) })
        out.writeBytes(payload)
    }
}
