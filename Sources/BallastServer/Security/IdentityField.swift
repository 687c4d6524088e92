/// Rewrites the identity field of a serialized request in place of decoding and re-encoding it.
///
/// On a cleartext node every call that carries an identity has it rewritten to mark it
/// unverified (`Authorizer`). Decoding the whole request and encoding it again for that cost a
/// busy leader about 3 % of its CPU (a workflow-task completion carries every command and its
/// payloads). Protobuf merges a message that appears twice: for a singular string the last
/// value wins, and a message field that appears again is merged into the earlier one. So the
/// new value is appended to the bytes as one more occurrence of the field, and the request
/// decodes exactly as if its identity had been set and the whole request re-encoded
/// (`IdentityFieldTests` checks this against swift-protobuf for every method).
///
/// Only the top-level fields (and, for a nested identity, the fields of the messages on its
/// path) are walked. Anything this reader does not take for a well-formed message (a bad varint
/// or length, a group, field number 0, an identity that is not valid UTF-8) gives nil, and the
/// caller falls back to the full decode.
struct IdentityField: Sendable, Equatable {
    /// Field numbers from the request down to the string field: `[9]` for
    /// `StartWorkflowRequest.identity`, `[1, 9]` for `SignalWithStartWorkflowRequest.start.identity`.
    let path: [Int]

    init(_ path: Int...) {
        precondition(!path.isEmpty && path.allSatisfy { $0 > 0 && $0 < 1 << 29 }, "field numbers are 1 through 2^29 - 1")
        self.path = path
    }

    /// The request with its identity replaced by `transform(claimed)`, where `claimed` is the
    /// identity the request carries ("" if none); nil when the bytes are not walkable.
    func rewrite(_ request: [UInt8], _ transform: (String) -> String) -> [UInt8]? {
        guard let claimedBytes = request.withUnsafeBytes({ Self.lastValue(in: $0, path: path[...]) }) else { return nil }
        guard let claimed = String(validating: claimedBytes ?? [], as: UTF8.self) else { return nil }
        var output = request
        output.reserveCapacity(request.count + 16 + 6 * path.count)
        Self.appendField(path: path[...], value: Array(transform(claimed).utf8), to: &output)
        return output
    }

    /// The last value of the string at `path` in `message` (nil inside when absent); nil when
    /// the message cannot be walked.
    private static func lastValue(in message: UnsafeRawBufferPointer, path: ArraySlice<Int>) -> [UInt8]?? {
        var found: [UInt8]?
        var reader = Reader(bytes: message)
        while !reader.atEnd {
            guard let tag = reader.varint(), tag >> 3 > 0, tag >> 3 < 1 << 29 else { return nil }
            let number = Int(tag >> 3)
            switch tag & 7 {
            case 0:
                guard reader.varint() != nil else { return nil }
            case 1:
                guard reader.skip(8) else { return nil }
            case 5:
                guard reader.skip(4) else { return nil }
            case 2:
                guard let length = reader.varint(), let field = reader.take(length) else { return nil }
                guard number == path.first else { continue }
                if path.count == 1 {
                    found = Array(field)
                } else {
                    guard let inner = lastValue(in: field, path: path.dropFirst()) else { return nil }
                    if let inner { found = inner }
                }
            default:
                return nil  // groups (3, 4) and the undefined wire types 6 and 7
            }
            if number == path.first, tag & 7 != 2 { return nil }  // the identity or its parent with the wrong wire type
        }
        return .some(found)
    }

    /// Appends one occurrence of the field at `path` holding `value`.
    private static func appendField(path: ArraySlice<Int>, value: [UInt8], to output: inout [UInt8]) {
        guard let number = path.first else { return output.append(contentsOf: value) }
        var inner: [UInt8] = []
        appendField(path: path.dropFirst(), value: value, to: &inner)
        appendVarint(UInt64(number) << 3 | 2, to: &output)
        appendVarint(UInt64(inner.count), to: &output)
        output.append(contentsOf: inner)
    }

    private static func appendVarint(_ value: UInt64, to output: inout [UInt8]) {
        var rest = value
        while rest >= 0x80 {
            output.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        output.append(UInt8(rest))
    }

    /// A cursor over wire-format bytes.
    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var offset = 0

        var atEnd: Bool { offset >= bytes.count }

        mutating func varint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while offset < bytes.count, shift < 64 {
                let byte = bytes[offset]
                offset += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte < 0x80 { return value }
                shift += 7
            }
            return nil
        }

        mutating func skip(_ count: Int) -> Bool {
            guard bytes.count - offset >= count else { return false }
            offset += count
            return true
        }

        mutating func take(_ length: UInt64) -> UnsafeRawBufferPointer? {
            guard length <= UInt64(bytes.count - offset) else { return nil }
            let field = UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + Int(length)])
            offset += Int(length)
            return field
        }
    }
}
