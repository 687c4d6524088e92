import BallastWire
import Foundation
import NIOCore
import NIOEmbedded
import NIOTestUtils
import Testing

/// The gRPC length-prefix codec, tested the swift-nio way: every split, truncations, corruptions.
@Suite("gRPC message framing")
struct GRPCFramingTests {
    static func frameBytes(_ payload: [UInt8], compressed: Bool = false) -> ByteBuffer {
        var buffer = ByteBuffer()
        payload.withUnsafeBytes { GRPCFraming.write(payload: $0, compressed: compressed, into: &buffer) }
        return buffer
    }

    static func frame(_ payload: [UInt8], compressed: Bool = false) -> GRPCFrame {
        GRPCFrame(compressed: compressed, payload: ByteBuffer(bytes: payload))
    }

    @Test("the decoder yields the same frames for every split of the input (ByteToMessageDecoderVerifier)")
    func everySplit() throws {
        let payloads: [[UInt8]] = [[], [1], Array(0..<200), [9, 9, 9]]
        var pairs: [(ByteBuffer, [GRPCFrame])] = payloads.map { (Self.frameBytes($0), [Self.frame($0)]) }
        var all = ByteBuffer()
        for payload in payloads { var one = Self.frameBytes(payload, compressed: true); all.writeBuffer(&one) }
        pairs.append((all, payloads.map { Self.frame($0, compressed: true) }))
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) { GRPCMessageDecoder(maxMessageBytes: 1024) }
    }

    @Test("the stream deframer yields the same frames for every two-way and byte-by-byte split")
    func deframerSplits() throws {
        var input = Self.frameBytes(Array(0..<50))
        var second = Self.frameBytes([7, 7], compressed: true)
        input.writeBuffer(&second)
        let bytes = Array(input.readableBytesView)
        for cut in 0...bytes.count {
            var deframer = GRPCMessageDeframer(maxMessageBytes: 100)
            var frames: [GRPCFrame] = []
            for part in [bytes[..<cut], bytes[cut...]] {
                Array(part).withUnsafeBytes { deframer.append($0) }
                while let frame = try deframer.next() { frames.append(frame) }
            }
            #expect(frames == [Self.frame(Array(0..<50)), Self.frame([7, 7], compressed: true)], "split at \(cut)")
            #expect(deframer.bufferedBytes == 0)
        }
        var deframer = GRPCMessageDeframer(maxMessageBytes: 100)
        var count = 0
        for byte in bytes {
            [byte].withUnsafeBytes { deframer.append($0) }
            while try deframer.next() != nil { count += 1 }
        }
        #expect(count == 2)
    }

    @Test("an announced length over the limit fails at once with RESOURCE_EXHAUSTED, before the payload arrives")
    func oversized() {
        var deframer = GRPCMessageDeframer(maxMessageBytes: 1000)
        ([0, 0, 0, 0x03, 0xE9] as [UInt8]).withUnsafeBytes { deframer.append($0) }  // 1001 bytes announced
        #expect(throws: GRPCStatus(.resourceExhausted, "message of 1001 bytes exceeds the limit of 1000 bytes")) {
            _ = try deframer.next()
        }
    }

    @Test("an invalid flag byte is INTERNAL; a stream ending mid-message is reported by decodeLast")
    func corruptedAndTruncated() throws {
        var deframer = GRPCMessageDeframer(maxMessageBytes: 1000)
        ([2, 0, 0, 0, 1, 0] as [UInt8]).withUnsafeBytes { deframer.append($0) }
        #expect(throws: GRPCStatus.self) { _ = try deframer.next() }

        let channel = EmbeddedChannel(handler: ByteToMessageHandler(GRPCMessageDecoder(maxMessageBytes: 100)))
        var truncated = Self.frameBytes(Array(0..<10))
        truncated.moveWriterIndex(to: truncated.writerIndex - 3)
        try channel.writeInbound(truncated)
        #expect(try channel.readInbound(as: GRPCFrame.self) == nil)
        #expect(throws: GRPCStatus.self) { _ = try channel.finish() }
    }

    @Test("the encoder and decoder round-trip through an EmbeddedChannel")
    func roundTrip() throws {
        let channel = EmbeddedChannel(handlers: [MessageToByteHandler(GRPCMessageEncoder()),
                                                 ByteToMessageHandler(GRPCMessageDecoder())])
        try channel.writeOutbound(Self.frame([1, 2, 3], compressed: true))
        let wire = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(Array(wire.readableBytesView) == [1, 0, 0, 0, 3, 1, 2, 3])
        try channel.writeInbound(wire)
        #expect(try channel.readInbound(as: GRPCFrame.self) == Self.frame([1, 2, 3], compressed: true))
        #expect(try channel.finish().isClean)
    }

    @Test("random bytes never crash the decoders and memory stays within the limit (seeded)")
    func randomBytes() throws {
        // Reproduce a failure with BALLAST_TEST_SEED=<seed printed in the failure>.
        let seed = ProcessInfo.processInfo.environment["BALLAST_TEST_SEED"].flatMap { UInt64($0) }
            ?? UInt64.random(in: 1...UInt64.max)
        var generator = SplitMix64(seed: seed)
        for round in 0..<2_000 {
            let length = Int(generator.next() % 64)
            var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            if round % 3 == 0, !bytes.isEmpty { bytes[0] = UInt8(generator.next() % 2) }
            var deframer = GRPCMessageDeframer(maxMessageBytes: 32)
            bytes.withUnsafeBytes { deframer.append($0) }
            do {
                while let frame = try deframer.next() {
                    #expect(frame.payload.readableBytes <= 32, "seed \(seed) round \(round)")
                }
            } catch {
                #expect([.internal, .resourceExhausted].contains(error.code), "seed \(seed) round \(round)")
            }
            #expect(deframer.bufferedBytes <= 64, "seed \(seed) round \(round)")
            _ = try? LZ4Frame.decompress(bytes, maxOutputBytes: 1 << 16)
            _ = try? LZ4EventBatchCodec.decode(LZ4EventBatch(eventCount: 1, firstEventID: 1,
                                                             uncompressedBytes: 0, lz4Frame: [0x04, 0x22, 0x4D, 0x18] + bytes))
        }
    }
}

