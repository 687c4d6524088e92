import BallastRaft

extension RaftMessageCodec {
    func decodeBody(_ reader: inout ByteReader) throws(RaftWireError) -> MessageBody {
        let tagOffset = reader.offset
        guard let tag = Tag(rawValue: try reader.readUInt8()) else { throw .invalidValue(field: "message type", offset: tagOffset) }
        switch tag {
        case .preVote:
            return .preVote(lastLogIndex: LogIndex(try reader.readUInt64()), lastLogTerm: Term(try reader.readUInt64()))
        case .preVoteResponse:
            return .preVoteResponse(granted: try reader.readBool(field: "granted"))
        case .vote:
            return .vote(lastLogIndex: LogIndex(try reader.readUInt64()), lastLogTerm: Term(try reader.readUInt64()),
                         leadershipTransfer: try reader.readBool(field: "leadershipTransfer"))
        case .voteResponse:
            return .voteResponse(granted: try reader.readBool(field: "granted"))
        case .append:
            return try decodeAppend(&reader)
        case .appendResponse:
            return .appendResponse(try decodeAppendResponse(&reader))
        case .heartbeat:
            return .heartbeat(commit: LogIndex(try reader.readUInt64()), readContext: try reader.readUInt64())
        case .heartbeatResponse:
            return .heartbeatResponse(readContext: try reader.readUInt64())
        case .installSnapshot:
            return .installSnapshot(try decodeChunk(&reader))
        case .installSnapshotResponse:
            return .installSnapshotResponse(
                snapshotIndex: LogIndex(try reader.readUInt64()), nextOffset: try reader.readUInt64(),
                done: try reader.readBool(field: "done"), rejected: try reader.readBool(field: "rejected"))
        case .timeoutNow:
            return .timeoutNow
        }
    }

    private func decodeAppend(_ reader: inout ByteReader) throws(RaftWireError) -> MessageBody {
        let previousIndex = LogIndex(try reader.readUInt64())
        let previousTerm = Term(try reader.readUInt64())
        let commit = LogIndex(try reader.readUInt64())
        let count = Int(try reader.readUInt32())
        guard count <= maxEntries else { throw .tooLarge(field: "entries", bytes: count, limit: maxEntries) }
        var entries: [Entry] = []
        entries.reserveCapacity(min(count, reader.remaining / 21))
        var expectedIndex = previousIndex.next
        for _ in 0 ..< count {
            let at = reader.offset
            let term = Term(try reader.readUInt64())
            let index = LogIndex(try reader.readUInt64())
            guard index == expectedIndex else { throw .invalidValue(field: "entry index (not contiguous)", offset: at + 8) }
            let kindOffset = reader.offset
            guard let kind = EntryKind(rawValue: try reader.readUInt8()) else { throw .invalidValue(field: "entry kind", offset: kindOffset) }
            entries.append(Entry(term: term, index: index, kind: kind, data: try reader.readBlob(field: "entry data", limit: maxBlobBytes)))
            expectedIndex = index.next
        }
        return .append(previousIndex: previousIndex, previousTerm: previousTerm, entries: entries, commit: commit)
    }

    private func decodeAppendResponse(_ reader: inout ByteReader) throws(RaftWireError) -> AppendResponse {
        let success = try reader.readBool(field: "success")
        let index = LogIndex(try reader.readUInt64())
        let hasConflictTerm = try reader.readBool(field: "hasConflictTerm")
        let conflictTerm = Term(try reader.readUInt64())
        let conflictIndex = LogIndex(try reader.readUInt64())
        return AppendResponse(success: success, index: index, conflictTerm: hasConflictTerm ? conflictTerm : nil,
                              conflictIndex: conflictIndex)
    }

    private func decodeChunk(_ reader: inout ByteReader) throws(RaftWireError) -> SnapshotChunk {
        let metadata = try decodeMetadata(&reader)
        let offset = try reader.readUInt64()
        let totalBytes = try reader.readUInt64()
        let done = try reader.readBool(field: "done")
        let data = try reader.readBlob(field: "snapshot chunk", limit: maxBlobBytes)
        guard offset <= totalBytes, UInt64(data.count) <= totalBytes - offset else {
            throw .invalidValue(field: "snapshot chunk bounds", offset: reader.offset)
        }
        return SnapshotChunk(metadata: metadata, offset: offset, totalBytes: totalBytes, data: data, done: done)
    }

    private func decodeMetadata(_ reader: inout ByteReader) throws(RaftWireError) -> SnapshotMetadata {
        let index = LogIndex(try reader.readUInt64())
        let term = Term(try reader.readUInt64())
        let voters = try readNodeList(&reader, field: "voters")
        let learners = try readNodeList(&reader, field: "learners")
        return SnapshotMetadata(index: index, term: term, membership: Membership(voters: voters, learners: learners))
    }

    private func readNodeList(_ reader: inout ByteReader, field: String) throws(RaftWireError) -> [NodeID] {
        let count = Int(try reader.readUInt32())
        guard count <= maxMembers else { throw .tooLarge(field: field, bytes: count, limit: maxMembers) }
        var ids: [NodeID] = []
        for _ in 0 ..< count { ids.append(try readNodeID(&reader, field: field)) }
        return ids
    }

    func readNodeID(_ reader: inout ByteReader, field: String) throws(RaftWireError) -> NodeID {
        let at = reader.offset
        let raw = try reader.readUInt64()
        guard raw != 0 else { throw .invalidValue(field: "\(field) (node id 0)", offset: at) }
        return NodeID(raw)
    }
}
