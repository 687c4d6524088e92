import BallastRaft

/// The binary encoding of one Raft `Message` (the payload of a transport frame), big-endian.
/// Layout in docs/raft.md, section "Wire format". Decoding checks every length and value and
/// never trusts a count from the peer beyond the limits below.
public struct RaftMessageCodec: Sendable {
    /// Most entries one AppendEntries may carry.
    public var maxEntries: Int = 65_536
    /// Most payload bytes of one entry or one snapshot chunk, by default: a follower refuses an
    /// AppendEntries with a larger entry, so a leader must never propose one (`BallastNode.submit`).
    public static let defaultMaxBlobBytes = 16 << 20
    /// Most payload bytes of one entry or one snapshot chunk.
    public var maxBlobBytes: Int = Self.defaultMaxBlobBytes
    /// Most members one membership may list.
    public var maxMembers: Int = 1024

    /// Creates a codec with the default limits.
    public init() {}

    enum Tag: UInt8 {
        case preVote = 1, preVoteResponse, vote, voteResponse, append, appendResponse
        case heartbeat, heartbeatResponse, installSnapshot, installSnapshotResponse, timeoutNow
    }

    /// Encodes `message`.
    public func encode(_ message: Message) -> [UInt8] {
        var writer = ByteWriter(reservingCapacity: 64 + estimatedBodyBytes(message.body))
        writer.write(message.from.rawValue)
        writer.write(message.to.rawValue)
        writer.write(message.term.rawValue)
        encodeBody(message.body, into: &writer)
        return writer.bytes
    }

    /// Decodes a message; throws on anything truncated, malformed, oversized or followed by extra bytes.
    public func decode(_ bytes: [UInt8]) throws(RaftWireError) -> Message {
        var reader = ByteReader(bytes)
        let from = try readNodeID(&reader, field: "from")
        let to = try readNodeID(&reader, field: "to")
        let term = Term(try reader.readUInt64())
        let body = try decodeBody(&reader)
        try reader.expectEnd()
        return Message(from: from, to: to, term: term, body: body)
    }

    private func estimatedBodyBytes(_ body: MessageBody) -> Int {
        switch body {
        case .append(_, _, let entries, _): entries.reduce(0) { $0 + $1.data.count + 21 }
        case .installSnapshot(let chunk): chunk.data.count + 64
        default: 32
        }
    }

    private func encodeBody(_ body: MessageBody, into writer: inout ByteWriter) {
        switch body {
        case .preVote(let lastIndex, let lastTerm):
            writer.write(Tag.preVote.rawValue); writer.write(lastIndex.rawValue); writer.write(lastTerm.rawValue)
        case .preVoteResponse(let granted):
            writer.write(Tag.preVoteResponse.rawValue); writer.write(granted)
        case .vote(let lastIndex, let lastTerm, let transfer):
            writer.write(Tag.vote.rawValue); writer.write(lastIndex.rawValue); writer.write(lastTerm.rawValue)
            writer.write(transfer)
        case .voteResponse(let granted):
            writer.write(Tag.voteResponse.rawValue); writer.write(granted)
        case .append(let previousIndex, let previousTerm, let entries, let commit):
            writer.write(Tag.append.rawValue); writer.write(previousIndex.rawValue); writer.write(previousTerm.rawValue)
            writer.write(commit.rawValue); writer.write(UInt32(entries.count))
            for entry in entries { encodeEntry(entry, into: &writer) }
        case .appendResponse(let response):
            writer.write(Tag.appendResponse.rawValue); writer.write(response.success); writer.write(response.index.rawValue)
            writer.write(response.conflictTerm != nil); writer.write(response.conflictTerm?.rawValue ?? 0)
            writer.write(response.conflictIndex.rawValue)
        case .heartbeat(let commit, let context):
            writer.write(Tag.heartbeat.rawValue); writer.write(commit.rawValue); writer.write(context)
        case .heartbeatResponse(let context):
            writer.write(Tag.heartbeatResponse.rawValue); writer.write(context)
        case .installSnapshot(let chunk):
            writer.write(Tag.installSnapshot.rawValue); encodeMetadata(chunk.metadata, into: &writer)
            writer.write(chunk.offset); writer.write(chunk.totalBytes); writer.write(chunk.done); writer.writeBlob(chunk.data)
        case .installSnapshotResponse(let index, let nextOffset, let done, let rejected):
            writer.write(Tag.installSnapshotResponse.rawValue); writer.write(index.rawValue); writer.write(nextOffset)
            writer.write(done); writer.write(rejected)
        case .timeoutNow:
            writer.write(Tag.timeoutNow.rawValue)
        }
    }

    private func encodeEntry(_ entry: Entry, into writer: inout ByteWriter) {
        writer.write(entry.term.rawValue)
        writer.write(entry.index.rawValue)
        writer.write(entry.kind.rawValue)
        writer.writeBlob(entry.data)
    }

    private func encodeMetadata(_ metadata: SnapshotMetadata, into writer: inout ByteWriter) {
        writer.write(metadata.index.rawValue)
        writer.write(metadata.term.rawValue)
        for list in [metadata.membership.voters, metadata.membership.learners] {
            writer.write(UInt32(list.count))
            for id in list { writer.write(id.rawValue) }
        }
    }
}
