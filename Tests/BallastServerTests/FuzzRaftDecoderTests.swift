import BallastFuzzSupport
import BallastRaft
@testable import BallastServer
import Foundation
import NIOCore
import NIOEmbedded
import Testing

/// Seeded fuzzing of what arrives on the Raft port and what the node reads from its members
/// file (issue 8 §3): every input ends in a value or a thrown error, never a crash, a hang or
/// an allocation beyond the frame limit. `BALLAST_FUZZ_ITERATIONS=N` changes the input count.
@Suite("fuzz: Raft frames, Raft messages, member tables")
struct FuzzRaftDecoderTests {
    let codec = RaftMessageCodec()

    @Test("Raft messages: mutated encodings of every kind and noise decode or throw RaftWireError")
    func raftMessages() async throws {
        let valid = everyMessageKind.map { codec.encode($0) }
        await forEachFuzzCase(seed: 0xFA57_0001, count: fuzzIterations(10_000)) { random, caseSeed in
            let input = random.below(8) == 0 ? random.bytes(random.below(300)) : FuzzMutation.mutate(valid[random.below(valid.count)], &random)
            do {
                let message = try codec.decode(input)
                // What decodes must encode again without trapping (the node may forward it).
                _ = codec.encode(message)
            } catch {
                #expect(!"\(error)".isEmpty, "case \(caseSeed)")
            }
        }
    }

    @Test("Raft frames: mutated frame streams in random splits give payloads or an error, buffering at most the input")
    func raftFrames() async throws {
        let limit = 1 << 20
        await forEachFuzzCase(seed: 0xFA57_0002, count: fuzzIterations(5_000)) { random, caseSeed in
            var stream = ByteBuffer()
            for _ in 0 ... random.below(3) {
                let message = everyMessageKind[random.below(everyMessageKind.count)]
                RaftFrameEncoder.write(payload: codec.encode(message), kind: .message, to: &stream)
            }
            let input = FuzzMutation.mutate(Array(stream.readableBytesView), &random)
            let decoder = RaftFrameDecoder(maxPayloadBytes: limit)
            var buffer = ByteBuffer()
            var offset = 0
            feeding: while offset < input.count {
                let step = 1 + random.below(input.count - offset)
                buffer.writeBytes(input[offset ..< offset + step])
                offset += step
                do {
                    while let (kind, payload) = try decoder.nextFrame(&buffer) {
                        #expect(payload.readableBytes <= limit, "case \(caseSeed)")
                        if kind == .message { _ = try? codec.decode(Array(payload.readableBytesView)) }
                    }
                } catch {
                    break feeding
                }
            }
            #expect(buffer.readableBytes <= input.count, "case \(caseSeed)")
        }
    }

    @Test("the Raft frame decoder in a channel pipeline closes on garbage instead of trapping")
    func raftFramesInChannel() async throws {
        await forEachFuzzCase(seed: 0xFA57_0003, count: fuzzIterations(500)) { random, caseSeed in
            let channel = EmbeddedChannel(handler: ByteToMessageHandler(RaftFrameDecoder(maxPayloadBytes: 1 << 16)))
            defer { _ = try? channel.finish(acceptAlreadyClosed: true) }
            var stream = ByteBuffer()
            RaftFrameEncoder.write(payload: codec.encode(everyMessageKind[random.below(everyMessageKind.count)]), to: &stream)
            let input = random.below(3) == 0 ? random.bytes(random.below(2_000)) : FuzzMutation.mutate(Array(stream.readableBytesView), &random)
            do {
                try channel.writeInbound(ByteBuffer(bytes: input))
                while let frame = try channel.readInbound(as: (RaftFrame.Kind, ByteBuffer).self) {
                    #expect(frame.1.readableBytes <= 1 << 16, "case \(caseSeed)")
                }
            } catch {
                // A decoding error: the transport closes the connection (RaftInboundHandler).
            }
        }
    }

    @Test("member tables: mutated tables decode or throw; a mutated members file is refused with a clear error")
    func memberTables() async throws {
        var members: [UInt64: NodeInfo] = [:]
        for id in UInt64(1) ... 4 {
            members[id] = NodeInfo(id: id, raft: "127.0.0.1:70\(id)1", api: "127.0.0.1:70\(id)2", admin: "127.0.0.1:70\(id)3")
        }
        let book = AddressBook(initialVoters: [1, 2, 3], members: members, removed: [9])
        let encoded = MemberTableCodec.encodeBook(book)
        let list = MemberTableCodec.encodeList(Array(book.members.values))
        await forEachFuzzCase(seed: 0xFA57_0004, count: fuzzIterations(5_000)) { random, _ in
            _ = try? MemberTableCodec.decodeBook(FuzzMutation.mutate(encoded, &random))
            _ = try? MemberTableCodec.decodeList(FuzzMutation.mutate(list, &random))
        }
        let directory = NSTemporaryDirectory() + "ballast-fuzz-members-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = MemberTableFile(dataDirectory: directory)
        try file.save(book)
        let valid = try [UInt8](Data(contentsOf: URL(fileURLWithPath: directory + "/members")))
        var refused = 0
        await forEachFuzzCase(seed: 0xFA57_0005, count: fuzzIterations(300)) { random, caseSeed in
            let mutated = FuzzMutation.mutate(valid, &random)
            try? Data(mutated).write(to: URL(fileURLWithPath: directory + "/members"))
            do {
                let loaded = try file.load()
                #expect(mutated == valid || loaded == nil || loaded == book, "case \(caseSeed): a damaged file must not load as another table")
            } catch {
                refused += 1
                #expect("\(error)".contains("members"), "case \(caseSeed): \(error)")
            }
        }
        #expect(refused > 0)
    }
}
