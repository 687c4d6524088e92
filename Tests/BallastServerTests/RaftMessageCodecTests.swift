import BallastRaft
@testable import BallastServer
import Testing

/// One message of every kind, with awkward values (zero, max, empty and large payloads).
let everyMessageKind: [Message] = {
    let membership = Membership(voters: [NodeID(1), NodeID(2), NodeID(3)], learners: [NodeID(9)])
    let metadata = SnapshotMetadata(index: LogIndex(500), term: Term(7), membership: membership)
    let entries = [
        Entry(term: Term(3), index: LogIndex(11), kind: .noop),
        Entry(term: Term(3), index: LogIndex(12), kind: .normal, data: Array(repeating: 0xFE, count: 300)),
        Entry(term: Term(4), index: LogIndex(13), kind: .configChange, data: ConfigChange.addLearner(NodeID(9)).encoded),
    ]
    let bodies: [MessageBody] = [
        .preVote(lastLogIndex: LogIndex(10), lastLogTerm: Term(2)),
        .preVoteResponse(granted: true),
        .vote(lastLogIndex: LogIndex(.max), lastLogTerm: Term(.max), leadershipTransfer: true),
        .voteResponse(granted: false),
        .append(previousIndex: LogIndex(10), previousTerm: Term(2), entries: entries, commit: LogIndex(9)),
        .append(previousIndex: .zero, previousTerm: .zero, entries: [], commit: .zero),
        .appendResponse(AppendResponse(success: true, index: LogIndex(13))),
        .appendResponse(AppendResponse(success: false, index: LogIndex(40), conflictTerm: Term(5), conflictIndex: LogIndex(33))),
        .heartbeat(commit: LogIndex(12), readContext: 77),
        .heartbeatResponse(readContext: .max),
        .installSnapshot(SnapshotChunk(metadata: metadata, offset: 4, totalBytes: 10, data: [1, 2, 3], done: false)),
        .installSnapshotResponse(snapshotIndex: LogIndex(500), nextOffset: 7, done: true, rejected: false),
        .timeoutNow,
    ]
    return bodies.map { Message(from: NodeID(1), to: NodeID(2), term: Term(4), body: $0) }
}()

@Suite("Raft message codec")
struct RaftMessageCodecTests {
    let codec = RaftMessageCodec()

    @Test("every message kind survives an encode/decode round trip", arguments: everyMessageKind)
    func roundTrip(message: Message) throws {
        #expect(try codec.decode(codec.encode(message)) == message)
    }

    @Test("every truncation of every message is rejected, never misread", arguments: everyMessageKind)
    func truncations(message: Message) {
        let bytes = codec.encode(message)
        for length in 0 ..< bytes.count {
            #expect(throws: RaftWireError.self) { try codec.decode(Array(bytes[..<length])) }
        }
    }

    @Test("a trailing byte is rejected")
    func trailingBytes() {
        #expect(throws: RaftWireError.trailingBytes(count: 1)) { try codec.decode(codec.encode(everyMessageKind[0]) + [0]) }
    }

    @Test("an unknown message type, a bad boolean and node id 0 name the offending field")
    func invalidValues() {
        var bytes = codec.encode(Message(from: NodeID(1), to: NodeID(2), term: Term(1), body: .voteResponse(granted: true)))
        bytes[24] = 99
        #expect(throws: RaftWireError.invalidValue(field: "message type", offset: 24)) { try codec.decode(bytes) }
        bytes[24] = 4
        bytes[25] = 2
        #expect(throws: RaftWireError.invalidValue(field: "granted", offset: 25)) { try codec.decode(bytes) }
        let zeroFrom = [UInt8](repeating: 0, count: 8) + bytes[8...]
        #expect(throws: RaftWireError.invalidValue(field: "from (node id 0)", offset: 0)) { try codec.decode(Array(zeroFrom)) }
    }

    @Test("a huge entry count or blob length from a peer is refused before allocating")
    func oversizedCounts() {
        var writer = ByteWriter()
        for value in [UInt64(1), 2, 3] { writer.write(value) }
        writer.write(RaftMessageCodec.Tag.append.rawValue)
        for value in [UInt64(0), 0, 0] { writer.write(value) }
        writer.write(UInt32.max)
        #expect(throws: RaftWireError.tooLarge(field: "entries", bytes: Int(UInt32.max), limit: codec.maxEntries)) {
            try codec.decode(writer.bytes)
        }
    }

    @Test("entries that are not contiguous after previousIndex are refused")
    func nonContiguousEntries() {
        let entries = [Entry(term: Term(1), index: LogIndex(5))]
        let message = Message(from: NodeID(1), to: NodeID(2), term: Term(1),
                              body: .append(previousIndex: LogIndex(1), previousTerm: Term(1), entries: entries, commit: .zero))
        #expect(throws: RaftWireError.self) { try codec.decode(codec.encode(message)) }
    }

    @Test("seeded random bytes and random corruptions never crash the decoder")
    func randomInput() {
        var random = DeterministicRandom(seed: 0xBA11A57)
        for round in 0 ..< 20_000 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = (0 ..< Int(random.next() % 200)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            } else {
                bytes = codec.encode(everyMessageKind[Int(random.next() % UInt64(everyMessageKind.count))])
                let position = Int(random.next() % UInt64(bytes.count))
                bytes[position] ^= UInt8(truncatingIfNeeded: random.next() | 1)
            }
            _ = try? codec.decode(bytes)
        }
    }
}