@Suite("gRPC header values")
struct GRPCHeaderValueTests {
    @Test("grpc-timeout parses every unit, rejects malformed values and formats within 8 digits")
    func timeout() {
        #expect(GRPCTimeout.parseNanoseconds("100m") == 100_000_000)
        #expect(GRPCTimeout.parseNanoseconds("2S") == 2_000_000_000)
        #expect(GRPCTimeout.parseNanoseconds("1H") == 3_600_000_000_000)
        #expect(GRPCTimeout.parseNanoseconds("7u") == 7_000)
        #expect(GRPCTimeout.parseNanoseconds("5n") == 5)
        #expect(GRPCTimeout.parseNanoseconds("3M") == 180_000_000_000)
        for bad in ["", "m", "12", "123456789S", "1x", "-1S", "1.5S"] {
            #expect(GRPCTimeout.parseNanoseconds(bad) == nil, "\(bad)")
        }
        #expect(GRPCTimeout.format(nanoseconds: 250_000_000) == "250000u")
        #expect(GRPCTimeout.format(nanoseconds: 3_600_000_000_000) == "3600000m")
        #expect(GRPCTimeout.parseNanoseconds(GRPCTimeout.format(nanoseconds: 123_456_789_012)) ?? 0 >= 123_456_789_012)
    }

    @Test("grpc-message percent-encoding round-trips non-ASCII and percent signs")
    func percentEncoding() {
        let message = "no such run ü 100%\n"
        let encoded = GRPCMessageEncoding.percentEncode(message)
        #expect(encoded == "no such run %C3%BC 100%25%0A")
        #expect(GRPCMessageEncoding.percentDecode(encoded) == message)
        #expect(GRPCMessageEncoding.percentDecode("bad %ZZ escape %") == "bad %ZZ escape %")
    }
}
